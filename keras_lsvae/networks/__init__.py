"""Network builders: encoders, decoders, the pixel discriminator and the latent classifier.

Each builder returns a functional ``keras.Model`` sized by its input: convolutional for images
(rank-3 input shapes, 16–64 px, any power-of-two multiple of 4) and MLPs for vector data (the
toy experiments of Lr-LiVAE §4.1 use 3 hidden layers of 32, 64 and 64 units, the default
``mlp_units`` here). Encoder heads are linear (no activation after μ and log σ², DESIGN.md);
batch norm is used in encoders and decoders, never in the discriminator (spectral norm there is
optional, as in the projection discriminator's paper [29]). Every batch norm normalises with the
statistics of the global batch under a distribution strategy, and no Dense/Conv right before
one has a bias (:mod:`keras_lsvae.layers`, "Replica invariance").
"""

from __future__ import annotations

import math
from typing import Dict, Sequence

import keras
from keras import ops

from keras_lsvae import layers as L

DEFAULT_MLP_UNITS = (32, 64, 64)


def is_image_shape(shape) -> bool:
    return len(shape) == 3


def _num_stages(input_shape) -> int:
    height, width = input_shape[:2]
    if height != width:
        raise ValueError(f"conv networks need square images, got {height}x{width}")
    stages = int(round(math.log2(height / 4)))
    if stages < 1 or 4 * 2**stages != height:
        size = 4 * 2 ** max(1, math.ceil(math.log2(max(height, 1) / 4)))
        raise ValueError(
            f"conv networks need an image size of 4·2^n (8, 16, 32, 64, ...), got {height}; "
            f"pass --image_size={size} (or image_size={size} to keras_lsvae.data.load) to "
            f"resize")
    return stages


def _widths(width: int, stages: int):
    return [width * min(2**i, 8) for i in range(stages)]


def _trunk(x, input_shape, width, mlp_units, norm, spectral_norm, prefix):
    """Shared feature extractor: stride-2 conv blocks (images) or dense blocks (vectors)."""
    if is_image_shape(input_shape):
        for i, filters in enumerate(_widths(width, _num_stages(input_shape))):
            # The first block never normalises: batch norm on raw pixels only adds noise.
            x = L.conv_block(x, filters, norm=norm and i > 0, spectral_norm=spectral_norm,
                             name=f"{prefix}_block{i}")
        return keras.layers.Flatten()(x)
    for i, units in enumerate(mlp_units):
        x = L.dense_block(x, units, spectral_norm=spectral_norm, name=f"{prefix}_block{i}")
    return x


def build_encoder(input_shape, heads: Dict[str, int], *, width=32, mlp_units=DEFAULT_MLP_UNITS,
                  norm=True, condition_dim=0, condition_units=128,
                  name="encoder") -> keras.Model:
    """x -> {head: linear projection} (e.g. {"z_s": D} or {"mean": D, "log_var": D}).

    ``condition_dim`` > 0 adds a second input, a (B, condition_dim) attribute vector y, for
    conditional posteriors such as q(z|x, y) of CondVAE (paper B Eq. 2) and q_φ2(w|x, y) of
    CSVAE (§4.2): y is concatenated to the trunk's features and a dense block of
    ``condition_units`` mixes them before the linear heads (without it each head would be
    an additive function of y). The model is then called on ``[images, attributes]``.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    features = _trunk(inputs, input_shape, width, mlp_units, norm, False, name)
    model_inputs = inputs
    if condition_dim:
        condition = keras.Input(shape=(int(condition_dim),), name="condition")
        features = keras.layers.Concatenate(name=f"{name}_concat")([features, condition])
        features = L.dense_block(features, int(condition_units), name=f"{name}_merge")
        model_inputs = [inputs, condition]
    outputs = {head: keras.layers.Dense(dim, name=f"{name}_{head}")(features)
               for head, dim in heads.items()}
    return keras.Model(model_inputs, outputs, name=name)


def build_decoder(latent_dims: Sequence[int], output_shape, *, width=32,
                  mlp_units=DEFAULT_MLP_UNITS, norm=True, name="decoder") -> keras.Model:
    """[z_1, ..., z_n] -> concat -> x'. Images end in a sigmoid ([0, 1]); vectors are linear."""
    inputs = [keras.Input(shape=(dim,), name=f"latent{i}") for i, dim in enumerate(latent_dims)]
    x = keras.layers.Concatenate()(inputs) if len(inputs) > 1 else inputs[0]
    if is_image_shape(output_shape):
        stages = _num_stages(output_shape)
        widths = _widths(width, stages)[::-1]
        base = output_shape[0] // 2**stages
        x = keras.layers.Dense(base * base * widths[0], use_bias=not norm)(x)
        if norm:
            x = L.batch_norm()(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.Reshape((base, base, widths[0]))(x)
        for i, filters in enumerate(widths[1:] + [width // 2]):
            x = L.deconv_block(x, max(filters, 8), norm=norm, name=f"{name}_block{i}")
        # keras_lsvae.layers.Conv2D: Keras' layer with a faster kernel gradient here.
        x = L.Conv2D(output_shape[-1], 3, padding="same", name=f"{name}_out")(x)
        outputs = keras.layers.Activation("sigmoid", dtype="float32")(x)
    else:
        for i, units in enumerate(reversed(mlp_units)):
            x = L.dense_block(x, units, name=f"{name}_block{i}")
        outputs = keras.layers.Dense(output_shape[-1], name=f"{name}_out")(x)
    return keras.Model(inputs, outputs, name=name)


class Projection(keras.layers.Layer):
    """⟨embed(c), φ(x)⟩ of the projection discriminator [29]; zero for an all-zero ``c``.

    ``c`` is a one-hot (or multi-hot, for attributes) vector; an all-zero vector means "no label"
    and removes the class term, leaving the unconditional output (used for unlabeled data).
    """

    def __init__(self, spectral_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.spectral_norm = spectral_norm

    def build(self, input_shape):
        features_shape, labels_shape = input_shape
        self.embedding = L.maybe_spectral_norm(
            keras.layers.Dense(features_shape[-1], use_bias=False, name="embedding"),
            self.spectral_norm)
        self.embedding.build(labels_shape)

    def call(self, inputs):
        features, labels = inputs
        return ops.sum(self.embedding(labels) * features, axis=-1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "spectral_norm": self.spectral_norm}


def build_discriminator(input_shape, num_labels, *, width=32, mlp_units=DEFAULT_MLP_UNITS,
                        spectral_norm=False, name="discriminator") -> keras.Model:
    """D(x, c) -> logit, shape (B, 1), with the label entering by projection ([29])."""
    images = keras.Input(shape=tuple(input_shape), name="images")
    labels = keras.Input(shape=(num_labels,), name="labels")
    features = _trunk(images, input_shape, width, mlp_units, False, spectral_norm, name)
    unconditional = L.maybe_spectral_norm(keras.layers.Dense(1, name=f"{name}_out"),
                                          spectral_norm)(features)
    logits = keras.layers.Add()([unconditional, Projection(spectral_norm)([features, labels])])
    return keras.Model([images, labels], logits, name=name)


def build_classifier(input_dim, num_outputs, *, hidden=(256, 256), normalize_inputs=False,
                     input_name="codes", name="classifier") -> keras.Model:
    """A generic MLP: (B, input_dim) -> (B, num_outputs) logits (leaky-ReLU dense blocks).

    The adversaries of every model are built here so that comparisons are fair: Lr-LiVAE's
    q_ω(c|z_u) (softmax over C classes), CSVAE's q_δ(y|z) and CondVAE-info's r_ψ(z) (A
    independent Bernoulli logits, one per binary attribute, paper B §3.3 and §4.1).
    ``normalize_inputs``: see :func:`build_latent_classifier`.
    """
    inputs = keras.Input(shape=(int(input_dim),), name=input_name)
    x = inputs
    if normalize_inputs:
        x = L.batch_norm(center=False, scale=False, name=f"{name}_standardize")(x)
    for i, units in enumerate(hidden):
        x = L.dense_block(x, units, name=f"{name}_block{i}")
    return keras.Model(inputs, keras.layers.Dense(num_outputs, name=f"{name}_out")(x), name=name)


def build_latent_classifier(latent_dim, num_classes, *, hidden=(256, 256),
                            normalize_inputs=False, name="latent_classifier") -> keras.Model:
    """q_ω(c | z_u) -> logits: the adversarial classifier on z_u (Eq. 4).

    ``normalize_inputs`` standardises z_u with batch statistics first (no learned scale or
    offset), so the adversary reads small-scale class signals as fast as a probe of standardised
    frozen codes does. Off by default: on digits it made the adversary win outright (train
    accuracy 0.49) and the encoder stopped reducing leakage (probe accuracy 0.88 vs 0.73).
    """
    return build_classifier(latent_dim, num_classes, hidden=hidden,
                            normalize_inputs=normalize_inputs, input_name="z_u", name=name)


def build_feature_critic(input_shape, num_outputs, *, width=32, mlp_units=DEFAULT_MLP_UNITS,
                         spectral_norm=False, name="critic") -> keras.Model:
    """x -> {"logits": (B, num_outputs), "features": (B, F)}: the trunk of
    :func:`build_discriminator` (same blocks, no batch norm) with a linear head, also returning
    the trunk's features (the last hidden layer, before the head).

    For the networks whose intermediate features enter a loss: cVAE-GAN's discriminator D
    (``num_outputs=1``, real/fake, unconditional) and classifier C (``num_outputs=K``), whose
    f_D(x) and f_C(x) the generator's feature-matching terms compare (Bao et al. 2017)."""
    images = keras.Input(shape=tuple(input_shape), name="images")
    features = _trunk(images, input_shape, width, mlp_units, False, spectral_norm, name)
    logits = L.maybe_spectral_norm(keras.layers.Dense(int(num_outputs), name=f"{name}_out"),
                                   spectral_norm)(features)
    return keras.Model(images, {"logits": logits, "features": features}, name=name)
