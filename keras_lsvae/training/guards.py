"""Guards that stop a run which has gone wrong before it saves anything wrong.

:class:`StopOnNonFinite`: a non-finite loss (``--learning_rate=inf``, an exploding GAN) stops
training with a ValueError that names the epoch, the step and the loss; the run's last
checkpoint (written before the divergence) stays the newest, and ``model.keras`` and
``metrics.json`` are not written. It runs before the checkpointer in the callback list, and it
also checks the weights themselves wherever a checkpoint may be written next (the step whose
update produced non-finite weights still reports the finite loss computed before it).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf


class NonFiniteLossError(ValueError):
    """Training diverged: a loss or a weight is NaN or infinite."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Raise :class:`NonFiniteLossError` at the first non-finite logged loss, and before a
    checkpoint (each epoch end; each step when checkpoints are written every ``every_steps``
    steps) if a weight is non-finite."""

    def __init__(self, every_steps=None):
        super().__init__()
        self.every_steps = every_steps
        self.epoch = 0
        self._finite = None

    def _weights_finite(self):
        """One fused check of every floating-point weight (one host round trip)."""
        if self._finite is None:
            variables = [v for v in self.model.weights if "float" in str(v.dtype)]

            @tf.function
            def finite():
                return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v))
                                               for v in variables]))
            self._finite = finite if variables else (lambda: True)
        return bool(self._finite())

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _fail(self, where, what):
        raise NonFiniteLossError(
            f"training diverged at {where}: {what}; stopped without saving model.keras (the "
            "last checkpoint, written before this, is kept: resume from it with a lower "
            "--learning_rate, or --restart)")

    def on_train_batch_end(self, batch, logs=None):
        where = f"epoch {self.epoch + 1}, step {batch + 1}"
        for key, value in (logs or {}).items():
            value = float(np.asarray(value))
            if not math.isfinite(value):
                self._fail(where, f"loss {key} = {value}")
        if self.every_steps:  # a checkpoint may follow this step: its weights must be sound
            self._check_weights(where)

    def on_epoch_end(self, epoch, logs=None):
        self._check_weights(f"the end of epoch {epoch + 1}")

    def _check_weights(self, where):
        if not self._weights_finite():
            names = [v.path for v in self.model.weights if "float" in str(v.dtype)
                     and not bool(tf.reduce_all(tf.math.is_finite(v)))]
            self._fail(where, f"non-finite weights in {', '.join(names[:3])}"
                       + (f" and {len(names) - 3} more" if len(names) > 3 else ""))
