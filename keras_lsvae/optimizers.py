"""Optimizers: Keras' Adam with TF's fused update kernel.

Keras 3's ``Adam.update_step`` on TensorFlow is about fifteen element-wise ops and three
variable assignments per variable (m, v, the variable), each a separate op for the executor
(Lr-LiVAE's iteration makes 87 variable updates; the TF profiler counted 527 Mul and
367 Sub ops per iteration with Keras' Adam, 179 and 19 with this one). :class:`Adam` does the
same update with TF's fused ``ResourceApplyAdam``, one op per variable, whose formula is Keras'
(Kingma & Ba 2015, Algorithm 1 with the bias corrections folded into the step size):

    α_t = lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)
    m ← m + (g − m)(1 − β₁),  v ← v + (g² − v)(1 − β₂),  θ ← θ − α_t · m / (√v + ε)

(tensorflow/core/kernels/training_ops.cc, ``ApplyAdamNonCuda``; keras/src/optimizers/adam.py).
The same values up to float32 rounding (tests/test_optimizers.py). AMSGrad, sparse
(``IndexedSlices``) gradients and variables of another dtype than float32 take Keras' path.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_lsvae")
class Adam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` (same arguments, variables and update) whose per-variable
    update is TF's fused ``ResourceApplyAdam`` kernel (module docstring).

    Named as Keras' class: weight files address a model's optimizers by class name in snake
    case (``adam``), so checkpoints written with Keras' Adam load into models built with it.
    """

    def _fusable(self, gradient, variable):
        return (not self.amsgrad and not isinstance(gradient, tf.IndexedSlices)
                and variable.dtype == "float32")

    def update_step(self, gradient, variable, learning_rate):
        if not self._fusable(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        momentum, velocity = self._momentums[index], self._velocities[index]
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1 = tf.cast(self.beta_1, tf.float32)
        beta_2 = tf.cast(self.beta_2, tf.float32)
        target = variable.value if isinstance(variable, keras.Variable) else variable
        tf.raw_ops.ResourceApplyAdam(
            var=target.handle, m=momentum.value.handle, v=velocity.value.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, tf.float32), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, tf.float32), grad=tf.cast(gradient, tf.float32))
