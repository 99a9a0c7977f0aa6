"""keras_lsvae.optimizers.Adam (every model's Adam): TF's fused ResourceApplyAdam
must apply Keras' Adam update (variables and both moments, over several steps, also under
Keras' LossScaleOptimizer), be what runs, and read checkpoints written with Keras' Adam."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import optimizers
from tests.helpers import image_batch, tiny_lrlivae

STEPS = 4


def _variables():
    rng = np.random.default_rng(0)
    return [keras.Variable(rng.normal(size=shape).astype(np.float32))
            for shape in [(3, 4), (5,)]]


def _gradients(step):
    rng = np.random.default_rng(10 + step)
    # Mixed scales (and an exact zero) so that ε and the bias corrections matter.
    return [tf.constant(rng.normal(scale=s, size=shape).astype(np.float32))
            for s, shape in [(1e-3, (3, 4)), (10.0, (5,))]]


def _op_types(apply):
    """Op types of the traced update, its nested functions (cond branches) included."""
    graph_def = apply.get_concrete_function(_gradients(0)).graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes += list(function.node_def)
    return [node.op for node in nodes]


def _train(optimizer):
    variables = _variables()
    # A LossScaleOptimizer gets the gradients of the scaled loss (it divides the scale out).
    scale = float(getattr(optimizer, "dynamic_scale", 1.0))
    apply = tf.function(lambda grads: optimizer.apply_gradients(
        zip([g * scale for g in grads], variables)))
    for step in range(STEPS):
        apply(_gradients(step))
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    moments = [m for m in inner.variables if "momentum" in m.path or "velocity" in m.path]
    return [np.asarray(v) for v in variables + moments], apply, variables


@pytest.mark.parametrize("wrap", [False, True])
def test_fused_adam_applies_keras_adam_update(wrap):
    kwargs = dict(learning_rate=3e-3, beta_1=0.5, beta_2=0.99, epsilon=1e-4)
    reference, fused = keras.optimizers.Adam(**kwargs), optimizers.Adam(**kwargs)
    if wrap:
        reference = keras.optimizers.LossScaleOptimizer(reference)
        fused = keras.optimizers.LossScaleOptimizer(fused)
    expected, _, _ = _train(reference)
    actual, apply, variables = _train(fused)
    assert len(actual) == len(expected) == 6  # 2 variables, their momentums and velocities
    for e, a in zip(expected, actual):
        np.testing.assert_allclose(a, e, rtol=2e-6, atol=1e-7)
    initial = _variables()
    assert all(not np.array_equal(a, np.asarray(v)) for a, v in zip(actual, initial))
    assert _op_types(apply).count("ResourceApplyAdam") == 2


def test_amsgrad_takes_keras_path():
    kwargs = dict(learning_rate=3e-3, amsgrad=True)
    expected, _, _ = _train(keras.optimizers.Adam(**kwargs))
    actual, apply, _ = _train(optimizers.Adam(**kwargs))
    for e, a in zip(expected, actual):
        np.testing.assert_allclose(a, e, rtol=1e-6)
    assert "ResourceApplyAdam" not in _op_types(apply)


def test_models_use_it_and_read_checkpoints_of_keras_adam(tmp_path, monkeypatch):
    images, labels = image_batch(8, num_classes=3)
    with monkeypatch.context() as patch:
        patch.setattr(optimizers, "Adam", keras.optimizers.Adam)
        old = tiny_lrlivae()
        old.compile()
    assert all(type(o) is keras.optimizers.Adam for o in old.objective_optimizers.values())
    old.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    old.save_weights(tmp_path / "ckpt.weights.h5")
    new = tiny_lrlivae(seed=1)
    new.compile()
    assert all(type(o) is optimizers.Adam for o in new.objective_optimizers.values())
    new.fit(images[:4], labels[:4], batch_size=4, epochs=1, verbose=0)  # builds its state
    new.load_weights(tmp_path / "ckpt.weights.h5")
    for name, optimizer in old.objective_optimizers.items():
        loaded = new.objective_optimizers[name].variables
        assert len(loaded) == len(optimizer.variables) > 1
        for a, b in zip(loaded, optimizer.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=b.path)
    for a, b in zip(new.weights, old.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
