"""``train(config)``: one training run, as ``scripts/train.py`` drives it.

Steps: build the strategy, the data pipelines (grouped as the model needs, e.g. Lr-LiVAE's
n_gm + 1 fresh batches per step) and the model (inside the strategy's scope); resume from the
workdir's checkpoint if there is one; ``model.fit`` with a progress bar, TensorBoard logs,
per-epoch sample grids and per-epoch checkpoints; optional semi-supervised fine-tuning
(Lr-LiVAE §3.6) on an unlabeled data set; then ``model.keras`` and ``metrics.json``.

An interrupted run, started again with the same command, resumes from the last completed epoch
(the checkpoint interval is one epoch): weights, every optimizer's state and the seed-generator
states are restored.
"""

from __future__ import annotations

import inspect
import json
import os
import platform
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from keras_lsvae import __version__, data, models
from keras_lsvae.registry import MODELS
from keras_lsvae.training import callbacks as cb
from keras_lsvae.training.config import TrainConfig
from keras_lsvae.training.strategy import get_strategy


def versions():
    """Library versions, recorded with every reported number."""
    import tensorflow_probability as tfp
    return {"keras_lsvae": __version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "tensorflow_probability": tfp.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def single_attribute_as_class(meta) -> bool:
    """A data set with one binary attribute (swiss_roll, celeb_a_glasses) can feed a class model
    as 2 classes (attribute value = class id)."""
    return meta.label_kind == "attributes" and meta.num_classes == 1


def _labels_to_classes(images, labels):
    return images, tf.cast(tf.round(labels[..., 0]), tf.int32)


def build_model(config: TrainConfig, meta) -> keras.Model:
    """The registered model for ``config.model`` sized for the data set ``meta``."""
    model_class = MODELS.get(config.model)
    num_classes = len(config.classes) if config.classes else meta.num_classes
    if single_attribute_as_class(meta):
        num_classes = 2
    elif meta.label_kind != "class":
        raise ValueError(f"{config.model} needs class labels; {config.dataset} has "
                         f"{meta.num_classes} attributes ({', '.join(meta.class_names)})")
    if config.classes and tuple(sorted(config.classes)) != tuple(range(num_classes)):
        raise ValueError(f"--classes must be 0..K-1 for some K (the model's class ids), got "
                         f"{list(config.classes)}")
    accepted = inspect.signature(model_class.__init__).parameters
    unknown = sorted(set(config.model_args) - set(accepted))
    if unknown:
        known = [p for p in accepted if p not in ("self", "kwargs", "input_shape", "num_classes")]
        raise ValueError(f"unknown --model_arg {unknown} for model {config.model!r}; "
                         f"known: {', '.join(known)}")
    kwargs = {"seed": config.seed, **config.model_args}
    return models.get(config.model, input_shape=meta.input_shape, num_classes=num_classes,
                      **kwargs)


def _prepare_workdir(config: TrainConfig):
    os.makedirs(config.workdir, exist_ok=True)
    config_path = os.path.join(config.workdir, "config.json")
    if config.restart:
        for name in ("checkpoints", "history.json", "samples", "logs"):
            path = os.path.join(config.workdir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    elif os.path.exists(config_path):
        with open(config_path) as f:
            previous = json.load(f)
        current = json.loads(json.dumps(config.to_json()))  # tuples -> lists, as stored
        changed = [k for k in TrainConfig.RESUME_KEYS if previous.get(k) != current.get(k)]
        if changed and os.path.exists(os.path.join(config.workdir, "checkpoints")):
            raise ValueError(
                f"{config.workdir} holds a run with different {', '.join(changed)} "
                f"({', '.join(f'{k}: {previous.get(k)!r}' for k in changed)}); use another "
                "--workdir, or --restart to overwrite it")
    with open(config_path, "w") as f:
        json.dump(config.to_json(), f, indent=1)


def _datasets(config, model, meta, replicas):
    common = dict(seed=config.seed, data_dir=config.data_dir, image_size=config.image_size)
    train = data.load(config.dataset, "train", config.batch_size, group=model.data_group,
                      flip=config.flip, classes=config.classes,
                      repeat=config.steps_per_epoch is not None, **common)
    test_split = "test" if "test" in meta.splits else meta.splits[-1]
    test = data.load(config.dataset, test_split, config.batch_size, shuffle=False,
                     drop_remainder=replicas > 1, classes=config.classes, **common)
    if single_attribute_as_class(meta):
        train, test = train.map(_labels_to_classes), test.map(_labels_to_classes)
    return train, test


def _unlabeled_dataset(config, model):
    """Labeled and unlabeled batches zipped into {"labeled": ..., "unlabeled": images}."""
    common = dict(seed=config.seed, data_dir=config.data_dir, image_size=config.image_size)
    # With --steps_per_epoch the unlabeled stream repeats; without, an epoch is one pass of it.
    unlabeled = data.load(config.unlabeled_dataset, "train", config.batch_size,
                          classes=config.unlabeled_classes,
                          repeat=config.steps_per_epoch is not None, **common)
    labeled = data.load(config.dataset, "train", config.batch_size, group=model.data_group,
                        flip=config.flip, classes=config.classes, repeat=True, **common)
    if single_attribute_as_class(data.info(config.dataset, data_dir=config.data_dir)):
        labeled = labeled.map(_labels_to_classes)
    return tf.data.Dataset.zip(labeled, unlabeled).map(
        lambda lab, unl: {"labeled": lab, "unlabeled": unl[0]})


def evaluate_model(model, config, meta, test_ds):
    """Test-split numbers for metrics.json: every loss, and class accuracy where defined."""
    results = {f"test_{k}": float(v)
               for k, v in model.evaluate(test_ds, verbose=0, return_dict=True).items()}
    if hasattr(model, "predict_labels") and (meta.label_kind == "class"
                                             or single_attribute_as_class(meta)):
        split = "test" if "test" in meta.splits else meta.splits[-1]
        images, labels = data.load_arrays(config.dataset, split, data_dir=config.data_dir,
                                          image_size=config.image_size, classes=config.classes)
        if single_attribute_as_class(meta):
            labels = np.round(labels[:, 0]).astype(np.int32)
        predicted = np.argmax(np.asarray(model.predict_labels(images)), axis=-1)
        results["test_class_accuracy"] = float(np.mean(predicted == labels))
        results["test_examples"] = int(len(labels))
    return results


def train(config: TrainConfig) -> dict:
    """Run (or resume) the training described by ``config``; returns the metrics dict."""
    _prepare_workdir(config)
    meta = data.info(config.dataset, data_dir=config.data_dir, image_size=config.image_size)
    strategy = get_strategy(config.strategy, config.num_cpu_replicas)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = build_model(config, meta)
        model.compile(learning_rate=config.learning_rate, jit_compile=config.jit_compile)
    train_ds, test_ds = _datasets(config, model, meta, strategy.num_replicas_in_sync)

    checkpointer = cb.Checkpointer(config.workdir)
    state = checkpointer.restore(model)
    initial_epoch = state["epoch"] if state else 0
    if state and config.verbose:
        print(f"Resuming {config.workdir} from epoch {initial_epoch}")
    log_dir = os.path.join(config.workdir, "logs")
    callbacks = [
        keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, profile_batch=0),
        cb.SampleGrid(config.workdir, config.samples_per_class, config.seed,
                      log_dir=os.path.join(log_dir, "samples")),
        cb.ToyPoints(config.workdir, seed=config.seed),
        checkpointer,
        cb.MetricsHistory(config.workdir),
    ]
    started = time.time()
    if initial_epoch < config.epochs:
        model.fit(train_ds, epochs=config.epochs, initial_epoch=initial_epoch, shuffle=False,
                  steps_per_epoch=config.steps_per_epoch, validation_data=test_ds,
                  callbacks=callbacks, verbose=config.verbose)
    total_epochs = config.epochs + config.finetune_epochs
    if config.unlabeled_dataset and config.finetune_epochs > 0:
        finetune_ds = _unlabeled_dataset(config, model)
        model.fit(finetune_ds, epochs=total_epochs, shuffle=False,
                  initial_epoch=max(initial_epoch, config.epochs),
                  steps_per_epoch=config.steps_per_epoch, callbacks=callbacks,
                  verbose=config.verbose)
    elif config.finetune_epochs > 0:
        raise ValueError("--finetune_epochs needs --unlabeled_dataset")
    seconds = time.time() - started

    model.save(os.path.join(config.workdir, "model.keras"))
    metrics = {"model": config.model, "dataset": config.dataset, "seed": config.seed,
               "epochs": total_epochs, "resumed_from_epoch": initial_epoch,
               "train_seconds_this_session": round(seconds, 2),
               "replicas": strategy.num_replicas_in_sync, "versions": versions()}
    history = cb.MetricsHistory(config.workdir).history
    if history:
        metrics["final_epoch_logs"] = history[-1]
    metrics.update(evaluate_model(model, config, meta, test_ds))
    with open(os.path.join(config.workdir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    return metrics
