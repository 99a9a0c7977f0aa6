"""Paper B's baselines: VAE (Eq. 1), CondVAE (Eq. 2), CondVAE-info (Eq. 3) and their G_ij (§4.3)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import losses as L
from tests.helpers import attribute_batch, tiny_attribute_model


def test_vae_manipulation_is_latent_arithmetic_by_hand(tmp_path):
    model = tiny_attribute_model("vae", num_classes=1)
    images, _ = attribute_batch(10, num_attributes=1)
    attributes = (np.arange(10) % 2).astype(np.float32)[:, None]
    with pytest.raises(ValueError, match="fit_attribute_statistics"):
        model.manipulate(images, attributes, 1 - attributes)
    model.fit_attribute_statistics(images, attributes)
    mu = model.encode(images)["z_mean"].numpy()
    m0, m1 = mu[attributes[:, 0] == 0].mean(0), mu[attributes[:, 0] == 1].mean(0)
    # G_ij(x) = μθ(μφ(x) − m_i + m_j), i = the source's value, j = the target's.
    sources = attributes[:, 0] == 0
    expected_z = np.where(sources[:, None], mu - m0 + m1, mu - m1 + m0)
    got = model.manipulate(images, attributes, 1 - attributes)
    np.testing.assert_allclose(got, model.decode(expected_z.astype(np.float32)), atol=1e-5)
    # Unchanged targets leave μ alone.
    np.testing.assert_allclose(model.manipulate(images, attributes, attributes),
                               model.decode(mu), atol=1e-6)
    path = str(tmp_path / "vae.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.manipulate(images, attributes, 1 - attributes), got,
                               atol=1e-6)


def test_vae_multi_hot_manipulation():
    model = tiny_attribute_model("vae")
    images, attributes = attribute_batch(12)
    stats = model.fit_attribute_statistics(images, attributes)
    means = stats["means"].numpy()
    targets = np.ones_like(attributes)
    mu = model.encode(images)["z_mean"].numpy()
    shift = sum((targets[:, [l]] - attributes[:, [l]]) * (means[1, l] - means[0, l])
                for l in range(2))
    np.testing.assert_allclose(model.manipulate(images, attributes, targets),
                               model.decode((mu + shift).astype(np.float32)), atol=1e-5)


@pytest.mark.parametrize("name", ["condvae", "condvae_info"])
def test_conditional_manipulation_decodes_with_the_scaled_target(name):
    model = tiny_attribute_model(name)
    images, attributes = attribute_batch(6)
    targets = 1 - attributes
    z = model.encode(images, attributes)["z_mean"]
    np.testing.assert_allclose(model.manipulate(images, attributes, targets, scale=2.0),
                               model.decode(z, 2.0 * targets), atol=1e-6)
    assert not np.allclose(model.manipulate(images, attributes, targets),
                           model.manipulate(images, attributes, attributes))


def test_condvae_needs_attributes_and_its_encoder_uses_them():
    model = tiny_attribute_model("condvae")
    images, attributes = attribute_batch(6)
    with pytest.raises(ValueError, match="needs attributes"):
        model.encode(images)
    with pytest.raises(ValueError, match="needs attributes"):
        model(images)
    a = model.encode(images, attributes)["z_mean"]
    b = model.encode(images, 1 - attributes)["z_mean"]
    assert not np.allclose(a, b)


def test_condvae_info_encoder_ignores_attributes_and_maximises_the_adversary_loss():
    model = tiny_attribute_model("condvae_info", info_weight=2.0)
    images, attributes = attribute_batch(8)
    result = model.compute_losses(tf.constant(images), tf.constant(attributes), training=False)
    logs = result.logs
    base = model.rec_weight * logs["rec"] + model.kl_z_weight * logs["kl_z"]
    np.testing.assert_allclose(result.objectives()["encoder"],
                               base - 2.0 * logs["adversary"], rtol=1e-5)
    # KL(z) does not depend on θ: the decoder's objective is its reconstruction term.
    np.testing.assert_allclose(result.objectives()["decoder"], model.rec_weight * logs["rec"],
                               rtol=1e-6)
    z = model.encode(images)["z_mean"]
    np.testing.assert_allclose(
        logs["adversary"], L.attribute_cross_entropy(model.adversary(z), attributes), rtol=1e-5)
    # Adversary's objective never reaches the encoder.
    with tf.GradientTape() as tape:
        adversary = model.compute_losses(tf.constant(images),
                                         tf.constant(attributes)).objectives()["adversary"]
    grads = tape.gradient(adversary, model.encoder.trainable_variables)
    assert all(g is None for g in grads)


@pytest.mark.parametrize("name", ["vae", "condvae", "condvae_info"])
@pytest.mark.parametrize("labels,match", [
    (np.zeros((4, 3), np.float32), "A = 2"),
    (np.full((4, 2), 2.0, np.float32), "0 or 1"),
    (np.array([[np.nan, 1]] * 4, np.float32), "NaN"),
    (np.array([0, 1, 1, 0]), "class ids"),
])
def test_bad_attributes_raise(name, labels, match):
    model = tiny_attribute_model(name)
    images, _ = attribute_batch(4)
    with pytest.raises(ValueError, match=match):
        model.generate(labels)
