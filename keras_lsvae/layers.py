"""Layers: reparameterised Gaussian sampling and the building blocks of the networks.

Layers return tensors; distributions are built inside losses (keras_lsvae.losses).

Replica invariance: training on R replicas must apply the update of one replica on
the same global batch. Three things here serve it:

* :func:`batch_normal`: sampling noise that does not depend on how the batch is split. Each
  draw takes its seed from a seeded ``SeedGenerator`` (one ``next()`` per draw: the generator's
  state is the step counter, saved with the model by :class:`SavesSeedStates` and identical on
  every replica, since every replica makes the same draws in the same order) and draws the
  noise of the **whole global batch** from that stateless seed; each replica keeps its own
  rows. Example i of the global batch gets the same noise whatever the replica count, and on
  one replica the values are exactly those of ``keras.random.normal(shape, seed=generator)``.
* :func:`gather_replicas`: the global batch of a tensor (``all_gather``; its gradient sums the
  replicas' upstream gradients and returns each replica its own rows), for the losses that are
  statistics of the whole batch (HSIC, MMD, batch feature means, in-batch pairings), so that
  each replica computes the global batch's value. With every replica's objective divided by R
  and the gradients summed across replicas (``LabelSplitModel.apply_objective``), such a term
  gets exactly the gradient of the global value.
* :func:`batch_norm`: :class:`BatchNormalization`, Keras' ``BatchNormalization(synchronized=
  True)`` whose training statistics are those of the global batch (an all-reduce of sums and
  sums of squares) on more than one replica; on one replica, where no all-reduce is needed, it
  runs TF's fused kernel (the same batch norm up to float32 rounding; the unfused
  element-wise ops and their gradients took 15% of Lr-LiVAE's op time).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

SAMPLING_MODES = ("sample", "mode")
# Batch-norm momentum of every block: runs on small data sets are a few hundred steps long, too
# few for the moving statistics to settle with the default 0.99.
BN_MOMENTUM = 0.9


class SavesSeedStates:
    """Mixin for a layer or model: the states of its own ``keras.random.SeedGenerator``s are
    saved with its variables (``.keras`` files and ``.weights.h5``), which Keras does not do, so
    that a loaded model continues the same random stream (one more training step after
    ``load_model`` equals one more on the original; tests/test_models_common.py). Files
    without the states load as before, the generators keeping their seeded start."""

    _SEED_STATE_KEY = "seed_state_"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, generator in enumerate(self._seed_generators):
            store[f"{self._SEED_STATE_KEY}{i}"] = generator.state

    def load_own_variables(self, store):
        keys = list(store.keys())
        super().load_own_variables(
            {k: store[k] for k in keys if not k.startswith(self._SEED_STATE_KEY)})
        for i, generator in enumerate(self._seed_generators):
            key = f"{self._SEED_STATE_KEY}{i}"
            if key in keys:
                generator.state.assign(store[key])


def _replica_context():
    """The replica context when running on more than one replica, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def replica_rows(local_size):
    """(offset, global size) of this replica's rows in the global batch (offset 0 and the local
    size on one replica). Replicas may hold different row counts (an uneven last batch), so
    the sizes are gathered rather than assumed equal."""
    context = _replica_context()
    if context is None:
        return 0, local_size
    sizes = context.all_gather(tf.reshape(tf.cast(local_size, tf.int32), [1]), axis=0)
    offset = tf.reduce_sum(sizes[:context.replica_id_in_sync_group])
    return offset, tf.reduce_sum(sizes)


def batch_normal(shape, seed, dtype="float32"):
    """N(0, I) noise of ``shape`` = (B, ...) for this replica's B rows of the global batch
    (module docstring): one draw of shape (B_global, ...) from ``seed`` (a ``SeedGenerator``,
    advanced once, or an int), sliced to this replica's rows. Outside a multi-replica step it
    is ``keras.random.normal(shape, seed=seed, dtype=dtype)``."""
    context = _replica_context()
    if context is None:
        return keras.random.normal(shape, seed=seed, dtype=dtype)
    shape = tf.convert_to_tensor(shape, tf.int32)
    local = shape[0]
    offset, total = replica_rows(local)
    noise = keras.random.normal(tf.concat([[total], shape[1:]], 0), seed=seed, dtype=dtype)
    return noise[offset:offset + local]


def gather_replicas(tensor):
    """The global batch of ``tensor`` (replicas' rows concatenated in replica order, i.e. the
    order of the global batch), differentiable; ``tensor`` itself on one replica."""
    context = _replica_context()
    if context is None:
        return tensor
    return context.all_gather(tensor, axis=0)


def local_rows(global_tensor, local_size):
    """This replica's rows of a global-batch tensor (inverse of :func:`gather_replicas`)."""
    offset, _ = replica_rows(local_size)
    return global_tensor[offset:offset + local_size]


@keras.saving.register_keras_serializable(package="keras_lsvae")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' ``BatchNormalization`` (same arguments, variables and results) whose step runs
    TF's fused kernel (``FusedBatchNormV3``, training and inference) wherever Keras' own
    element-wise ops are not needed: outside a multi-replica step (no strategy, one replica
    in sync, or the cross-replica context, where Keras' ``synchronized`` moments are local
    too), on rank-4 channels-last float inputs without mask or renorm. Elsewhere, i.e. under
    more than one replica (``synchronized``: the global batch's moments by all-reduce,
    tests/test_distribute.py), it is Keras' layer unchanged.

    Exactness (tests/test_layers_bn.py): as Keras, the inputs are normalised in float32 (cast
    up under a mixed precision policy, the output cast back) and the moving variance averages
    the *biased* batch variance; the fused kernel returns the unbiased one
    (n / (n − 1) × biased, n = B·H·W; tensorflow/tensorflow#55545), so the update scales it
    back. Rank-2 (Dense) inputs stay unfused: fused as (B, 1, 1, C), fwd + bwd took 1.6 × Keras'
    time at (64, 256) (the MLPs, the adversaries) and 0.66 × at (64, 2048) (the decoder's first
    layer, < 0.5% of an Lr-LiVAE step); docs/speed.md.

    Named as Keras' class because Keras' weight files address a model's layers by their class
    name in snake case (``layers/batch_normalization_N/vars``, ``saving_lib``): weight files
    (``ckpt.weights.h5``) written before this layer existed load into networks built with it;
    ``.keras`` files of that time hold Keras' class and load as they did."""

    def _fusable(self, inputs, mask):
        return (mask is None and not self.renorm and len(inputs.shape) == 4
                and self.axis in (-1, 3) and _replica_context() is None
                and keras.backend.result_type(inputs.dtype, "float32") == "float32")

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = self.gamma.value if self.scale else tf.ones([channels], tf.float32)
        beta = self.beta.value if self.center else tf.zeros([channels], tf.float32)
        if training and self.trainable:
            y, mean, unbiased_variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, is_training=True)
            count = tf.cast(tf.size(x) // channels, tf.float32)  # n, per channel
            # Keras' biased variance (n = 1: both are 0)
            variance = unbiased_variance * ((count - 1.0) / tf.maximum(count, 1.0))
            self.moving_mean.assign(self.moving_mean * self.momentum
                                    + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum
                                        + variance * (1.0 - self.momentum))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=self.moving_mean.value,
                variance=self.moving_variance.value, epsilon=self.epsilon, is_training=False)
        return tf.cast(y, self.compute_dtype)


def batch_norm(**kwargs):
    """:class:`BatchNormalization` of every network: momentum :data:`BN_MOMENTUM`, statistics
    over the global batch under a distribution strategy (``synchronized=True``, module
    docstring), TF's fused kernel on one replica."""
    kwargs.setdefault("momentum", BN_MOMENTUM)
    return BatchNormalization(synchronized=True, **kwargs)


@tf.custom_gradient
def narrow_conv2d(inputs, kernel):
    """``conv2d(inputs, kernel)``, stride 1, "SAME" padding, odd square kernel, whose kernel
    gradient is taken in the swapped form (the decoders' image output layer).

    With few output channels (16 → 3 at 32×32), oneDNN's kernel-gradient primitive of this conv
    runs at ~34 GFLOP/s (2.0 ms at batch 64, a sixth of the matmul peak). The same conv is the
    transposed conv of the swapped one: y = conv2dᵀ(x, W) with W[a, b, c, i] =
    k[K−1−a, K−1−b, i, c] (spatial flip, channel axes swapped; exact for odd K, where "SAME"
    pads symmetrically), so ∂L/∂k is that transposed conv's filter gradient,
    ``Conv2DBackpropFilter(g, W.shape, x)`` mapped back through the flip: the primitive then
    sees 3 input and 16 output channels and runs at 130–160 GFLOP/s (0.35–0.42 ms; docs/speed.md,
"Output conv gradient and fused Adam"). Forward pass and
    input gradient are TF's own. Same values as Keras' ``Conv2D`` up to float32 rounding
    (tests/test_layers_conv.py)."""
    outputs = tf.nn.conv2d(inputs, kernel, strides=1, padding="SAME")

    def grad(upstream):
        d_inputs = tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(inputs), filter=kernel, out_backprop=upstream,
            strides=[1, 1, 1, 1], padding="SAME")
        size_h, size_w, in_channels, out_channels = kernel.shape
        d_swapped = tf.raw_ops.Conv2DBackpropFilter(
            input=upstream, filter_sizes=[size_h, size_w, out_channels, in_channels],
            out_backprop=inputs, strides=[1, 1, 1, 1], padding="SAME")
        return d_inputs, tf.transpose(tf.reverse(d_swapped, [0, 1]), [0, 1, 3, 2])

    return outputs, grad


@keras.saving.register_keras_serializable(package="keras_lsvae")
class Conv2D(keras.layers.Conv2D):
    """Keras' ``Conv2D`` (same arguments, variables and values) that computes its kernel
    gradient with :func:`narrow_conv2d` where that is faster: stride 1, "same" padding, no
    dilation or groups, channels last, an odd square kernel and fewer output than input
    channels, i.e. the decoders' image output layer. Elsewhere it is Keras' layer unchanged.

    Named as Keras' class for the reason of :class:`BatchNormalization`: weight files address
    a model's layers by class name in snake case (``conv2d``), so files written with Keras'
    layer load into networks built with this one."""

    def _narrow(self, inputs):
        size_h, size_w = self.kernel_size
        return (tuple(self.strides) == (1, 1) and self.padding == "same"
                and tuple(self.dilation_rate) == (1, 1) and self.groups == 1
                and self.data_format == "channels_last" and size_h == size_w and size_h % 2
                and inputs.shape[-1] is not None and self.filters < inputs.shape[-1])

    def convolution_op(self, inputs, kernel):
        if not self._narrow(inputs):
            return super().convolution_op(inputs, kernel)
        return narrow_conv2d(inputs, tf.cast(kernel, inputs.dtype))


class GaussianSample(SavesSeedStates, keras.layers.Layer):
    """z = μ + exp(½ log σ²) ⊙ ε with ε ~ N(0, I) (Algorithm 1 lines 13–14).

    ``mode="sample"`` draws ε from a seeded ``keras.random.SeedGenerator`` attached to the layer,
    so a run with a fixed seed is reproducible; its state is saved with the layer's variables;
    ε of an example does not depend on how the batch is split across replicas
    (:func:`batch_normal`);
    ``mode="mode"`` returns μ (deterministic: export, evaluation).
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # No weights to build. Built from the start, so that ``fit`` under a distribution
        # strategy finds the model built and does not trace ``call`` on the inputs alone
        # (Keras' symbolic build), which models that need their labels to reconstruct refuse.
        self.built = True

    def call(self, mean, log_var, mode="sample"):
        if mode == "mode":
            return mean
        if mode != "sample":
            raise ValueError(f"unknown sampling mode {mode!r}; known: {SAMPLING_MODES}")
        noise = batch_normal(ops.shape(mean), self.seed_generator, dtype=mean.dtype)
        return mean + ops.exp(0.5 * log_var) * noise

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def maybe_spectral_norm(layer, spectral_norm: bool):
    """Wrap ``layer`` in ``keras.layers.SpectralNormalization`` (Miyato et al. 2018) if asked."""
    return keras.layers.SpectralNormalization(layer) if spectral_norm else layer


def conv_block(x, filters, *, strides=2, norm=True, spectral_norm=False, activation="leaky_relu",
               name=None):
    """Conv 4×4 (stride 2 halves H and W) → optional batch norm → activation. No bias before
    batch norm: its gradient is analytically zero (the mean is subtracted), so float noise
    alone would move it by full Adam steps."""
    conv = keras.layers.Conv2D(filters, 4, strides=strides, padding="same", use_bias=not norm,
                               name=None if name is None else f"{name}_conv")
    x = maybe_spectral_norm(conv, spectral_norm)(x)
    if norm:
        x = batch_norm(name=None if name is None else f"{name}_bn")(x)
    return keras.layers.Activation(activation)(x)


def deconv_block(x, filters, *, norm=True, activation="relu", name=None):
    """Transposed conv 4×4 stride 2 (doubles H and W) → optional batch norm → activation (no
    bias before batch norm, as :func:`conv_block`)."""
    x = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=not norm,
                                     name=None if name is None else f"{name}_deconv")(x)
    if norm:
        x = batch_norm(name=None if name is None else f"{name}_bn")(x)
    return keras.layers.Activation(activation)(x)


def dense_block(x, units, *, norm=False, spectral_norm=False, activation="leaky_relu", name=None):
    """Dense → optional batch norm → activation (the MLPs of the toy experiments, §4.1); no
    bias before batch norm (:func:`conv_block`)."""
    dense = keras.layers.Dense(units, use_bias=not norm,
                               name=None if name is None else f"{name}_dense")
    x = maybe_spectral_norm(dense, spectral_norm)(x)
    if norm:
        x = batch_norm()(x)
    return keras.layers.Activation(activation)(x)
