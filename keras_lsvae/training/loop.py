"""``train(config)``: one training run, as ``scripts/train.py`` drives it.

Steps: build the strategy, the data pipelines (grouped as the model needs, e.g. Lr-LiVAE's
n_gm + 1 fresh batches per step) and the model (inside the strategy's scope); resume from the
workdir's checkpoint if there is one; ``model.fit`` with a progress bar, TensorBoard logs,
per-epoch sample grids and per-epoch checkpoints; optional semi-supervised fine-tuning
(Lr-LiVAE §3.6) on an unlabeled data set; then ``model.keras`` and ``metrics.json``.

An interrupted run, started again with the same command, resumes from the last completed epoch
(the checkpoint interval is one epoch): weights, every optimizer's state and the seed-generator
states are restored.

Labels follow the model's ``label_kind``. Class models (Lr-LiVAE) take class ids (a single
binary attribute, e.g. swiss_roll, as 2 classes). Attribute models (paper B: ``csvae``, ``vae``,
``condvae``, ``condvae_info``) take float32 (B, A) {0, 1} attribute vectors made by
`keras_lsvae.data.as_attributes`: class data (digits, mnist, shapes, npz, folder) one-hot over
the K (kept ``--classes``) classes, one model for all of them as paper B §5.2.1 does with TFD's
expressions; attribute data (swiss_roll, celeb_a_*) as they are. For them the run also writes
``samples/manipulation_XXXX.png`` per epoch (`keras_lsvae.training.callbacks.ManipulationGrid`),
and after training (resumed runs too) calls ``model.fit_attribute_statistics`` on up to
`STATISTICS_EXAMPLES` train examples before saving ``model.keras`` (VAE and CSVAE's
``manipulate`` uses those per-attribute means). ``metrics.json`` has the test losses, plus
``test_attribute_accuracy`` only for models with ``predict_attributes``.
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
from keras_lsvae.data import as_attributes, single_attribute_as_class
from keras_lsvae.viz import attributes as attr
from keras_lsvae.training.strategy import get_strategy


def versions():
    """Library versions, recorded with every reported number."""
    import tensorflow_probability as tfp
    return {"keras_lsvae": __version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "tensorflow_probability": tfp.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def _labels_to_classes(images, labels):
    return images, tf.cast(tf.round(labels[..., 0]), tf.int32)


def _type_name(value) -> str:
    return {bool: "a boolean (True/False)", int: "an integer", float: "a number",
            str: "a string", tuple: "a tuple such as (64, 64)",
            list: "a tuple such as (64, 64)"}.get(type(value), type(value).__name__)


def constructor_parameters(model_class):
    """The keyword parameters a model class's constructor accepts: its own ``__init__``'s and,
    while an ``__init__`` forwards ``**kwargs``, those of its base classes' (VAE(**kwargs) ->
    GaussianVAEBase(z_dim=..., ...)), up to the library's base model; the first default of a
    name wins."""
    parameters = {}
    for cls in model_class.__mro__:
        if "__init__" not in vars(cls) or cls.__module__.split(".")[0] in ("keras", "builtins"):
            continue
        own = inspect.signature(vars(cls)["__init__"]).parameters
        for name, parameter in own.items():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                parameters.setdefault(name, parameter)
        if not any(p.kind == p.VAR_KEYWORD for p in own.values()):
            break
    return parameters


def check_model_args(model_class, model_args, model_name):
    """Reject unknown ``--model_arg`` keys and values whose type differs from the constructor's
    default (``zs_dim=abc``, ``mlp_units=64``), naming the flag and the expected type."""
    parameters = constructor_parameters(model_class)
    settable = [p for p in parameters
                if p not in ("self", "args", "kwargs", "input_shape", "num_classes", "seed")]
    unknown = sorted(set(model_args) - set(settable))
    if unknown:
        raise ValueError(f"--model_arg: unknown {unknown} for model {model_name!r}; "
                         f"known: {', '.join(settable)}")
    for key, value in model_args.items():
        default = parameters[key].default
        if default is None or default is inspect.Parameter.empty:
            continue  # no default type to compare with: the constructor checks the value
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(default, (tuple, list)):
            ok = isinstance(value, (tuple, list))
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise ValueError(f"--model_arg={key}={value!r}: {key} must be "
                             f"{_type_name(default)} (default {default!r}), got "
                             f"{_type_name(value)}")


#: train examples ``fit_attribute_statistics`` sees after training (bounds memory: CelebA)
STATISTICS_EXAMPLES = 10_000
#: train examples it sees before each epoch's manipulation grid
EPOCH_STATISTICS_EXAMPLES = 2_000
#: test images (rows) of the per-epoch manipulation grid
MANIPULATION_ROWS = 4


def label_kind(config: TrainConfig) -> str:
    """``"class"`` or ``"attributes"``: what the registered model ``config.model`` takes."""
    return getattr(MODELS.get(config.model), "label_kind", "class")


def num_model_classes(config: TrainConfig, meta) -> int:
    """K of the model: the kept --classes, 2 for one binary attribute, else the data set's.
    Attribute models: A, the attributes of attribute data or the K classes of class data."""
    if label_kind(config) == "attributes":
        if meta.label_kind != "class":
            if config.classes:
                raise ValueError(f"--classes: --dataset={config.dataset} has attribute labels "
                                 f"({', '.join(meta.class_names)}), not classes to keep")
            return meta.num_classes
        num_classes = len(config.classes) if config.classes else meta.num_classes
        if config.classes and tuple(sorted(config.classes)) != tuple(range(num_classes)):
            raise ValueError(f"--classes: must be 0..K-1 for some K (the model's class ids), "
                             f"got {list(config.classes)}")
        if num_classes > meta.num_classes:
            raise ValueError(f"--classes: {config.dataset} has {meta.num_classes} classes, got "
                             f"{list(config.classes)}")
        if num_classes < 2:
            raise ValueError(f"--model={config.model} takes attribute vectors: the classes of "
                             f"--dataset={config.dataset} become one-hot attributes, which "
                             f"needs at least 2 classes, got {num_classes}"
                             + (" (--classes)" if config.classes else ""))
        return num_classes
    if single_attribute_as_class(meta):
        num_classes = 2
    elif meta.label_kind != "class":
        raise ValueError(f"--model={config.model} needs class labels; --dataset="
                         f"{config.dataset} has {meta.num_classes} attributes "
                         f"({', '.join(meta.class_names)})")
    else:
        num_classes = meta.num_classes
    if config.classes:
        if tuple(sorted(config.classes)) != tuple(range(len(config.classes))):
            raise ValueError(f"--classes: must be 0..K-1 for some K (the model's class ids), "
                             f"got {list(config.classes)}")
        if len(config.classes) > num_classes:
            raise ValueError(f"--classes: {config.dataset} has {num_classes} classes, got "
                             f"{list(config.classes)}")
        num_classes = len(config.classes)
    return num_classes


def build_model(config: TrainConfig, meta) -> keras.Model:
    """The registered model for ``config.model`` sized for the data set ``meta``."""
    model_class = MODELS.get(config.model)
    num_classes = num_model_classes(config, meta)
    check_model_args(model_class, config.model_args, config.model)
    kwargs = {"seed": config.seed, **config.model_args}
    try:
        return models.get(config.model, input_shape=meta.input_shape, num_classes=num_classes,
                          **kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"--model={config.model} with --model_arg {config.model_args} on "
                         f"--dataset={config.dataset} {meta.input_shape}: {error}") from error


#: What a run writes besides flags.txt and config.json; --restart deletes all of it.
RUN_OUTPUTS = ("checkpoints", "history.json", "samples", "logs", "points", "figures",
               "model.keras", "metrics.json")


def _prepare_workdir(config: TrainConfig, flags_text=None):
    """Check that the workdir may take this run (same settings as a run it resumes), then
    write config.json and flags.txt. Nothing is written before the check passes."""
    config_path = os.path.join(config.workdir, "config.json")
    if not config.restart and os.path.exists(config_path):
        with open(config_path) as f:
            previous = json.load(f)
        current = json.loads(json.dumps(config.to_json()))  # tuples -> lists, as stored
        changed = [k for k in TrainConfig.RESUME_KEYS if previous.get(k) != current.get(k)]
        if changed and os.path.exists(os.path.join(config.workdir, "checkpoints")):
            raise ValueError(
                f"--workdir={config.workdir} holds a run with different {', '.join(changed)} "
                f"({', '.join(f'{k}: {previous.get(k)!r}' for k in changed)}); use another "
                "--workdir, or --restart to overwrite it")
    os.makedirs(config.workdir, exist_ok=True)
    if config.restart:
        for name in RUN_OUTPUTS:
            path = os.path.join(config.workdir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    with open(config_path, "w") as f:
        json.dump(config.to_json(), f, indent=1)
    if flags_text is not None:
        with open(os.path.join(config.workdir, "flags.txt"), "w") as f:
            f.write(flags_text)


def _datasets(config, model, meta, replicas):
    common = dict(seed=config.seed, data_dir=config.data_dir, image_size=config.image_size,
                  download=config.download)
    train = data.load(config.dataset, "train", config.batch_size, group=model.data_group,
                      flip=config.flip, classes=config.classes,
                      repeat=config.steps_per_epoch is not None, **common)
    test_split = "test" if "test" in meta.splits else meta.splits[-1]
    test = data.load(config.dataset, test_split, config.batch_size, shuffle=False,
                     drop_remainder=replicas > 1, classes=config.classes, **common)
    if label_kind(config) == "attributes":
        convert = _to_attributes(config, meta)
        train, test = train.map(convert), test.map(convert)
    elif single_attribute_as_class(meta):
        train, test = train.map(_labels_to_classes), test.map(_labels_to_classes)
    return train, _with_cardinality(test)


def _with_cardinality(dataset):
    """``dataset`` with its number of batches known. Keras runs one extra, empty step over a
    dataset of unknown cardinality (a ``filter``: --classes, CelebA subsets) and averages it
    into every tracked loss: test numbers came out n/(n+1) too small (measured 0.1965 instead
    of 0.2105 over 14 batches). One pass counts the batches (the pipeline's cache keeps it)."""
    if int(dataset.cardinality()) != int(tf.data.UNKNOWN_CARDINALITY):
        return dataset
    count = int(dataset.reduce(np.int64(0), lambda n, _: n + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(count))


def _to_attributes(config, meta):
    """A tf.data map: labels -> the model's (B, A) attribute vectors (`as_attributes`)."""
    depth = num_model_classes(config, meta) if meta.label_kind == "class" else None

    def convert(images, labels):
        return images, as_attributes(labels, meta, depth)

    return convert


def attribute_arrays(config: TrainConfig, meta, split: str, max_examples=None):
    """``(images, attributes (N, A))`` of ``split`` as an attribute model sees them."""
    images, labels = data.load_arrays(config.dataset, split, data_dir=config.data_dir,
                                      image_size=config.image_size, classes=config.classes,
                                      max_examples=max_examples, download=config.download)
    depth = num_model_classes(config, meta) if meta.label_kind == "class" else None
    return images, as_attributes(labels, meta, depth)


def _test_split(meta):
    return "test" if "test" in meta.splits else meta.splits[-1]


def _unlabeled_dataset(config, model, meta):
    """Labeled and unlabeled batches zipped into {"labeled": ..., "unlabeled": images}."""
    common = dict(seed=config.seed, data_dir=config.data_dir, image_size=config.image_size,
                  download=config.download)
    # With --steps_per_epoch the unlabeled stream repeats; without, an epoch is one pass of it.
    unlabeled = data.load(config.unlabeled_dataset, "train", config.batch_size,
                          classes=config.unlabeled_classes,
                          repeat=config.steps_per_epoch is not None, **common)
    labeled = data.load(config.dataset, "train", config.batch_size, group=model.data_group,
                        flip=config.flip, classes=config.classes, repeat=True, **common)
    if single_attribute_as_class(meta):
        labeled = labeled.map(_labels_to_classes)
    return tf.data.Dataset.zip(labeled, unlabeled).map(
        lambda lab, unl: {"labeled": lab, "unlabeled": unl[0]})


def evaluate_model(model, config, meta, test_ds):
    """Test-split numbers for metrics.json: every loss, and class accuracy where defined."""
    results = {f"test_{k}": float(v)
               for k, v in model.evaluate(test_ds, verbose=0, return_dict=True).items()}
    if attr.is_attribute_model(model):
        if hasattr(model, "predict_attributes"):
            images, attributes = attribute_arrays(config, meta, _test_split(meta))
            results["test_attribute_accuracy"] = attr.accuracy(model, images, attributes)
            results["test_examples"] = int(len(attributes))
        return results
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


def _prepare_data(config: TrainConfig):
    """Metadata of the labeled (and unlabeled) data, downloading TFDS data unless
    --nodownload; every data problem surfaces here, before a model or a file exists."""
    common = dict(data_dir=config.data_dir, download=config.download,
                  image_size=config.image_size)
    if not data.info(config.dataset, data_dir=config.data_dir).is_image:
        for flag, value in (("--flip", config.flip), ("--image_size", config.image_size)):
            if value:
                raise ValueError(f"{flag}: --dataset={config.dataset} holds points, not images")
    meta = data.prepare(config.dataset, **common)
    if config.unlabeled_dataset:
        unlabeled = data.prepare(config.unlabeled_dataset, **common)
        if tuple(unlabeled.input_shape) != tuple(meta.input_shape):
            raise ValueError(
                f"--unlabeled_dataset={config.unlabeled_dataset} has examples of shape "
                f"{tuple(unlabeled.input_shape)}, but --dataset={config.dataset} has "
                f"{tuple(meta.input_shape)}: the model takes one shape (use --image_size to "
                "resize both)")
    return meta


def train(config: TrainConfig, flags_text=None) -> dict:
    """Run (or resume) the training described by ``config``; returns the metrics dict.

    Every check (settings, data, model arguments, resume compatibility) runs before the first
    file is written; ``flags_text`` (the resolved flags) goes to ``flags.txt`` after them.
    """
    config.validate()
    strategy = get_strategy(config.strategy, config.replicas)
    meta = _prepare_data(config)
    if label_kind(config) == "attributes" and config.finetune_epochs:
        raise ValueError(f"--finetune_epochs={config.finetune_epochs}: semi-supervised "
                         f"fine-tuning (Lr-LiVAE §3.6) is not defined for --model={config.model}"
                         " (it trains on labeled attribute vectors only)")
    keras.utils.set_random_seed(config.seed)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        "float32" if config.mixed_precision == "off" else config.mixed_precision)
    try:  # the model's layers keep the policy they were built with; the process's is restored
        with strategy.scope():
            model = build_model(config, meta)
            model.compile(learning_rate=config.learning_rate, jit_compile=config.jit_compile)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    train_ds, test_ds = _datasets(config, model, meta, strategy.num_replicas_in_sync)
    finetune_ds = _unlabeled_dataset(config, model, meta) if config.finetune_epochs else None
    attribute_model = attr.is_attribute_model(model)
    if attribute_model and meta.is_image:
        test_images, test_attributes = attribute_arrays(config, meta, _test_split(meta),
                                                        max_examples=1000)
        rows = attr.pick_examples(test_attributes, MANIPULATION_ROWS)
        manipulation_rows = (test_images[rows], test_attributes[rows])
        epoch_statistics = (attribute_arrays(config, meta, "train",
                                             max_examples=EPOCH_STATISTICS_EXAMPLES)
                            if hasattr(model, "fit_attribute_statistics") else None)
    _prepare_workdir(config, flags_text)

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
    if attribute_model and meta.is_image:
        # Before the checkpointer: the statistics it refits are saved with the epoch.
        callbacks.insert(2, cb.ManipulationGrid(
            config.workdir, *manipulation_rows, statistics=epoch_statistics,
            log_dir=os.path.join(log_dir, "manipulation")))
    started = time.time()
    if initial_epoch < config.epochs:
        model.fit(train_ds, epochs=config.epochs, initial_epoch=initial_epoch, shuffle=False,
                  steps_per_epoch=config.steps_per_epoch, validation_data=test_ds,
                  callbacks=callbacks, verbose=config.verbose)
    total_epochs = config.epochs + config.finetune_epochs
    if finetune_ds is not None:
        model.fit(finetune_ds, epochs=total_epochs, shuffle=False,
                  initial_epoch=max(initial_epoch, config.epochs),
                  steps_per_epoch=config.steps_per_epoch, callbacks=callbacks,
                  verbose=config.verbose)
    seconds = time.time() - started

    if hasattr(model, "fit_attribute_statistics"):  # before saving: manipulate needs them
        attr.fit_statistics(model, *attribute_arrays(config, meta, "train",
                                                     max_examples=STATISTICS_EXAMPLES))
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
