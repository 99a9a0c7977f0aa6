"""Closed-form values of every loss on hand-made inputs (Lr-LiVAE Eq. 3–10)."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from keras_lsvae import distributions as dists
from keras_lsvae import losses as L

LOG_2PI = math.log(2 * math.pi)


def test_reconstruction_is_half_sum_of_squares_mean_over_batch():
    x = tf.constant([[[[0.0], [1.0]]], [[[0.5], [0.5]]]])  # 2 images of 1x2x1
    x_rec = tf.constant([[[[1.0], [1.0]]], [[[0.0], [0.5]]]])
    # per sample: 0.5*(1) = 0.5 and 0.5*(0.25) = 0.125 -> mean 0.3125
    assert float(L.reconstruction_loss(x, x_rec)) == pytest.approx(0.3125)


def test_kl_standard_normal_closed_form():
    mean = tf.constant([[1.0, 0.0], [0.0, 2.0]])
    log_var = tf.constant([[0.0, math.log(2.0)], [0.0, 0.0]])
    # ½ Σ (σ² + μ² − 1 − log σ²): sample 1: ½(1 + 2 - 1 - ln2 + 1 - 1)... computed per dim
    per_sample = [0.5 * ((1 + 1 - 1 - 0) + (2 + 0 - 1 - math.log(2))),
                  0.5 * ((1 + 0 - 1 - 0) + (1 + 4 - 1 - 0))]
    assert float(L.kl_standard_normal(mean, log_var)) == pytest.approx(np.mean(per_sample),
                                                                         rel=1e-6)


def test_kl_of_equal_gaussians_is_zero():
    mean = tf.constant([[0.3, -1.0]])
    assert float(L.kl_diagonal_normals(mean, tf.math.log([[0.5, 2.0]]), mean,
                                       tf.constant([[0.5, 2.0]]))) == pytest.approx(0, abs=1e-6)


def test_likelihood_loss_matches_gaussian_formula():
    z = tf.constant([[1.0, 2.0]])
    mean = tf.constant([[0.0, 0.0]])
    var = tf.constant([[1.0, 4.0]])
    expected = 0.5 * (1.0 / 1.0 + 4.0 / 4.0 + math.log(1.0) + math.log(4.0) + 2 * LOG_2PI)
    assert float(L.likelihood_loss(z, mean, var)) == pytest.approx(expected, rel=1e-6)


def test_gm_logits_match_tfp_component_log_probs():
    rng = np.random.default_rng(0)
    z = tf.constant(rng.normal(size=(5, 6)), tf.float32)
    means = tf.constant(rng.normal(size=(3, 6)), tf.float32)
    variances = tf.constant(rng.uniform(0.2, 2.0, size=(3, 6)), tf.float32)
    expected = tfp.distributions.MultivariateNormalDiag(
        means, tf.sqrt(variances)).log_prob(z[:, None, :])
    np.testing.assert_allclose(L.gm_logits(z, means, variances), expected, rtol=1e-5, atol=1e-4)


def test_gm_classification_loss_two_symmetric_classes():
    # z at 0, classes at ±1 with unit variance: equal likelihoods -> L_cls = log 2.
    z = tf.zeros([1, 1])
    means = tf.constant([[1.0], [-1.0]])
    var = tf.ones([2, 1])
    assert float(L.gm_classification_loss(z, tf.constant([0]), means, var)) == pytest.approx(
        math.log(2.0), rel=1e-6)
    # z at +1: logits -0.0 vs -2.0 (Mahalanobis 0 and 4, halves) -> −log σ(2)
    z = tf.constant([[1.0]])
    expected = -math.log(1 / (1 + math.exp(-2.0)))
    assert float(L.gm_classification_loss(z, tf.constant([0]), means, var)) == pytest.approx(
        expected, rel=1e-6)


def test_gm_margin_enlarges_true_class_distance():
    z = tf.constant([[0.5]])
    means = tf.constant([[1.0], [-1.0]])
    var = tf.ones([2, 1])
    labels = tf.constant([0])
    # d_0 = ½·0.25, d_1 = ½·2.25; with α = 1 the true class's d doubles.
    expected = -math.log(math.exp(-0.25) / (math.exp(-0.25) + math.exp(-1.125)))
    assert float(L.gm_classification_loss(z, labels, means, var, margin=1.0)) == pytest.approx(
        expected, rel=1e-6)


def test_gm_loss_is_cls_plus_weighted_lkd():
    rng = np.random.default_rng(1)
    z = tf.constant(rng.normal(size=(4, 3)), tf.float32)
    means = tf.constant(rng.normal(size=(2, 3)), tf.float32)
    var = tf.ones([2, 3])
    labels = tf.constant([0, 1, 1, 0])
    total, cls, lkd = L.gm_loss(z, labels, means, var, lkd_weight=0.1)
    assert float(total) == pytest.approx(float(cls) + 0.1 * float(lkd), rel=1e-6)


def test_gm_loss_finite_and_correct_in_512_dimensions():
    rng = np.random.default_rng(2)
    dims = 512
    means = tf.constant(rng.normal(size=(10, dims)) * 3, tf.float32)
    # tiny variances: a product of 512 of them underflows to 0 in float32.
    variances = tf.fill([10, dims], 1e-3)
    labels = tf.constant(np.arange(8) % 10, tf.int32)
    z = tf.gather(means, labels) + tf.constant(rng.normal(size=(8, dims)) * 0.03, tf.float32)
    assert float(tf.reduce_prod(variances[0])) == 0.0
    total, cls, lkd = L.gm_loss(z, labels, means, variances)
    assert all(np.isfinite(float(v)) for v in (total, cls, lkd))
    assert float(cls) == pytest.approx(0.0, abs=1e-3)  # each z sits on its own class mean
    # L_lkd closed form in float64
    z64, m64 = np.asarray(z, np.float64), np.asarray(tf.gather(means, labels), np.float64)
    expected = np.mean(0.5 * (np.sum((z64 - m64) ** 2 / 1e-3, -1) + dims * math.log(1e-3)
                              + dims * LOG_2PI))
    assert float(lkd) == pytest.approx(expected, rel=1e-4)


def test_adversarial_losses():
    logits = tf.constant([[2.0, 0.0, 0.0]])
    log_p = np.log(np.exp([2.0, 0, 0]) / np.exp([2.0, 0, 0]).sum())
    assert float(L.adversarial_classifier_loss(logits, tf.constant([1]))) == pytest.approx(
        -log_p[1], rel=1e-6)
    assert float(L.adversarial_encoder_loss(logits)) == pytest.approx(-log_p.mean(), rel=1e-6)
    # uniform logits: L_E^adv = log C, its minimum
    assert float(L.adversarial_encoder_loss(tf.zeros([2, 4]))) == pytest.approx(math.log(4))


def test_gan_losses_closed_form():
    real, fake_a, fake_b = tf.constant([[1.0]]), tf.constant([[-2.0]]), tf.constant([[0.5]])
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    assert float(L.discriminator_loss(real, [fake_a, fake_b])) == pytest.approx(
        sp(-1.0) + sp(-2.0) + sp(0.5), rel=1e-6)
    assert float(L.generator_loss([fake_a, fake_b])) == pytest.approx(sp(2.0) + sp(-0.5),
                                                                      rel=1e-6)
    assert float(L.discriminator_loss(real, [fake_a, fake_b], "hinge")) == pytest.approx(
        0.0 + 0.0 + 1.5)
    assert float(L.generator_loss([fake_a, fake_b], "hinge")) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        L.generator_loss([fake_a], "wasserstein")


def test_mixture_moments_eq11_match_tfp_and_monte_carlo():
    rng = np.random.default_rng(3)
    means = tf.constant(rng.normal(size=(4, 3)) * 2, tf.float32)
    variances = tf.constant(rng.uniform(0.1, 1.5, size=(4, 3)), tf.float32)
    mean_t, var_t = dists.mixture_moments(means, variances)
    mixture = dists.mixture(means, variances)
    np.testing.assert_allclose(mean_t, mixture.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var_t, mixture.variance(), rtol=1e-5)
    samples = mixture.sample(200_000, seed=7)
    np.testing.assert_allclose(mean_t, tf.reduce_mean(samples, 0), atol=0.03)
    np.testing.assert_allclose(var_t, tf.math.reduce_variance(samples, 0), rtol=0.03)


def test_prior_variance_floor_and_initial_value():
    prior = dists.GaussianMixturePrior(3, 5, min_variance=0.01, init_variance=0.5)
    np.testing.assert_allclose(prior.variances(), 0.5, rtol=1e-6)
    prior.raw_variances.assign(tf.fill([3, 5], -100.0))
    np.testing.assert_allclose(prior.variances(), 0.01, rtol=1e-6)
    with pytest.raises(ValueError):
        dists.GaussianMixturePrior(3, 5, min_variance=1.0, init_variance=0.5)


def test_hsic_matches_its_formula_and_detects_dependence():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 3)).astype("float32")
    labels = rng.integers(0, 4, size=40)
    y = np.eye(4, dtype="float32")[labels]
    # the formula, written out in numpy with a fixed bandwidth
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * 0.7**2))
    h = np.eye(40) - 1 / 40
    expected = np.trace(k @ h @ (y @ y.T) @ h) / 39**2
    assert float(L.hsic(x, y, bandwidth=0.7)) == pytest.approx(expected, rel=1e-4)
    # constant labels carry no information
    assert float(L.hsic(x, np.ones((40, 1), "float32"))) == pytest.approx(0.0, abs=1e-6)
    # features that encode the label depend on it far more than independent ones
    encoded = np.concatenate([y * 3, rng.normal(size=(40, 1))], 1).astype("float32")
    assert float(L.hsic(encoded, y)) > 5 * float(L.hsic(x, y))


def test_mmd_to_standard_normal_matches_its_formula_and_sees_a_shifted_mean():
    rng = np.random.default_rng(6)
    prior = rng.normal(size=(50, 3)).astype("float32")
    codes = rng.normal(size=(50, 3)).astype("float32")

    def imq(a, b):
        d2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return sum(6 * s / (6 * s + d2) for s in L.MMD_SCALES)

    off = 1 - np.eye(50)
    expected = ((imq(codes, codes) * off).sum() / (50 * 49) + (imq(prior, prior) * off).sum()
                / (50 * 49) - 2 * imq(codes, prior).mean())
    assert float(L.mmd_to_standard_normal(codes, prior)) == pytest.approx(expected, rel=1e-4)
    # codes drawn from the prior itself score near zero; a mean offset of 3 stands far above
    shifted = codes + 3.0
    assert abs(expected) < 0.05
    assert float(L.mmd_to_standard_normal(shifted, prior)) > 20 * abs(expected)
    # and the gradient pulls the shifted codes back towards the origin
    shifted = tf.constant(shifted)
    with tf.GradientTape() as tape:
        tape.watch(shifted)
        value = L.mmd_to_standard_normal(shifted, prior)
    assert np.all(tape.gradient(value, shifted).numpy().sum(0) > 0)
