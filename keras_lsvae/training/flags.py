"""The absl flags of the scripts, each defined once, with help, and turned into a TrainConfig.

``scripts/train.py`` is thin: it calls :func:`run_from_argv` (parse flags -> TrainConfig ->
:func:`keras_lsvae.training.train`). Tests call the same function with a command line, so the
commands in config headers and in the README are tested as typed.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from absl import flags

from keras_lsvae.models import extensions as extensions_lib
from keras_lsvae.training.config import (LR_SCHEDULES, PRECISIONS, TrainConfig, default_workdir,
                                         parse_classes, parse_model_args)
from keras_lsvae.training.strategy import STRATEGIES


def define_train_flags(flag_values=flags.FLAGS):
    """Define the training flags on ``flag_values`` (the global FLAGS by default)."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("workdir", None, "Directory of the run: model.keras, flags.txt, "
                        "metrics.json, samples/, logs/, checkpoints/. Rerunning resumes. "
                        "Default: runs/<flagfile name> (e.g. runs/cifar10 for "
                        "--flagfile=configs/cifar10.cfg), or runs/<model>_<dataset>.", **fv)
    flags.DEFINE_string("model", "lrlivae", "Model name from keras_lsvae.models.names().", **fv)
    flags.DEFINE_string("dataset", "digits", "Data set name (keras_lsvae.data), e.g. digits, "
                        "shapes, toy2d, mnist, cifar10, npz:PATH, folder:PATH.", **fv)
    flags.DEFINE_integer("epochs", 10, "Epochs of supervised training.", **fv)
    flags.DEFINE_integer("batch_size", 64, "Global batch size (split across replicas).", **fv)
    flags.DEFINE_integer("seed", 0, "Seed of data order, initialisers and sampling.", **fv)
    flags.DEFINE_float("learning_rate", 5e-4, "Adam learning rate of every optimizer (§4.2).", **fv)
    flags.DEFINE_enum("lr_schedule", "constant", list(LR_SCHEDULES), "constant, or cosine: "
                      "each optimizer's rate decays per epoch along a half cosine from its base "
                      "to --lr_final_fraction x base over the supervised epochs (fine-tuning "
                      "runs at the base rates).", **fv)
    flags.DEFINE_float("lr_final_fraction", 0.1, "With --lr_schedule=cosine: the last "
                       "supervised epoch's rate over the base rate.", **fv)
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "Distribution strategy: default "
                      "(one device), mirrored (the local GPUs, or --num_cpu_replicas CPU "
                      "replicas), multi_worker (the cluster in $TF_CONFIG), tpu ($TPU_NAME or the "
                      "local TPU VM; untested). README, 'Scale'.",
                      **fv)
    flags.DEFINE_integer("num_cpu_replicas", None, "With --strategy=mirrored and no GPU: "
                         "logical CPU replicas (default 1).", **fv)
    flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS's own, "
                        "$TFDS_DATA_DIR or ~/tensorflow_datasets).", **fv)
    flags.DEFINE_bool("download", True, "Download and prepare a TFDS data set that is not "
                      "prepared yet (--nodownload: fail with instructions instead).", **fv)
    flags.DEFINE_integer("image_size", None, "Resize images to this size (default: the data "
                         "set's own; 32 for the 28x28 MNIST sets).", **fv)
    flags.DEFINE_bool("flip", False, "Random horizontal flips of training images.", **fv)
    flags.DEFINE_string("classes", None, "Labeled classes to keep, e.g. '0-6' (must be 0..K-1).", **fv)
    flags.DEFINE_multi_string("model_arg", [], "Model constructor argument key=value; repeat.", **fv)
    flags.DEFINE_multi_string("extension", [], "Switch on an extension of the model "
                              "(keras_lsvae/models/extensions.py): NAME, or NAME.PARAM=VALUE "
                              "to set one of its parameters; repeat.", **fv)
    flags.DEFINE_string("unlabeled_dataset", None, "Unlabeled data for semi-supervised "
                        "fine-tuning (Lr-LiVAE §3.6), after --epochs; needs --finetune_epochs.",
                        **fv)
    flags.DEFINE_string("unlabeled_classes", None, "Classes of --unlabeled_dataset to use "
                        "(their labels are dropped), e.g. '7-9'.", **fv)
    flags.DEFINE_integer("finetune_epochs", 0, "Epochs of semi-supervised fine-tuning "
                         "(needs --unlabeled_dataset).", **fv)
    flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (repeats the data); default "
                         "one pass over the training split.", **fv)
    flags.DEFINE_integer("checkpoint_every_steps", None, "Also checkpoint every N train steps "
                         "(default: after each epoch only); an interrupted run loses at most "
                         "the last interval.", **fv)
    flags.DEFINE_integer("samples_per_class", 8, "Columns of the per-epoch sample grid.", **fv)
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step (1.6-1.9x slower on "
                      "CPU, docs/speed.md).", **fv)
    flags.DEFINE_enum("mixed_precision", "off", list(PRECISIONS), "Keras mixed-precision policy "
                      "(mixed_float16 adds loss scaling to every optimizer); off = float32, "
                      "measured the fastest on CPU (docs/speed.md).", **fv)
    flags.DEFINE_bool("restart", False, "Start over: delete the run's checkpoints, logs, samples, "
                      "points, figures, history and results first.", **fv)
    flags.DEFINE_integer("verbose", 1, "Keras progress output: 0 silent, 1 bar, 2 one line.", **fv)


def flagfile_of(argv: Sequence[str]) -> Optional[str]:
    """The first ``--flagfile`` given on a command line (the run's config), or None."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        for prefix in ("--flagfile=", "-flagfile="):
            if arg.startswith(prefix):
                return arg[len(prefix):]
        if arg in ("--flagfile", "-flagfile") and i + 1 < len(argv):
            return argv[i + 1]
    return None


def config_from_flags(values, flagfile: Optional[str] = None) -> TrainConfig:
    """A validated TrainConfig from parsed flags; ``flagfile`` names the default workdir."""
    workdir = values.workdir or default_workdir(values.model, values.dataset, flagfile)
    return TrainConfig(
        workdir=workdir, model=values.model, dataset=values.dataset,
        epochs=values.epochs, batch_size=values.batch_size, seed=values.seed,
        learning_rate=values.learning_rate, lr_schedule=values.lr_schedule,
        lr_final_fraction=values.lr_final_fraction, strategy=values.strategy,
        num_cpu_replicas=values.num_cpu_replicas, data_dir=values.data_dir,
        download=values.download, image_size=values.image_size, flip=values.flip,
        classes=parse_classes(values.classes, "--classes"),
        model_args=parse_model_args(values.model_arg),
        extensions=extensions_lib.parse_flag(values.extension),
        unlabeled_dataset=values.unlabeled_dataset,
        unlabeled_classes=parse_classes(values.unlabeled_classes, "--unlabeled_classes"),
        finetune_epochs=values.finetune_epochs, steps_per_epoch=values.steps_per_epoch,
        checkpoint_every_steps=values.checkpoint_every_steps,
        samples_per_class=values.samples_per_class, jit_compile=values.jit_compile,
        mixed_precision=values.mixed_precision,
        restart=values.restart, verbose=values.verbose).validate()


def parse_argv(argv: Sequence[str], flag_values=None):
    """Parse a full command line (``argv[0]`` is the program) into fresh FlagValues."""
    if flag_values is None:
        flag_values = flags.FlagValues()
        define_train_flags(flag_values)
    unparsed = flag_values(list(argv))
    if len(unparsed) > 1:
        raise flags.Error(f"unexpected arguments: {unparsed[1:]}")
    return flag_values


def run_from_flags(values, argv: Sequence[str]) -> dict:
    """Flags -> TrainConfig -> train; what ``scripts/train.py`` does. Returns the metrics."""
    config = config_from_flags(values, flagfile_of(argv[1:]))
    print(f"workdir: {config.workdir}", flush=True)
    from keras_lsvae.training.loop import train  # imported late: TF starts after flag parsing
    metrics = train(config, flags_text=values.flags_into_string())
    summary = {k: v for k, v in metrics.items() if k.startswith("test_")}
    print("metrics:", summary)
    return metrics


def run_from_argv(argv: Optional[Sequence[str]] = None) -> dict:
    """``scripts/train.py`` as a function: ``run_from_argv(["train.py", "--flagfile=..."])``."""
    argv = list(sys.argv if argv is None else argv)
    return run_from_flags(parse_argv(argv), argv)


def config_from_flagfile(path, **overrides):
    """A TrainConfig from a flagfile (as ``train.py --flagfile=path`` would build it), with
    ``overrides`` applied to the config's fields: lets benchmarks reuse the configs verbatim."""
    import dataclasses

    values = parse_argv(["train", f"--flagfile={path}",
                         f"--workdir={overrides.get('workdir', 'unused')}"])
    return dataclasses.replace(config_from_flags(values, path), **overrides).validate()
