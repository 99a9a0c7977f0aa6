"""keras_lsvae.layers.Conv2D (the decoders' image output layer): where its kernel
gradient is taken in the swapped form (:func:`keras_lsvae.layers.narrow_conv2d`: stride 1,
"same", odd kernel, fewer output than input channels) it must be Keras' ``Conv2D`` up to float32
rounding: outputs, gradients w.r.t. the inputs, the kernel and the bias. Also: the decoders
actually run the swapped kernel gradient, layers that are not narrow stay on Keras' path,
mixed precision, ``.keras`` and weight-file round trips, files written with Keras' layer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import layers as L
from keras_lsvae import networks


def _pair(input_shape, **kwargs):
    """Keras' Conv2D and ours with equal random kernel and bias."""
    reference, ours = keras.layers.Conv2D(**kwargs), L.Conv2D(**kwargs)
    rng = np.random.default_rng(1)
    for layer in (reference, ours):
        layer.build(input_shape)
    for reference_weight, weight in zip(reference.weights, ours.weights):
        values = rng.normal(size=reference_weight.shape).astype(np.float32)
        reference_weight.assign(values)
        weight.assign(values)
    return reference, ours


def _values_and_gradients(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        # Every output weighted differently, so a transposed or flipped gradient shows.
        loss = tf.reduce_sum(tf.sin(y) * y)
    gradients = tape.gradient(loss, [x] + layer.trainable_weights)
    return [np.asarray(v) for v in [y] + gradients]


def _filter_gradient_shapes(layer, input_shape):
    """Filter shapes of the Conv2DBackpropFilter ops in the gradient graph of ``layer``."""
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x))
        return tape.gradient(loss, layer.kernel)

    graph = tf.function(step).get_concrete_function(
        tf.TensorSpec(input_shape, tf.float32)).graph
    return [tuple(op.outputs[0].shape) for op in graph.get_operations()
            if op.type == "Conv2DBackpropFilter"]


@pytest.mark.parametrize("filters,kernel_size,use_bias", [(3, 3, True), (1, 3, True),
                                                          (3, 5, False), (2, 1, True)])
def test_narrow_conv_equals_keras_conv(filters, kernel_size, use_bias):
    shape = (2, 6, 7, 5)  # not square, so swapped H and W would show
    reference, ours = _pair(shape, filters=filters, kernel_size=kernel_size, padding="same",
                            use_bias=use_bias)
    size = kernel_size
    assert _filter_gradient_shapes(ours, shape) == [(size, size, filters, 5)]  # swapped form
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    expected, actual = _values_and_gradients(reference, x), _values_and_gradients(ours, x)
    for name, e, a in zip(["outputs", "d inputs", "d kernel", "d bias"], expected, actual):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5 * np.abs(e).max(), err_msg=name)


@pytest.mark.parametrize("kwargs", [{"filters": 8, "kernel_size": 3, "padding": "same"},
                                    {"filters": 3, "kernel_size": 3, "padding": "valid"},
                                    {"filters": 3, "kernel_size": 4, "padding": "same"},
                                    {"filters": 3, "kernel_size": 3, "padding": "same",
                                     "strides": 2}])
def test_other_convs_stay_on_keras_path(kwargs):
    shape = (2, 8, 8, 5)
    reference, ours = _pair(shape, **kwargs)
    size = ours.kernel_size[0]
    assert _filter_gradient_shapes(ours, shape) == [(size, size, 5, ours.filters)]
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    for e, a in zip(_values_and_gradients(reference, x), _values_and_gradients(ours, x)):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6 * np.abs(e).max())


@pytest.mark.parametrize("channels", [3, 1])
def test_decoders_take_the_swapped_kernel_gradient(channels):
    keras.utils.set_random_seed(0)
    decoder = networks.build_decoder([2], (16, 16, channels), width=8)
    output_layer = decoder.get_layer("decoder_out")
    assert isinstance(output_layer, L.Conv2D)
    in_channels = output_layer.input.shape[-1]
    assert _filter_gradient_shapes(output_layer, (4, 16, 16, in_channels)) == [
        (3, 3, channels, in_channels)]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        reference, ours = _pair((2, 6, 6, 5), filters=3, kernel_size=3, padding="same")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = tf.cast(np.random.default_rng(0).normal(size=(2, 6, 6, 5)), policy.split("_")[1])
    expected, actual = _values_and_gradients(reference, x), _values_and_gradients(ours, x)
    assert actual[0].dtype == expected[0].dtype == x.dtype
    assert ours.kernel.dtype == "float32"
    for e, a in zip(expected, actual):
        np.testing.assert_allclose(np.float32(a), np.float32(e), rtol=2e-2,
                                   atol=2e-2 * np.abs(np.float32(e)).max())


def _decoder():
    keras.utils.set_random_seed(0)
    return networks.build_decoder([2], (8, 8, 3), width=8)


def _latents():
    return np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)


def test_keras_file_round_trip(tmp_path):
    model = _decoder()
    model.save(tmp_path / "decoder.keras")
    loaded = keras.models.load_model(tmp_path / "decoder.keras")
    assert isinstance(loaded.get_layer("decoder_out"), L.Conv2D)
    np.testing.assert_array_equal(loaded([_latents()]), model([_latents()]))


def test_files_written_with_keras_conv_still_load(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(L, "Conv2D", keras.layers.Conv2D)
        old = _decoder()
    assert type(old.get_layer("decoder_out")) is keras.layers.Conv2D
    old.get_layer("decoder_out").bias.assign([0.1, -0.2, 0.3])  # not the initial zeros
    old.save(tmp_path / "old.keras")
    old.save_weights(tmp_path / "old.weights.h5")
    expected = old([_latents()])
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "old.keras")([_latents()]),
                                  expected)
    keras.utils.set_random_seed(1)  # other initial weights: loading must replace them all
    new = networks.build_decoder([2], (8, 8, 3), width=8)
    new.load_weights(tmp_path / "old.weights.h5")
    np.testing.assert_allclose(new([_latents()]), expected, rtol=1e-6, atol=1e-7)
