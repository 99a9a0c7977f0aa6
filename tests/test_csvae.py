"""CSVAE (paper B §4): the update structure of §4.1, the §4.2 prior, §4.3 manipulation,
bad labels, and save/load with fitted statistics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import losses as L
from tests.helpers import attribute_batch, tiny_attribute_model


def _csvae(**overrides):
    return tiny_attribute_model("csvae", **overrides)


def _snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def _moved(model, variables, before):
    return {id(v) for v, b in zip(variables, before) if not np.array_equal(b, v.numpy())}


def _ids(variables):
    return {id(v) for v in variables}


def test_adversary_step_does_not_touch_the_encoders_and_m2_does_not_move_delta():
    model = _csvae()
    images, attributes = attribute_batch(8)
    # Only δ's optimizer runs: the encoders, decoder stay put; δ moves.
    model.compile(optimizer="sgd", learning_rate=0.0, learning_rates={"adversary": 0.1})
    variables = model.trainable_variables
    before = _snapshot(variables)
    model.train_step((tf.constant(images), tf.constant(attributes)))
    moved = _moved(model, variables, before)
    assert moved and moved <= _ids(model.adversary.trainable_variables)
    # The adversary objective is N alone: its gradient equals that of N on detached z.
    result = None
    with tf.GradientTape(persistent=True) as tape:
        result = model.compute_losses(tf.constant(images), tf.constant(attributes),
                                      training=False)
        adversary = result.objectives()["adversary"]
    grads = tape.gradient(adversary,
                          model.encoder_z.trainable_variables)
    assert all(g is None for g in grads)
    # M2 reaches φ1 (through z) but not δ's objective, φ2 or θ.
    m2 = result.logs["m2"]
    assert any(g is not None for g in tape.gradient(m2, model.encoder_z.trainable_variables))
    assert all(g is None for g in tape.gradient(m2, model.encoder_w.trainable_variables))
    assert all(g is None for g in tape.gradient(m2, model.decoder.trainable_variables))
    del tape


def test_objectives_follow_section_4_1():
    model = _csvae(beta1=2.0, beta2=5.0, rec_weight=0.5, kl_z_weight=0.3, kl_w_weight=0.7,
                   adversary_weight=1.5)
    images, attributes = attribute_batch(8)
    result = model.compute_losses(tf.constant(images), tf.constant(attributes), training=False)
    logs, objectives = result.logs, result.objectives()
    m1 = 0.5 * logs["rec"] + 0.7 * logs["kl_w"] + 0.3 * logs["kl_z"]
    np.testing.assert_allclose(logs["m1"], m1, rtol=1e-5)
    np.testing.assert_allclose(objectives["encoder_z"], 2.0 * m1 + 5.0 * logs["m2"], rtol=1e-5)
    # M2 depends on φ1 alone (through z): the other objectives hold β1·M1 only.
    np.testing.assert_allclose(objectives["encoder_w"], 2.0 * m1, rtol=1e-5)
    np.testing.assert_allclose(objectives["decoder"], 2.0 * m1, rtol=1e-5)
    np.testing.assert_allclose(objectives["adversary"], 1.5 * logs["adversary"], rtol=1e-6)
    # In evaluation, kl_w is KL(q(w|x,y) ‖ p(w|y)) at the posterior of the encoder.
    codes = model.encode(images, attributes)
    expected = L.kl_subspace_prior(codes["w_mean"], codes["w_log_var"],
                                   model.prior.distribution(attributes))
    np.testing.assert_allclose(logs["kl_w"], expected, rtol=1e-5)


def test_default_weights_are_the_reference_implementations():
    model = _csvae()
    assert (model.beta1, model.beta2, model.kl_z_weight, model.kl_w_weight,
            model.adversary_weight) == (1.0, 10.0, 0.2, 1.0, 1.0)
    np.testing.assert_allclose(model.rec_weight, 40.0 / 64)  # 20 × per-value MSE on ½Σ
    assert (model.prior.mu1, model.prior.sigma1, model.prior.mu2, model.prior.sigma2) == (
        0.0, 0.1, 3.0, 1.0)
    assert model.prior.stddev_for(1) == 0.1
    assert np.isclose(_csvae(w_prior_scale="variance").prior.stddev_for(1), np.sqrt(0.1))


def test_evaluate_changes_no_variable():
    model = _csvae(mmd_weight=1.0, hsic_weight=1.0)
    model.compile()
    images, attributes = attribute_batch(8)
    before = _snapshot(model.variables)
    model.evaluate(tf.data.Dataset.from_tensors((images, attributes)), verbose=0)
    after = _snapshot(model.variables)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(b, a)


def test_manipulate_puts_w_at_the_fitted_or_prior_point():
    model = _csvae()
    images, attributes = attribute_batch(12)
    targets = np.array([[1, 0]] * 12, np.float32)
    # Before fitting: the prior means (y = 1 -> μ1 = 0, y = 0 -> μ2 = 3).
    np.testing.assert_allclose(model.attribute_points(targets[:1]), [[0, 0, 3, 3]])
    z = model.encode(images)["z_mean"]
    expected = model.decode(z, np.tile([[0, 0, 3, 3]], (12, 1)).astype(np.float32))
    np.testing.assert_allclose(model.manipulate(images, targets), expected, atol=1e-6)
    # After fitting: the empirical mean of μ^i_φ2 over examples with y_i = target_i.
    stats = model.fit_attribute_statistics(images, attributes)
    w_mean = model.encode(images, attributes)["w_mean"].numpy().reshape(12, 2, 2)
    for i in range(2):
        for v in (0, 1):
            rows = attributes[:, i] == v
            np.testing.assert_allclose(stats["means"][v, i], w_mean[rows, i].mean(0),
                                       rtol=1e-5, atol=1e-6)
    point = np.concatenate([stats["means"][1, 0], stats["means"][0, 1]])
    expected = model.decode(z, np.tile(point, (12, 1)))
    np.testing.assert_allclose(model.manipulate(images, targets), expected, atol=1e-6)
    # Several non-exclusive attributes at once, and an explicit w.
    both = np.ones((12, 2), np.float32)
    point = np.concatenate([stats["means"][1, 0], stats["means"][1, 1]])
    np.testing.assert_allclose(model.manipulate(images, both),
                               model.decode(z, np.tile(point, (12, 1))), atol=1e-6)
    w = np.random.default_rng(1).normal(size=(12, 4)).astype(np.float32)
    np.testing.assert_allclose(model.manipulate(images, None, w=w), model.decode(z, w),
                               atol=1e-6)
    assert model.manipulate(images, targets).shape == images.shape


def test_grids_and_principal_directions():
    model = _csvae()
    images, attributes = attribute_batch(12)
    grid = model.w_grid(1, num=3, span=1.0).numpy()
    assert grid.shape == (9, 2)
    np.testing.assert_allclose(grid.mean(0), [3.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(grid.min(0), [2.0, 2.0])
    out = model.manipulate_grid(images[:2], 1, grid)
    assert out.shape == (2, 9, 8, 8, 1)
    # Row (image 0, point 4 = the centre) equals manipulate with W_1 at the centre and W_0 at
    # its off value (prior mean 3).
    z = model.encode(images[:2])["z_mean"]
    np.testing.assert_allclose(out[:, 4], model.decode(z, np.tile([[3, 3, 3, 3]], (2, 1))),
                               atol=1e-6)
    directions = model.w_principal_directions(images, attributes, 0, num=3)
    assert directions.shape == (9, 2)
    with pytest.raises(ValueError, match="w_dim = 2"):
        _csvae(w_dim=3).w_grid(0)
    assert _csvae(w_dim=3).w_principal_directions(images, attributes, 0, num=2,
                                                  num_components=3).shape == (8, 3)


def test_generate_samples_w_from_the_prior():
    model = _csvae()
    attributes = np.array([[1, 0], [0, 1]], np.float32)
    out = model.generate(attributes, seed=3)
    noise = keras.random.normal((2, model.z_dim + 4), seed=3)
    loc, scale = model.prior.loc_scale(attributes)
    expected = model.decode(noise[:, :model.z_dim], loc + scale * noise[:, model.z_dim:])
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("labels,match", [
    (np.zeros((4, 3), np.float32), "A = 2"),
    (np.full((4, 2), 0.5, np.float32), "0 or 1"),
    (np.array([[np.nan, 0]] * 4, np.float32), "NaN"),
    (np.array([0, 1, 1, 0]), "class ids"),
    (np.zeros((0, 2), np.float32), "empty"),
])
def test_bad_attributes_raise(labels, match):
    model = _csvae()
    images, _ = attribute_batch(4)
    with pytest.raises(ValueError, match=match):
        model.reconstruct(images[:max(len(labels), 1)], labels)


def test_attribute_rows_must_match_the_images():
    model = _csvae()
    images, attributes = attribute_batch(4)
    with pytest.raises(ValueError, match=r"attributes: expected one row per image \(4\), got 3"):
        model.reconstruct(images, attributes[:3])


@pytest.mark.parametrize("labels,error", [
    (np.full((8, 2), 0.5, np.float32), tf.errors.InvalidArgumentError),
    (np.array([[np.nan, 0]] * 8, np.float32), tf.errors.InvalidArgumentError),
    (np.arange(8) % 2, ValueError),
    (np.zeros((8, 3), np.float32), ValueError),
])
def test_fit_rejects_bad_attribute_batches(labels, error):
    model = _csvae()
    model.compile()
    images, _ = attribute_batch(8)
    with pytest.raises(error, match="attributes"):
        model.fit(tf.data.Dataset.from_tensors((images, labels)), verbose=0)


def test_save_load_keeps_the_fitted_statistics(tmp_path):
    model = _csvae(w_prior_scale="variance", beta2=3.0)
    model.compile()
    images, attributes = attribute_batch(12)
    model.fit(tf.data.Dataset.from_tensors((images, attributes)), verbose=0)
    model.fit_attribute_statistics(images, attributes)
    path = str(tmp_path / "csvae.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.w_statistics.numpy(), model.w_statistics.numpy())
    assert loaded.w_statistics_counts.numpy().sum() == 24
    targets = np.array([[0, 1]] * 12, np.float32)
    np.testing.assert_allclose(loaded.manipulate(images, targets),
                               model.manipulate(images, targets), atol=1e-6)


def test_objectives_partition_the_networks():
    # φ1, φ2, θ, δ: each optimizer owns exactly one network (M2 must never move δ through
    # encoder_z's optimizer, N never an encoder).
    model = _csvae()
    objectives = model.objective_variables()
    networks = {"encoder_z": model.encoder_z, "encoder_w": model.encoder_w,
                "decoder": model.decoder, "adversary": model.adversary}
    for name, network in networks.items():
        assert _ids(objectives[name]) == _ids(network.trainable_variables), name
    ids = [id(v) for variables in objectives.values() for v in variables]
    assert len(ids) == len(set(ids)) and set(ids) == _ids(model.trainable_variables)
    # With only encoder_z's optimizer running, δ stays put although M2 depends on it.
    model.compile(optimizer="sgd", learning_rate=0.0, learning_rates={"encoder_z": 0.1})
    images, attributes = attribute_batch(8)
    before = _snapshot(model.adversary.trainable_variables)
    model.train_step((tf.constant(images), tf.constant(attributes)))
    assert not _moved(model, model.adversary.trainable_variables, before)
