"""The absl flags of the scripts, each defined once, with help, and turned into a TrainConfig."""

from __future__ import annotations

from absl import flags

from keras_lsvae.training.config import TrainConfig, parse_classes, parse_model_args
from keras_lsvae.training.strategy import STRATEGIES


def define_train_flags(flag_values=flags.FLAGS):
    """Define the training flags on ``flag_values`` (the global FLAGS by default)."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("workdir", None, "Directory of the run: model.keras, flags.txt, "
                        "metrics.json, samples/, logs/, checkpoints/. Rerunning resumes.", **fv)
    flags.DEFINE_string("model", "lrlivae", "Model name from keras_lsvae.models.names().", **fv)
    flags.DEFINE_string("dataset", "digits", "Data set name (keras_lsvae.data), e.g. digits, "
                        "shapes, toy2d, mnist, cifar10, npz:PATH, folder:PATH.", **fv)
    flags.DEFINE_integer("epochs", 10, "Epochs of supervised training.", **fv)
    flags.DEFINE_integer("batch_size", 64, "Global batch size (split across replicas).", **fv)
    flags.DEFINE_integer("seed", 0, "Seed of data order, initialisers and sampling.", **fv)
    flags.DEFINE_float("learning_rate", 5e-4, "Adam learning rate of every optimizer (§4.2).", **fv)
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "Distribution strategy.", **fv)
    flags.DEFINE_integer("num_cpu_replicas", 1, "With --strategy=mirrored and no GPU: logical "
                         "CPU replicas.", **fv)
    flags.DEFINE_string("data_dir", None, "TFDS data directory (prepared offline).", **fv)
    flags.DEFINE_integer("image_size", None, "Resize images to this size (default: the data "
                         "set's own, 16 for digits).", **fv)
    flags.DEFINE_bool("flip", False, "Random horizontal flips of training images.", **fv)
    flags.DEFINE_string("classes", None, "Labeled classes to keep, e.g. '0-6' (must be 0..K-1).", **fv)
    flags.DEFINE_multi_string("model_arg", [], "Model constructor argument key=value; repeat.", **fv)
    flags.DEFINE_string("unlabeled_dataset", None, "Unlabeled data for semi-supervised "
                        "fine-tuning (Lr-LiVAE §3.6), after --epochs.", **fv)
    flags.DEFINE_string("unlabeled_classes", None, "Classes of --unlabeled_dataset to use "
                        "(their labels are dropped), e.g. '7-9'.", **fv)
    flags.DEFINE_integer("finetune_epochs", 0, "Epochs of semi-supervised fine-tuning.", **fv)
    flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (repeats the data); default "
                         "one pass over the training split.", **fv)
    flags.DEFINE_integer("samples_per_class", 8, "Columns of the per-epoch sample grid.", **fv)
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step (slower on CPU, "
                      "DESIGN.md).", **fv)
    flags.DEFINE_bool("restart", False, "Ignore and overwrite an existing checkpoint.", **fv)
    flags.DEFINE_integer("verbose", 1, "Keras progress output: 0 silent, 1 bar, 2 one line.", **fv)


def config_from_flags(values) -> TrainConfig:
    if not values.workdir:
        raise ValueError("--workdir is required")
    return TrainConfig(
        workdir=values.workdir, model=values.model, dataset=values.dataset,
        epochs=values.epochs, batch_size=values.batch_size, seed=values.seed,
        learning_rate=values.learning_rate, strategy=values.strategy,
        num_cpu_replicas=values.num_cpu_replicas, data_dir=values.data_dir,
        image_size=values.image_size, flip=values.flip, classes=parse_classes(values.classes),
        model_args=parse_model_args(values.model_arg),
        unlabeled_dataset=values.unlabeled_dataset,
        unlabeled_classes=parse_classes(values.unlabeled_classes),
        finetune_epochs=values.finetune_epochs, steps_per_epoch=values.steps_per_epoch,
        samples_per_class=values.samples_per_class, jit_compile=values.jit_compile,
        restart=values.restart, verbose=values.verbose)


def config_from_flagfile(path, **overrides):
    """A TrainConfig from a flagfile (as ``train.py --flagfile=path`` would build it), with
    ``overrides`` applied to the config's fields: lets benchmarks reuse the configs verbatim."""
    import dataclasses

    values = flags.FlagValues()
    define_train_flags(values)
    values(["train", f"--flagfile={path}", f"--workdir={overrides.get('workdir', 'unused')}"])
    return dataclasses.replace(config_from_flags(values), **overrides)
