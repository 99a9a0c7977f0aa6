"""``train(config)``: one training run, as ``scripts/train.py`` drives it.

Steps: build the strategy, the data pipelines (grouped as the model needs, e.g. Lr-LiVAE's
n_gm + 1 fresh batches per step) and the model (inside the strategy's scope); resume from the
workdir's checkpoint if there is one; ``model.fit`` (or, under ``--strategy=multi_worker``,
where Keras' ``fit`` fails, the equivalent ``strategy.run`` loop of
`keras_lsvae.training.distributed`) with a progress bar, TensorBoard logs, per-epoch sample
grids and checkpoints; optional semi-supervised fine-tuning (Lr-LiVAE §3.6) on an unlabeled
data set; then ``model.keras`` and ``metrics.json``. On a multi-worker cluster only the chief
writes files (`keras_lsvae.training.strategy.is_chief`); the other workers run the same saves
into a scratch directory that is deleted at the end.

Exact resume: an interrupted run (even by SIGKILL), started again with the same command,
continues from its last checkpoint (every epoch, and every ``--checkpoint_every_steps`` steps)
with the weights, every optimizer's state, the mixture prior, the seed-generator states and the
data order of the uninterrupted run: the training data is an endless stream whose order is a
pure function of (seed, position) (`keras_lsvae.data.pipeline.train_stream`), opened at the
checkpoint's position. The resumed run ends with the weights of the uninterrupted one
(tests/test_resume.py). The logged means of an epoch resumed mid-way cover only its steps after
the resume.

Labels follow the model's ``label_kind``. Class models (Lr-LiVAE) take class ids (a single
binary attribute, e.g. swiss_roll, as 2 classes). Attribute models (paper B: ``csvae``, ``vae``,
``condvae``, ``condvae_info``) take float32 (B, A) {0, 1} attribute vectors made by
`keras_lsvae.data.as_attributes`: class data (digits, mnist, shapes, npz, folder) one-hot over
the K (kept ``--classes``) classes, one model for all of them as paper B §5.2.1 does with TFD's
expressions; attribute data (swiss_roll, celeb_a_*) as they are. For them the run also writes
``samples/manipulation_XXXX.png`` per epoch (`keras_lsvae.training.callbacks.ManipulationGrid`),
and ``metrics.json`` has the test losses, plus ``test_attribute_accuracy`` only for models that
declare ``PredictsAttributes`` (:mod:`keras_lsvae.models.capabilities`).

After training (resumed runs too), before ``model.keras`` is saved, the loop calls
``model.after_training(train_examples)``: ``train_examples()`` loads up to
`STATISTICS_EXAMPLES` train examples in the model's label format when the model asks for them
(VAE and CSVAE fit the per-attribute means their ``manipulate`` uses; Lr-LiVAE with
``refit_prior_variances`` refits its prior variances).
"""

from __future__ import annotations

import inspect
import json
import os
import platform
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_lsvae import __version__, data, io, models
from keras_lsvae.models import capabilities as caps
from keras_lsvae.models import extensions as extensions_lib
from keras_lsvae.registry import MODELS
from keras_lsvae.training import callbacks as cb
from keras_lsvae.training.config import TrainConfig
from keras_lsvae.data import as_attributes, single_attribute_as_class
from keras_lsvae.viz import attributes as attr
from keras_lsvae.data.pipeline import train_stream
from keras_lsvae.training.distributed import StrategyLoop
from keras_lsvae.training.guards import StopOnNonFinite
from keras_lsvae.training.strategy import get_strategy, is_chief, is_multi_worker


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
                if p not in ("self", "args", "kwargs", "input_shape", "num_classes", "seed",
                              "extensions")]
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
    return MODELS.get(config.model).label_kind


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
    try:  # the extensions' names, sites and parameters, with the flag in the message
        extensions_lib.build(model_class, config.extensions)
    except ValueError as error:
        raise ValueError(f"--extension: {error}") from None
    kwargs = {"seed": config.seed, **config.model_args}
    if config.extensions:
        kwargs["extensions"] = config.extensions
    try:
        return models.get(config.model, input_shape=meta.input_shape, num_classes=num_classes,
                          **kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"--model={config.model} with --model_arg {config.model_args} on "
                         f"--dataset={config.dataset} {meta.input_shape}: {error}") from error


#: What a run writes besides flags.txt and config.json; --restart deletes all of it.
RUN_OUTPUTS = ("checkpoints", "history.json", "samples", "logs", "points", "figures",
               "model.keras", "metrics.json")


def _resume_view(settings):
    """The RESUME_KEYS of a stored or current config.json, comparable across versions: keys an
    older run did not store take their defaults, and model arguments that became extensions
    are read as extensions (:func:`keras_lsvae.models.extensions.from_legacy`)."""
    defaults = json.loads(json.dumps(TrainConfig(workdir="").to_json()))
    view = {key: settings.get(key, defaults.get(key)) for key in TrainConfig.RESUME_KEYS}
    model_args, legacy = extensions_lib.from_legacy(dict(view.get("model_args") or {}),
                                                    warn=False)
    extensions = {**legacy, **(view.get("extensions") or {})}
    view["model_args"] = model_args
    view["extensions"] = json.loads(json.dumps(extensions))
    return view


def _check_workdir(config: TrainConfig):
    """A ValueError unless the workdir may take this run: empty, ``--restart``, or holding a
    run (started or finished: config.json, checkpoints or a model) with the same settings
    that change the variables, the optimizer state or the data (``RESUME_KEYS``). Runs before
    anything is written; every worker of a cluster checks, so a refused resume stops them
    all."""
    if config.restart:
        return
    if os.path.exists(config.workdir) and not os.path.isdir(config.workdir):
        raise ValueError(f"--workdir={config.workdir} is a file, not a folder")
    config_path = os.path.join(config.workdir, "config.json")
    if not os.path.exists(config_path):
        leftovers = [name for name in ("model.keras", "checkpoints", "metrics.json")
                     if os.path.exists(os.path.join(config.workdir, name))]
        if leftovers:
            raise ValueError(
                f"--workdir={config.workdir} holds {', '.join(leftovers)} of a run without "
                "its config.json: its settings cannot be checked; use another --workdir, or "
                "--restart to overwrite it")
        return
    try:
        with open(config_path) as f:
            previous = _resume_view(json.load(f))
    except (OSError, ValueError) as error:
        raise ValueError(f"--workdir={config.workdir}: cannot read its config.json ({error}); "
                         "use another --workdir, or --restart to overwrite it") from None
    current = _resume_view(json.loads(json.dumps(config.to_json())))  # tuples -> lists
    changed = [k for k in TrainConfig.RESUME_KEYS if previous.get(k) != current.get(k)]
    if changed:
        raise ValueError(
            f"--workdir={config.workdir} holds a run with different {', '.join(changed)} "
            f"({', '.join(f'{k}: {previous.get(k)!r}' for k in changed)}); use another "
            "--workdir, or --restart to overwrite it")


def _prepare_workdir(config: TrainConfig, write=True):
    """:func:`_check_workdir`, then (``write``: the chief) create the workdir and, with
    ``--restart``, delete the previous run's outputs. The settings (config.json, flags.txt)
    are recorded by :func:`_record_settings` once the run has resumed or started."""
    _check_workdir(config)
    if not write:
        return
    os.makedirs(config.workdir, exist_ok=True)
    if config.restart:
        for name in RUN_OUTPUTS:
            path = os.path.join(config.workdir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)


def _record_settings(config: TrainConfig, flags_text=None):
    """config.json and flags.txt of the run, written after its checkpoint restored (a resume
    that fails leaves the previous run's settings as they were)."""
    io.atomic_write_json(os.path.join(config.workdir, "config.json"), config.to_json(), indent=1)
    if flags_text is not None:
        io.atomic_write_text(os.path.join(config.workdir, "flags.txt"), flags_text)


def _label_map(config, meta):
    """The tf.data map from the data set's labels to the model's, or None."""
    if label_kind(config) == "attributes":
        return _to_attributes(config, meta)
    if single_attribute_as_class(meta):
        return _labels_to_classes
    return None


def _train_stream(config, model, meta, start_step):
    """``(stream of training batches from step start_step, steps of one epoch)``: the resumable
    stream of `train_stream`, one pass per epoch unless --steps_per_epoch is given."""
    stream, per_pass = train_stream(
        config.dataset, config.batch_size, seed=config.seed, start_step=start_step,
        continuous=config.steps_per_epoch is not None, group=model.data_group, flip=config.flip,
        classes=config.classes, data_dir=config.data_dir, image_size=config.image_size,
        download=config.download)
    convert = _label_map(config, meta)
    if convert is not None:
        stream = stream.map(convert)
    return stream, config.steps_per_epoch or per_pass


def _test_dataset(config, meta, replicas):
    test = data.load(config.dataset, _test_split(meta), config.batch_size, shuffle=False,
                     drop_remainder=replicas > 1, classes=config.classes, seed=config.seed,
                     data_dir=config.data_dir, image_size=config.image_size,
                     download=config.download)
    convert = _label_map(config, meta)
    if convert is not None:
        test = test.map(convert)
    return _with_cardinality(test)


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


def train_examples(config: TrainConfig, meta, kind: str):
    """Up to `STATISTICS_EXAMPLES` ``(images, labels)`` of the train split in the model's label
    format (``kind``): attribute rows (N, A) for "attributes" models (:func:`attribute_arrays`), class ids
    (N,) for class models (a single binary attribute as 2 classes, as training sees it)."""
    if kind == "attributes":
        return attribute_arrays(config, meta, "train", max_examples=STATISTICS_EXAMPLES)
    images, labels = data.load_arrays(
        config.dataset, "train", data_dir=config.data_dir, image_size=config.image_size,
        classes=config.classes, max_examples=STATISTICS_EXAMPLES, download=config.download)
    if single_attribute_as_class(meta):
        labels = np.round(labels[:, 0]).astype(np.int32)
    return images, labels


def _test_split(meta):
    return "test" if "test" in meta.splits else meta.splits[-1]


def _unlabeled_stream(config, model, meta, start_step):
    """Labeled and unlabeled batches zipped into {"labeled": ..., "unlabeled": images}, from
    fine-tuning step ``start_step``; and the steps of one fine-tuning epoch (--steps_per_epoch,
    or one pass of the unlabeled data)."""
    common = dict(seed=config.seed, data_dir=config.data_dir, image_size=config.image_size,
                  download=config.download, start_step=start_step)
    unlabeled, per_pass = train_stream(config.unlabeled_dataset, config.batch_size,
                                       classes=config.unlabeled_classes,
                                       continuous=config.steps_per_epoch is not None, **common)
    labeled, _ = train_stream(config.dataset, config.batch_size, group=model.data_group,
                              flip=config.flip, classes=config.classes, continuous=True,
                              **common)
    if single_attribute_as_class(meta):
        labeled = labeled.map(_labels_to_classes)
    stream = tf.data.Dataset.zip(labeled, unlabeled).map(
        lambda lab, unl: {"labeled": lab, "unlabeled": unl[0]})
    return stream, config.steps_per_epoch or per_pass


def evaluate_model(model, config, meta, test_ds, evaluate=None):
    """Test-split numbers for metrics.json: every loss, and class accuracy where defined.
    ``evaluate`` replaces ``model.evaluate`` (the multi-worker loop's)."""
    evaluate = evaluate or model.evaluate
    results = {f"test_{k}": float(v)
               for k, v in evaluate(test_ds, verbose=0, return_dict=True).items()}
    if attr.is_attribute_model(model):
        if caps.supports(model, caps.PredictsAttributes):
            images, attributes = attribute_arrays(config, meta, _test_split(meta))
            results["test_attribute_accuracy"] = attr.accuracy(model, images, attributes)
            results["test_examples"] = int(len(attributes))
        return results
    if caps.supports(model, caps.PredictsLabels) and (meta.label_kind == "class"
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
        if config.unlabeled_classes and max(config.unlabeled_classes) >= unlabeled.num_classes:
            raise ValueError(
                f"--unlabeled_classes: --unlabeled_dataset={config.unlabeled_dataset} has "
                f"classes 0-{unlabeled.num_classes - 1}, got "
                f"{list(config.unlabeled_classes)}")
    return meta


def _fit_phase(fit, make_stream, *, phase_epoch, epoch, batch, epochs, checkpointer,
               **fit_kwargs):
    """Epochs ``epoch .. epochs - 1`` of a phase (supervised training, or fine-tuning) that
    began at epoch ``phase_epoch``, starting ``batch`` steps into ``epoch`` (a mid-epoch
    checkpoint): one ``fit`` over the rest of that epoch, then one over the remaining epochs,
    each on the stream opened at its position (``make_stream(step) -> (stream, steps per
    epoch)``; building a stream reads no data)."""
    _, steps = make_stream(0)
    checkpointer.steps_per_epoch = steps
    if batch >= steps:  # a checkpoint of a longer epoch (--steps_per_epoch was lowered)
        epoch, batch = epoch + 1, 0
    if batch and epoch < epochs:
        checkpointer.batch_offset = batch
        stream, _ = make_stream((epoch - phase_epoch) * steps + batch)
        fit(stream, initial_epoch=epoch, epochs=epoch + 1, steps_per_epoch=steps - batch,
            shuffle=False, **fit_kwargs)
        epoch += 1
    checkpointer.batch_offset = 0
    if epoch < epochs:
        stream, _ = make_stream((epoch - phase_epoch) * steps)
        fit(stream, initial_epoch=epoch, epochs=epochs, steps_per_epoch=steps, shuffle=False,
            **fit_kwargs)


def train(config: TrainConfig, flags_text=None) -> dict:
    """Run (or resume) the training described by ``config``; returns the metrics dict.

    Every check (settings, data, model arguments, resume compatibility) runs before the first
    file is written; ``flags_text`` (the resolved flags) goes to ``flags.txt`` after them.
    """
    return train_model(config, flags_text)[1]


def train_model(config: TrainConfig, flags_text=None, callbacks=()):
    """:func:`train`, returning ``(trained model, metrics)``. ``callbacks``: Keras callbacks
    run after the run's own in every ``fit`` (benchmarks: the speed suite's resident memory
    per epoch)."""
    config.validate()
    strategy = get_strategy(config.strategy, config.replicas)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(f"--batch_size={config.batch_size} must be a multiple of the "
                         f"{replicas} replicas (each takes an equal share of the global batch)")
    chief = is_chief(strategy)
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
    test_ds = _test_dataset(config, meta, strategy.num_replicas_in_sync)
    attribute_model = attr.is_attribute_model(model)
    if attribute_model and meta.is_image:
        test_images, test_attributes = attribute_arrays(config, meta, _test_split(meta),
                                                        max_examples=1000)
        rows = attr.pick_examples(test_attributes, MANIPULATION_ROWS)
        manipulation_rows = (test_images[rows], test_attributes[rows])
        epoch_statistics = (attribute_arrays(config, meta, "train",
                                             max_examples=EPOCH_STATISTICS_EXAMPLES)
                            if caps.supports(model, caps.FitsAttributeStatistics) else None)
    _prepare_workdir(config, write=chief)
    # Non-chief workers write into a scratch directory (TF's multi-worker guide): saving may
    # need collectives that every worker must join, but only the chief's files are kept.
    outdir = config.workdir if chief else tempfile.mkdtemp(prefix="keras_lsvae_worker_")
    try:
        return model, _train_and_save(config, model, meta, strategy, test_ds, outdir,
                                      manipulation_rows if attribute_model and meta.is_image
                                      else None,
                                      epoch_statistics if attribute_model and meta.is_image
                                      else None, callbacks, flags_text=flags_text)
    finally:
        if not chief:
            shutil.rmtree(outdir, ignore_errors=True)


def _check_same_position(strategy, config, epoch, batch):
    """A ValueError on every worker unless all resume from the same (epoch, step): a worker
    that cannot see the chief's checkpoint (``--workdir`` not on a shared file system) would
    otherwise start over and run other steps than the rest, and the cluster would hang in
    mismatched collectives."""
    position = tf.constant([[epoch, batch]], tf.int64)
    positions = strategy.gather(
        strategy.experimental_distribute_values_from_function(lambda context: position), axis=0)
    positions = np.asarray(positions).tolist()
    if any(p != positions[0] for p in positions):
        raise ValueError(
            f"--workdir={config.workdir}: the workers resume from different checkpoints "
            f"((epoch, step) per replica: {positions}); every worker must see the chief's "
            "--workdir at the same path (a shared file system), or pass --restart")


def _train_and_save(config, model, meta, strategy, test_ds, outdir, manipulation_rows,
                    epoch_statistics, extra_callbacks=(), flags_text=None):
    verbose = config.verbose if is_chief(strategy) else 0
    checkpointer = cb.Checkpointer(outdir, every_steps=config.checkpoint_every_steps,
                                   restore_from=config.workdir)
    schedule = cb.LearningRateSchedule(model, config.lr_schedule, config.epochs,
                                       config.lr_final_fraction)  # base rates: before restore
    state = None if config.restart else checkpointer.restore(model)
    if is_chief(strategy):
        _record_settings(config, flags_text)
    initial_epoch, initial_batch = (state["epoch"], state["batch"]) if state else (0, 0)
    if is_multi_worker(strategy):
        _check_same_position(strategy, config, initial_epoch, initial_batch)
    if state and verbose:
        print(f"Resuming {config.workdir} from epoch {initial_epoch}"
              + (f", step {initial_batch}" if initial_batch else ""))
    log_dir = os.path.join(outdir, "logs")
    callbacks = [
        # First: a diverged step stops the run before any callback writes from it.
        StopOnNonFinite(every_steps=config.checkpoint_every_steps),
        keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, profile_batch=0),
        cb.SampleGrid(outdir, config.samples_per_class, config.seed,
                      log_dir=os.path.join(log_dir, "samples")),
        cb.ToyPoints(outdir, seed=config.seed),
        checkpointer,
        cb.MetricsHistory(outdir),
        schedule,
        *extra_callbacks,
    ]
    if manipulation_rows is not None:
        # Before the checkpointer: the statistics it refits are saved with the epoch.
        callbacks.insert(2, cb.ManipulationGrid(
            outdir, *manipulation_rows, statistics=epoch_statistics,
            log_dir=os.path.join(log_dir, "manipulation")))
    if is_multi_worker(strategy):
        loop = StrategyLoop(model, strategy)
        fit, evaluate = loop.fit, loop.evaluate
    else:
        fit, evaluate = model.fit, model.evaluate
    started = time.time()
    if initial_epoch < config.epochs:
        _fit_phase(fit, lambda start: _train_stream(config, model, meta, start), phase_epoch=0,
                   epoch=initial_epoch, batch=initial_batch, epochs=config.epochs,
                   checkpointer=checkpointer, validation_data=test_ds, callbacks=callbacks,
                   verbose=verbose)
    total_epochs = config.epochs + config.finetune_epochs
    if config.finetune_epochs and initial_epoch < total_epochs:
        first = max(initial_epoch, config.epochs)
        _fit_phase(fit, lambda start: _unlabeled_stream(config, model, meta, start),
                   phase_epoch=config.epochs, epoch=first,
                   batch=initial_batch if first == initial_epoch else 0, epochs=total_epochs,
                   checkpointer=checkpointer, callbacks=callbacks, verbose=verbose)
    seconds = time.time() - started

    model.after_training(lambda: train_examples(config, meta, model.label_kind))
    io.atomic_save_model(model, os.path.join(outdir, "model.keras"))
    metrics = {"model": config.model, "dataset": config.dataset, "seed": config.seed,
               "epochs": total_epochs, "resumed_from_epoch": initial_epoch,
               "train_seconds_this_session": round(seconds, 2),
               "replicas": strategy.num_replicas_in_sync, "versions": versions()}
    if initial_batch:
        metrics["resumed_from_step_in_epoch"] = initial_batch
    history = cb.MetricsHistory(outdir).history
    if history:
        metrics["final_epoch_logs"] = history[-1]
    metrics.update(evaluate_model(model, config, meta, test_ds, evaluate))
    io.atomic_write_json(os.path.join(outdir, "metrics.json"), metrics, indent=1)
    return metrics
