"""What every benchmark suite shares: its configs (shipped with the package), the check of a
data file it was given, and training a config then loading the trained model.

The suites' flagfiles are package data (``keras_lsvae/configs/*.cfg``, the repository's
``configs/`` itself: tests/test_benchmarks.py checks they are the same files), so an installed
package runs its suites without the repository. Default data paths are the scripts' business
(``scripts/benchmark.py``), not the library's.
"""

from __future__ import annotations

import dataclasses
import os
import time

from keras_lsvae.evaluation import load_workdir_model
from keras_lsvae.training import train
from keras_lsvae.training.flags import config_from_flagfile

#: the package's copy of the repository's configs/ (setup.cfg ``package_data``)
CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "configs")


def config_path(name: str) -> str:
    """Path of flagfile ``name`` (e.g. ``"digits.cfg"``) among the package's configs."""
    return os.path.join(CONFIGS_DIR, name)


def suite_config(name, workdir, seed=None, epochs=None, **overrides):
    """Flagfile ``name`` as a quiet TrainConfig that restarts ``workdir`` (``overrides``
    replace flags; ``seed`` and ``epochs``, if given, replace the config's)."""
    if seed is not None:
        overrides["seed"] = seed
    config = config_from_flagfile(config_path(name), workdir=workdir, verbose=0,
                                  restart=True, **overrides)
    return dataclasses.replace(config, epochs=int(epochs)) if epochs else config


def require_data_file(suite: str, data_path) -> str:
    """``data_path`` if it is a file, else a FileNotFoundError saying what to pass."""
    if not data_path or not os.path.isfile(data_path):
        where = f"no data file at {data_path!r}" if data_path else "no data file given"
        raise FileNotFoundError(
            f"{suite}: {where}; pass --data=PATH/mnist_dev.npz (8,000 real MNIST digits in "
            "the npz: layout of keras_lsvae.data; the shared development copy is "
            "../shared/data/mnist_dev.npz from the repository root)")
    return data_path


def train_and_load(config):
    """Train ``config`` and load its ``model.keras``: ``(model, training seconds)``."""
    started = time.time()
    train(config)
    seconds = round(time.time() - started, 1)
    return load_workdir_model(config.workdir), seconds
