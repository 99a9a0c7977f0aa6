"""keras_lsvae.layers.BatchNormalization (the networks' batch norm): on one replica
it runs TF's fused kernel and must be Keras' ``BatchNormalization(synchronized=True)`` up to
float32 rounding: outputs in training and inference mode, gradients w.r.t. the inputs, γ and
β, and the moving mean and variance (Keras averages the *biased* batch variance, the fused
kernel returns the unbiased one). Also: mixed precision policies, ``.keras`` and weight-file
round trips, files written with Keras' layer before it existed, and that the fused kernel is
what runs (one replica) or not (rank-2 inputs, two replicas: Keras' synchronized path, whose
parity tests/test_distribute.py checks)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import layers as L
from keras_lsvae import networks
from keras_lsvae.training.strategy import get_strategy

STEPS = 3
# Few elements per channel (n = B·H·W = 18): the unbiased variance is 18/17 of the biased one,
# 6% apart, far above the tolerance. Inputs off zero mean, so that the E[x²] − E[x]² of
# Keras' synchronized moments and the fused kernel's centred sum both get exercised.
SHAPE = (2, 3, 3, 5)


def _pair(shape, **kwargs):
    """Keras' synchronized layer and ours, built on ``shape`` with equal random γ and β."""
    kwargs = {"momentum": L.BN_MOMENTUM, "synchronized": True, **kwargs}
    reference, fused = keras.layers.BatchNormalization(**kwargs), L.BatchNormalization(**kwargs)
    rng = np.random.default_rng(1)
    for layer in (reference, fused):
        layer.build(shape)
    for weight in ("gamma", "beta"):
        if getattr(reference, weight) is not None:
            values = rng.normal(size=shape[-1:]).astype(np.float32)
            getattr(reference, weight).assign(values)
            getattr(fused, weight).assign(values)
    return reference, fused


def _inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.normal(2.0, 3.0, size=shape).astype(np.float32))


def _run(layer, shape):
    """Outputs, gradients (inputs, trainable weights) of a loss that weighs every output
    differently, over STEPS training calls on different batches; then the moving statistics
    and the inference output."""
    results = {}
    for step in range(STEPS):
        x = _inputs(shape, seed=step)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.sin(y) * y)
        gradients = tape.gradient(loss, [x] + layer.trainable_weights)
        results[f"step {step} output"] = y
        for name, gradient in zip(["inputs"] + [w.name for w in layer.trainable_weights],
                                  gradients):
            results[f"step {step} gradient w.r.t. {name}"] = gradient
    results["moving mean"] = layer.moving_mean
    results["moving variance"] = layer.moving_variance
    results["inference output"] = layer(_inputs(shape), training=False)
    return {key: np.asarray(value, np.float32) for key, value in results.items()}


def _op_types(layer, shape, training=True):
    function = tf.function(lambda x: layer(x, training=training))
    graph = function.get_concrete_function(tf.TensorSpec(shape, tf.float32)).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("kwargs", [{}, {"center": False, "scale": False}, {"momentum": 0.5}])
def test_fused_equals_keras_synchronized_batch_norm(kwargs):
    reference, fused = _pair(SHAPE, **kwargs)
    assert "FusedBatchNormV3" in _op_types(fused, SHAPE)
    assert "FusedBatchNormV3" in _op_types(fused, SHAPE, training=False)
    expected, actual = _run(reference, SHAPE), _run(fused, SHAPE)
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_allclose(actual[key], value, rtol=1e-5,
                                   atol=1e-5 * np.abs(value).max(), err_msg=key)
    # The moving statistics moved (else their equality says nothing).
    assert not np.allclose(expected["moving mean"], 0.0)
    assert not np.allclose(expected["moving variance"], 1.0)


def test_rank_2_inputs_stay_on_keras_path():
    # Fusing (B, C) as (B, 1, 1, C) was 1.7 × slower than Keras' ops (docs/speed.md).
    reference, fused = _pair((6, 4))
    assert "FusedBatchNormV3" not in _op_types(fused, (6, 4))
    expected = _run(reference, (6, 4))
    for key, value in _run(fused, (6, 4)).items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-6, atol=1e-6, err_msg=key)


def _ops_of_a_training_call(strategy):
    """(op types of one training call of the layer under ``strategy``, the layer)."""
    with strategy.scope():
        layer = L.batch_norm()
        layer.build(SHAPE)
    ops = set()

    def step(x):
        y = layer(x, training=True)
        ops.update(op.type for op in tf.compat.v1.get_default_graph().get_operations())
        return y

    strategy.run(tf.function(step), args=(_inputs(SHAPE),))
    return ops, layer


def test_two_replicas_take_keras_synchronized_path():
    ops, _ = _ops_of_a_training_call(get_strategy("mirrored", num_cpu_replicas=2))
    assert "FusedBatchNormV3" not in ops
    assert any("AllReduce" in op or "Collective" in op for op in ops), sorted(ops)


def test_one_mirrored_replica_is_fused_and_updates_the_mirrored_statistics():
    ops, layer = _ops_of_a_training_call(get_strategy("mirrored", num_cpu_replicas=1))
    assert "FusedBatchNormV3" in ops
    reference, _ = _pair(SHAPE)
    reference.gamma.assign(tf.ones_like(reference.gamma))
    reference.beta.assign(tf.zeros_like(reference.beta))
    reference(_inputs(SHAPE), training=True)
    np.testing.assert_allclose(layer.moving_mean, reference.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance, reference.moving_variance, rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_normalises_in_float32_like_keras(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        reference, fused = _pair(SHAPE)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = tf.cast(_inputs(SHAPE), policy.split("_")[1])
    for training in (True, False):
        y_reference, y = reference(x, training=training), fused(x, training=training)
        assert y.dtype == x.dtype
        np.testing.assert_allclose(np.float32(y), np.float32(y_reference), rtol=1e-2, atol=1e-2)
    assert fused.moving_mean.dtype == "float32"
    np.testing.assert_allclose(fused.moving_mean, reference.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance, reference.moving_variance, rtol=1e-5)


def _decoder():
    keras.utils.set_random_seed(0)
    return networks.build_decoder([2], (8, 8, 1), width=8)


def _latents():
    return np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)


def test_keras_file_round_trip(tmp_path):
    model = _decoder()
    assert any(isinstance(layer, L.BatchNormalization) for layer in model.layers)
    model([_latents()], training=True)  # moves the moving statistics
    model.save(tmp_path / "decoder.keras")
    loaded = keras.models.load_model(tmp_path / "decoder.keras")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    for training in (False, True):
        np.testing.assert_array_equal(loaded([_latents()], training=training),
                                      model([_latents()], training=training))


def test_files_written_with_keras_batch_norm_still_load(tmp_path, monkeypatch):
    """Before this layer, the networks held Keras' class: their ``.keras`` files load with it,
    and their weight files (checkpoints, whose paths are the layers' class names) load into
    networks built now."""
    with monkeypatch.context() as patch:
        patch.setattr(L, "batch_norm", lambda **kwargs: keras.layers.BatchNormalization(
            synchronized=True, **{"momentum": L.BN_MOMENTUM, **kwargs}))
        old = _decoder()
    assert not any(isinstance(layer, L.BatchNormalization) for layer in old.layers)
    old([_latents()], training=True)
    old.save(tmp_path / "old.keras")
    old.save_weights(tmp_path / "old.weights.h5")
    expected = old([_latents()], training=False)
    np.testing.assert_array_equal(
        keras.models.load_model(tmp_path / "old.keras")([_latents()], training=False), expected)
    new = _decoder()
    new.load_weights(tmp_path / "old.weights.h5")
    np.testing.assert_allclose(new([_latents()], training=False), expected, rtol=1e-5,
                               atol=1e-6)
