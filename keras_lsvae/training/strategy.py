"""Distribution strategies by name.

``default`` is TensorFlow's default (one device); ``mirrored`` is ``MirroredStrategy`` over the
visible GPUs, or over ``num_cpu_replicas`` logical CPU devices when there is no GPU (the way the
tests check 1 vs 2 replica parity on CPU machines). Logical CPU devices can only be configured
before TensorFlow initialises its devices: call :func:`configure_cpu_replicas` first.
"""

from __future__ import annotations

import tensorflow as tf

STRATEGIES = ("default", "mirrored")


def configure_cpu_replicas(count: int) -> None:
    """Split the physical CPU into ``count`` logical devices (no-op for count <= 1)."""
    if count <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    existing = tf.config.get_logical_device_configuration(cpus[0])
    if existing and len(existing) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError as error:
        raise RuntimeError(
            f"cannot create {count} CPU replicas after TensorFlow has initialised its devices; "
            "configure them at program start") from error


# One MirroredStrategy per device set and process: two live instances over the same devices
# interleave their collective all-reduces and abort with shape mismatches (seen when a second
# run started in the same process).
_MIRRORED = {}


def get_strategy(name: str = "default", num_cpu_replicas: int = 1) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            devices = tuple(d.name for d in tf.config.list_logical_devices("GPU"))
        else:
            configure_cpu_replicas(num_cpu_replicas)
            cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
            devices = tuple(cpus[:max(1, num_cpu_replicas)])
        if devices not in _MIRRORED:
            _MIRRORED[devices] = tf.distribute.MirroredStrategy(list(devices))
        return _MIRRORED[devices]
    raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
