"""Shared pytest setup.

* The repository is importable without installing it; TF logs are quiet.
* The CPU is split into 2 logical devices before TensorFlow initialises, so the MirroredStrategy
  parity test can run 2 replicas on a CPU-only machine (other tests use the default strategy
  and see no difference).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
