"""The configuration of a training run (what ``scripts/train.py`` builds from its flags).

Every check that needs no data and no model lives here (:meth:`TrainConfig.validate`), so a
flag combination that cannot work fails before anything is read, built or written, with a
message that names the flag. Checks that need the data set's metadata (image shapes, label
kinds) or the model's constructor run in :func:`keras_lsvae.training.loop.train`, still before
the first file is written.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
from typing import Any, Dict, Optional, Tuple

from keras_lsvae.models import extensions as extensions_lib

PRECISIONS = ("off", "mixed_float16", "mixed_bfloat16")
#: --lr_schedule values (keras_lsvae.training.callbacks.learning_rate_factor)
LR_SCHEDULES = ("constant", "cosine")

#: Where runs go when no --workdir is given: ``runs/<config stem>`` or ``runs/<model>_<data>``.
DEFAULT_RUNS_DIR = "runs"


@dataclasses.dataclass
class TrainConfig:
    """Everything a run needs; see ``keras_lsvae/training/flags.py`` for each field's help."""

    workdir: str
    model: str = "lrlivae"
    dataset: str = "digits"
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    learning_rate: float = 5e-4
    #: "constant", or "cosine": every optimizer's rate follows a half cosine from its own base
    #: rate down to ``lr_final_fraction`` × it over the supervised epochs (per epoch;
    #: fine-tuning epochs run at the base rates; ``callbacks.learning_rate_factor``)
    lr_schedule: str = "constant"
    lr_final_fraction: float = 0.1
    strategy: str = "default"
    num_cpu_replicas: Optional[int] = None
    data_dir: Optional[str] = None
    download: bool = True
    image_size: Optional[int] = None
    flip: bool = False
    classes: Optional[Tuple[int, ...]] = None
    model_args: Dict[str, Any] = dataclasses.field(default_factory=dict)
    #: {name: {parameter: value}}: the library's additions to the model
    #: (keras_lsvae/models/extensions.py), from ``--extension``
    extensions: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
    unlabeled_dataset: Optional[str] = None
    unlabeled_classes: Optional[Tuple[int, ...]] = None
    finetune_epochs: int = 0
    steps_per_epoch: Optional[int] = None
    checkpoint_every_steps: Optional[int] = None
    samples_per_class: int = 8
    jit_compile: bool = False
    #: Keras dtype policy of the networks: "off" (float32), "mixed_float16" (with loss scaling
    #: for every optimizer) or "mixed_bfloat16"; measured defaults in docs/speed.md.
    mixed_precision: str = "off"
    restart: bool = False
    verbose: int = 1

    #: fields that must match between a checkpoint and the run that resumes it: whatever sizes
    #: the variables or the optimizer state (mixed_precision: loss-scale optimizers) or picks
    #: the data (epochs and the fine-tuning fields may change: extending a run, or fine-tuning
    #: a finished one, is legal)
    RESUME_KEYS = ("model", "dataset", "batch_size", "seed", "image_size", "classes",
                   "model_args", "extensions", "mixed_precision")

    def to_json(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("classes", "unlabeled_classes"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data

    @property
    def replicas(self) -> int:
        """CPU replicas for --strategy=mirrored on a machine without GPUs (1 unless given)."""
        return self.num_cpu_replicas or 1

    def validate(self) -> "TrainConfig":
        """Reject settings that cannot work or would be silently ignored, naming the flag.

        Raises ``ValueError`` (message starts with the flag); returns ``self``.
        """
        if not self.workdir:
            raise ValueError("--workdir: must not be empty")
        positive = dict(epochs=self.epochs, batch_size=self.batch_size,
                        samples_per_class=self.samples_per_class)
        if self.steps_per_epoch is not None:
            positive["steps_per_epoch"] = self.steps_per_epoch
        if self.num_cpu_replicas is not None:
            positive["num_cpu_replicas"] = self.num_cpu_replicas
        if self.checkpoint_every_steps is not None:
            positive["checkpoint_every_steps"] = self.checkpoint_every_steps
        if self.image_size is not None:
            positive["image_size"] = self.image_size
        for flag, value in positive.items():
            if int(value) < 1:
                raise ValueError(f"--{flag}: must be >= 1, got {value}")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning_rate: must be > 0, got {self.learning_rate}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"--lr_schedule: must be one of {', '.join(LR_SCHEDULES)}, got "
                             f"{self.lr_schedule!r}")
        if not 0.0 <= self.lr_final_fraction <= 1.0:
            raise ValueError(f"--lr_final_fraction: must be in [0, 1], got "
                             f"{self.lr_final_fraction}")
        if self.finetune_epochs < 0:
            raise ValueError(f"--finetune_epochs: must be >= 0, got {self.finetune_epochs}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"--mixed_precision: must be one of {', '.join(PRECISIONS)}, got "
                             f"{self.mixed_precision!r}")
        if self.verbose not in (0, 1, 2):
            raise ValueError(f"--verbose: must be 0, 1 or 2, got {self.verbose}")
        if self.num_cpu_replicas is not None and self.strategy != "mirrored":
            raise ValueError(f"--num_cpu_replicas={self.num_cpu_replicas} needs "
                             f"--strategy=mirrored (it would be ignored with "
                             f"--strategy={self.strategy})")
        if self.jit_compile and (self.num_cpu_replicas or 1) > 1:
            # XLA refuses the variables of the other logical CPU devices ("resource ... located
            # in device CPU:1 from device CPU:0"): fail before anything is built.
            raise ValueError(f"--jit_compile does not work with --num_cpu_replicas="
                             f"{self.num_cpu_replicas} (XLA cannot use variables placed on other "
                             "logical CPU devices); drop one of them")
        if self.finetune_epochs > 0 and not self.unlabeled_dataset:
            raise ValueError(f"--finetune_epochs={self.finetune_epochs} needs "
                             "--unlabeled_dataset (the unlabeled images of §3.6)")
        if self.unlabeled_dataset and self.finetune_epochs == 0:
            raise ValueError(f"--unlabeled_dataset={self.unlabeled_dataset} is used only by "
                             "semi-supervised fine-tuning: add --finetune_epochs=N (N >= 1), or "
                             "drop --unlabeled_dataset")
        if self.unlabeled_classes is not None and not self.unlabeled_dataset:
            raise ValueError("--unlabeled_classes needs --unlabeled_dataset")
        reserved = {"input_shape": "the data set (use --image_size to resize images)",
                    "num_classes": "the data set (use --classes to keep some classes)",
                    "seed": "--seed"}
        for key in sorted(set(self.model_args) & set(reserved)):
            raise ValueError(f"--model_arg={key}=...: {key} is set by {reserved[key]}, not by "
                             "--model_arg")
        if "extensions" in self.model_args:
            raise ValueError("--model_arg=extensions=...: switch extensions on with "
                             "--extension=NAME or --extension=NAME.PARAM=VALUE")
        # Model arguments that became extensions (old flagfiles): translated, with a warning.
        self.model_args, legacy = extensions_lib.from_legacy(self.model_args)
        for name, params in legacy.items():
            self.extensions = {**self.extensions,
                               name: {**params, **self.extensions.get(name, {})}}
        return self


def parse_model_args(items) -> Dict[str, Any]:
    """``["zs_dim=16", "gan_loss=hinge"]`` -> {"zs_dim": 16, "gan_loss": "hinge"}.

    Values are Python literals where they parse as one (numbers, booleans, tuples), else
    strings (so ``gan_loss=hinge`` needs no quotes). A key given again wins over its earlier
    value (a command line overrides its flagfile). A malformed item raises a ValueError naming
    it. Types are checked against the model's constructor later
    (:func:`keras_lsvae.training.loop.check_model_args`).
    """
    parsed = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--model_arg: expects key=value, got {item!r}")
        try:
            parsed[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parsed[key] = value.strip()
    return parsed


_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def parse_classes(text, flag="--classes") -> Optional[Tuple[int, ...]]:
    """"0-6" or "0,1,2" -> (0, ..., 6); empty or None -> None.

    Anything else (letters, negative ids, reversed ranges, repeats, empty parts) raises a
    ValueError that names ``flag`` and shows the accepted forms.
    """
    if text is None or str(text).strip() == "":
        return None
    usage = f"{flag}: expected class ids like '0-6' or '0,2,5', got {text!r}"
    classes = []
    for part in str(text).split(","):
        part = part.strip()
        match = _RANGE.match(part)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if low > high:
                raise ValueError(f"{usage} (range {part!r} runs backwards)")
            classes.extend(range(low, high + 1))
        elif part.isdigit():
            classes.append(int(part))
        else:
            raise ValueError(f"{usage} (bad part {part!r})")
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise ValueError(f"{usage} (class ids {repeated} appear twice)")
    return tuple(classes)


def default_workdir(model: str, dataset: str, flagfile: Optional[str] = None) -> str:
    """``runs/<flagfile stem>`` (``runs/cifar10`` for configs/cifar10.cfg), else
    ``runs/<model>_<dataset>`` with the data set name made path-safe (``npz:/a/b.npz`` ->
    ``npz_b``; ``npz:/a/b.npz?subset=glasses`` -> ``npz_b_subset_glasses``)."""
    if flagfile:
        stem = os.path.splitext(os.path.basename(flagfile))[0]
    else:
        dataset, _, options = str(dataset).partition("?")  # npz:PATH?subset=glasses
        kind, sep, argument = dataset.partition(":")
        name = kind
        if sep:
            name += "_" + os.path.splitext(os.path.basename(argument.rstrip("/\\")))[0]
        if options:  # each subset of one file gets its own run folder
            name += "_" + options
        stem = f"{model}_{name}"
    return os.path.join(DEFAULT_RUNS_DIR, re.sub(r"[^A-Za-z0-9_.-]+", "_", stem))
