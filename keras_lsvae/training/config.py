"""The configuration of a training run (what ``scripts/train.py`` builds from its flags)."""

from __future__ import annotations

import ast
import dataclasses
from typing import Any, Dict, Optional, Tuple


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
    strategy: str = "default"
    num_cpu_replicas: int = 1
    data_dir: Optional[str] = None
    image_size: Optional[int] = None
    flip: bool = False
    classes: Optional[Tuple[int, ...]] = None
    model_args: Dict[str, Any] = dataclasses.field(default_factory=dict)
    unlabeled_dataset: Optional[str] = None
    unlabeled_classes: Optional[Tuple[int, ...]] = None
    finetune_epochs: int = 0
    steps_per_epoch: Optional[int] = None
    samples_per_class: int = 8
    jit_compile: bool = False
    restart: bool = False
    verbose: int = 1

    #: fields that must match between a checkpoint and the run that resumes it (epochs and the
    #: fine-tuning fields may change: extending a run, or fine-tuning a finished one, is legal)
    RESUME_KEYS = ("model", "dataset", "batch_size", "seed", "image_size", "classes",
                   "model_args")

    def to_json(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("classes", "unlabeled_classes"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data


def parse_model_args(items) -> Dict[str, Any]:
    """``["zs_dim=16", "gan_loss=hinge"]`` -> {"zs_dim": 16, "gan_loss": "hinge"}.

    Values are Python literals where they parse as one (numbers, booleans, tuples), else
    strings. A malformed item raises a ValueError naming it.
    """
    parsed = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--model_arg expects key=value, got {item!r}")
        try:
            parsed[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key.strip()] = value
    return parsed


def parse_classes(text) -> Optional[Tuple[int, ...]]:
    """"0-6" or "0,1,2" -> (0, ..., 6); empty -> None."""
    if text is None or str(text).strip() == "":
        return None
    classes = []
    for part in str(text).split(","):
        part = part.strip()
        if "-" in part:
            low, high = part.split("-")
            classes.extend(range(int(low), int(high) + 1))
        else:
            classes.append(int(part))
    return tuple(classes)
