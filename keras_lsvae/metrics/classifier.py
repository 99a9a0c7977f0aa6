"""The independent evaluation classifier (paper A §4.2) and conditional accuracy.

Paper A computes p(y|x) for the Inception Score with "a classifier with Inception-ResNet-v1
architecture [trained] on real data". We follow the protocol, not the architecture: a classifier
trained only on the *real training split* of the same data set provides

* class probabilities (``model.predict``) for the Inception Score and for conditional accuracy
  (does a sample generated for class c get classified as c?), and
* penultimate-layer features (:func:`features`, the layer named ``"features"``) for FID and
  intra-class FID.

Report its test accuracy with every IS/FID number: a weak classifier makes both meaningless.

Backbones (``backbone=``):

* ``"cnn"`` (default, any image size ≥ 8 px): plain Keras conv net, two 3×3 conv + batch-norm +
  ReLU per stage, 2× max-pooling while the feature map is ≥ 8 px, global average pooling, a
  ``features`` dense layer, dropout, softmax ``probs``.
* ``"resnet_v2"`` (images ≥ 32 px): keras-cv ``ResNetV2Backbone`` built from its constructor with
  random weights (``stackwise_blocks`` of 2; keras-cv 0.9 produces duplicate layer names with 1).
  This works offline with Keras 3.15. The preset classes (e.g. ``ResNet18V2Backbone``) are *not*
  usable here: even without pretrained weights they download a preset from Kaggle.

Cache a trained classifier with :func:`save_eval_classifier` / :func:`load_eval_classifier`
(``model.save("....keras")``) so that benchmarks do not retrain it.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Dict, Optional, Sequence

import keras
import numpy as np

from keras_lsvae import io
from keras_lsvae.registry import METRICS

FEATURES_LAYER = "features"
PROBS_LAYER = "probs"
BACKBONES = ("cnn", "resnet_v2")
# Small training sets give few steps: the default 0.99 left the moving statistics far from the
# data after 360 steps on digits (test accuracy 0.11 in inference mode vs 1.0 in training mode).
BN_MOMENTUM = 0.9


def _conv_trunk(inputs, width: int):
    x = inputs
    size = min(inputs.shape[1], inputs.shape[2])
    for stage in range(3):
        filters = width * 2**stage
        for _ in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
            x = keras.layers.ReLU()(x)
        if size >= 8:  # keep at least a 4×4 map for the last stage
            x = keras.layers.MaxPooling2D(2)(x)
            size //= 2
    return x


def _resnet_v2_trunk(inputs, width: int):
    import keras_cv  # imported lazily: slow to import and only needed for this backbone

    if min(inputs.shape[1], inputs.shape[2]) < 32:
        raise ValueError("backbone='resnet_v2' needs images of at least 32x32 px; use 'cnn'")
    backbone = keras_cv.models.ResNetV2Backbone(
        stackwise_filters=[width, 2 * width, 4 * width, 8 * width],
        stackwise_blocks=[2, 2, 2, 2],
        stackwise_strides=[1, 2, 2, 2],
        include_rescaling=False,  # inputs are already in [0, 1]
        input_shape=tuple(inputs.shape[1:]),
    )
    return backbone(inputs)


def build_eval_classifier(
    input_shape: Sequence[int],
    num_classes: int,
    width: int = 32,
    backbone: str = "cnn",
    feature_dim: int = 128,
    dropout: float = 0.3,
    learning_rate: float = 1e-3,
) -> keras.Model:
    """A compiled classifier ``images -> probs`` with a ``"features"`` penultimate layer.

    Args:
        input_shape: (H, W, C) of the [0, 1] float images.
        num_classes: K; the output is a softmax over K classes.
        width: filters of the first stage (doubled at each stage).
        backbone: "cnn" or "resnet_v2" (keras-cv; images ≥ 32 px), see the module docstring.
        feature_dim: size of the ``features`` layer used for FID.
        dropout: applied after ``features`` (so FID features are unaffected at inference).
    """
    inputs = keras.Input(tuple(input_shape), name="images")
    if backbone == "cnn":
        x = _conv_trunk(inputs, width)
    elif backbone == "resnet_v2":
        x = _resnet_v2_trunk(inputs, width)
    else:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {BACKBONES}")
    x = keras.layers.GlobalAveragePooling2D()(x)
    feats = keras.layers.Dense(feature_dim, activation="relu", name=FEATURES_LAYER)(x)
    x = keras.layers.Dropout(dropout)(feats)
    probs = keras.layers.Dense(num_classes, activation="softmax", name=PROBS_LAYER)(x)
    model = keras.Model(inputs, probs, name=f"eval_classifier_{backbone}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train_eval_classifier(
    train_images,
    train_labels,
    epochs: int = 10,
    batch_size: int = 128,
    seed: int = 0,
    num_classes: Optional[int] = None,
    width: int = 32,
    backbone: str = "cnn",
    validation_data=None,
    verbose: int = 0,
) -> keras.Model:
    """Train the evaluation classifier on the real training split.

    Calls ``keras.utils.set_random_seed(seed)`` (global Python/NumPy/TF seeds) so that weight
    initialisation and shuffling are reproducible. The fit history is on ``model.history``.

    Args:
        train_images: (N, H, W, C) float images in [0, 1].
        train_labels: (N,) int class ids.
        num_classes: defaults to ``max(train_labels) + 1``.
        validation_data: optional ``(images, labels)`` for reporting held-out accuracy.
    """
    train_images = np.asarray(train_images, dtype=np.float32)
    if train_images.ndim == 3:
        train_images = train_images[..., None]
    train_labels = np.asarray(train_labels).reshape(-1).astype(np.int64)
    if num_classes is None:
        num_classes = int(train_labels.max()) + 1
    keras.utils.set_random_seed(seed)
    model = build_eval_classifier(train_images.shape[1:], num_classes, width=width,
                                  backbone=backbone)
    model.fit(
        train_images,
        train_labels,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        validation_data=validation_data,
        verbose=verbose,
    )
    return model


def _as_images(images) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    return images[..., None] if images.ndim == 3 else images


def predict_probs(classifier, images, batch_size: int = 256) -> np.ndarray:
    """Class probabilities from a Keras model (``predict``) or any callable images -> probs."""
    images = _as_images(images)
    if hasattr(classifier, "predict"):
        return np.asarray(classifier.predict(images, batch_size=batch_size, verbose=0))
    outputs = [
        keras.ops.convert_to_numpy(classifier(images[i : i + batch_size]))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs)


def features(model: keras.Model, images, batch_size: int = 256) -> np.ndarray:
    """Penultimate-layer (``"features"``) activations, e.g. for FID; (N, feature_dim) float32."""
    extractor = keras.Model(model.inputs, model.get_layer(FEATURES_LAYER).output)
    return np.asarray(extractor.predict(_as_images(images), batch_size=batch_size, verbose=0))


def save_eval_classifier(model: keras.Model, path: str) -> str:
    """``model.save(path)`` (atomically); ``path`` must end in ``.keras``. Returns the path."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"the classifier is saved in the .keras format; got {path!r}")
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    io.atomic_save_model(model, path)
    return str(path)


def load_eval_classifier(path: str) -> keras.Model:
    """Load a classifier written by :func:`save_eval_classifier`."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    if "keras_cv" in json.dumps(config):
        import keras_cv  # noqa: F401  registers the backbone classes for deserialisation
    return keras.models.load_model(path)


@METRICS.register("conditional_accuracy")
def conditional_accuracy(classifier, images, requested_labels, batch_size: int = 256) -> float:
    """Fraction of generated images whose classifier argmax equals the class requested for them."""
    return conditional_accuracy_report(classifier, images, requested_labels, batch_size)["accuracy"]


def conditional_accuracy_report(
    classifier, images, requested_labels, batch_size: int = 256
) -> Dict[str, object]:
    """Conditional accuracy overall and per requested class.

    Returns ``{"accuracy", "per_class": {class_id: accuracy}, "counts": {class_id: n},
    "num_samples"}``.
    """
    requested = np.asarray(requested_labels).reshape(-1)
    predicted = predict_probs(classifier, images, batch_size).argmax(axis=-1)
    if len(predicted) != len(requested):
        raise ValueError(f"{len(predicted)} images but {len(requested)} requested labels")
    correct = predicted == requested
    per_class, counts = {}, {}
    for class_id in sorted(set(requested.tolist())):
        members = requested == class_id
        per_class[int(class_id)] = float(correct[members].mean())
        counts[int(class_id)] = int(members.sum())
    return {
        "accuracy": float(correct.mean()),
        "per_class": per_class,
        "counts": counts,
        "num_samples": int(len(requested)),
    }
