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


def _components(means, variances):
    return dists.diagonal_normal(tf.constant(means, tf.float32), tf.constant(variances, tf.float32))


def _reference_log_likelihoods(z, means, variances):
    """The closed form the library used before TFP (an einsum expansion of the Mahalanobis
    term with precisions), in float64: log N(z_b; μ_k, diag σ²_k) and d_bk, shape (B, K)."""
    z, means, variances = (np.asarray(a, np.float64) for a in (z, means, variances))
    precisions = 1.0 / variances
    mahalanobis = (np.einsum("bd,kd->bk", z**2, precisions)
                   - 2.0 * np.einsum("bd,kd->bk", z, means * precisions)
                   + np.sum(means**2 * precisions, -1)[None])
    log_det = np.sum(np.log(variances), -1)
    return -0.5 * (mahalanobis + log_det[None] + z.shape[-1] * LOG_2PI), mahalanobis


def _reference_gm_loss(z, labels, means, variances, lkd_weight, margin):
    """Eq. 7–9 with the margin, in float64 from the closed form: (L_GM, L_cls, L_lkd)."""
    log_lik, mahalanobis = _reference_log_likelihoods(z, means, variances)
    rows = np.arange(len(labels))
    logits = log_lik.copy()
    logits[rows, labels] -= 0.5 * margin * mahalanobis[rows, labels]
    top = logits.max(-1, keepdims=True)
    log_softmax = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    cls = -np.mean(log_softmax[rows, labels])
    lkd = -np.mean(log_lik[rows, labels])
    return cls + lkd_weight * lkd, cls, lkd


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_gm_loss_matches_the_closed_form(margin):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(7, 6))
    means = rng.normal(size=(3, 6))
    variances = rng.uniform(0.2, 2.0, size=(3, 6))
    labels = np.array([0, 1, 2, 2, 1, 0, 1])
    expected = _reference_gm_loss(z, labels, means, variances, 0.1, margin)
    z32, components = tf.constant(z, tf.float32), _components(means, variances)
    got = L.gm_loss(z32, tf.constant(labels), components, lkd_weight=0.1, margin=margin)
    np.testing.assert_allclose([float(v) for v in got[:3]], expected, rtol=1e-5)
    # the returned logits are q(c|z)'s without the margin: the component log-densities
    np.testing.assert_allclose(got[3], _reference_log_likelihoods(z, means, variances)[0],
                               rtol=1e-5)
    assert float(L.gm_classification_loss(z32, tf.constant(labels), components, margin=margin)
                 ) == pytest.approx(expected[1], rel=1e-5)


def test_gm_classification_loss_two_symmetric_classes():
    # z at 0, classes at ±1 with unit variance: equal likelihoods -> L_cls = log 2.
    components = _components([[1.0], [-1.0]], np.ones([2, 1]))
    assert float(L.gm_classification_loss(tf.zeros([1, 1]), tf.constant([0]), components)
                 ) == pytest.approx(math.log(2.0), rel=1e-6)
    # z at +1: logits -0.0 vs -2.0 (Mahalanobis 0 and 4, halves) -> −log σ(2)
    expected = -math.log(1 / (1 + math.exp(-2.0)))
    assert float(L.gm_classification_loss(tf.constant([[1.0]]), tf.constant([0]), components)
                 ) == pytest.approx(expected, rel=1e-6)


def test_gm_margin_enlarges_true_class_distance():
    components = _components([[1.0], [-1.0]], np.ones([2, 1]))
    # d_0 = ½·0.25, d_1 = ½·2.25; with α = 1 the true class's d doubles.
    expected = -math.log(math.exp(-0.25) / (math.exp(-0.25) + math.exp(-1.125)))
    assert float(L.gm_classification_loss(tf.constant([[0.5]]), tf.constant([0]), components,
                                          margin=1.0)) == pytest.approx(expected, rel=1e-6)
    # without labels (inference) the margin is not applied
    np.testing.assert_allclose(L.gm_logits(tf.constant([[0.5]]), components, margin=1.0),
                               [[-0.125 - 0.5 * LOG_2PI, -1.125 - 0.5 * LOG_2PI]], rtol=1e-6)


@pytest.mark.parametrize("dims", [64, 512])
def test_gm_loss_finite_and_correct_in_high_dimensions(dims):
    # Tiny variances and means far from 0: a product of D variances underflows to 0 in float32
    # and so do the densities, while the log-densities are ~1e3.
    rng = np.random.default_rng(2)
    means = rng.normal(size=(10, dims)) * 3
    variances = np.full([10, dims], 1e-3)
    labels = np.arange(8) % 10
    z = means[labels] + rng.normal(size=(8, dims)) * 0.03
    assert float(tf.reduce_prod(tf.constant(variances[0], tf.float32))) == 0.0
    components = _components(means, variances)
    z32 = tf.constant(z, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(z32)
        total, cls, lkd, logits = L.gm_loss(z32, tf.constant(labels), components)
    assert np.all(np.isfinite(tape.gradient(total, z32)))
    # against float64 on the same float32-rounded inputs
    reference = _reference_log_likelihoods(np.asarray(z32, np.float64),
                                           np.asarray(components.mean(), np.float64),
                                           np.asarray(components.variance(), np.float64))[0]
    np.testing.assert_allclose(logits, reference, rtol=1e-5)
    assert float(cls) == pytest.approx(0.0, abs=1e-3)  # each z sits on its own class mean
    assert float(lkd) == pytest.approx(-np.mean(reference[np.arange(8), labels]), rel=1e-5)


def test_gm_loss_is_cls_plus_weighted_lkd():
    rng = np.random.default_rng(1)
    z = tf.constant(rng.normal(size=(4, 3)), tf.float32)
    components = _components(rng.normal(size=(2, 3)), np.ones([2, 3]))
    total, cls, lkd, _ = L.gm_loss(z, tf.constant([0, 1, 1, 0]), components, lkd_weight=0.1)
    assert float(total) == pytest.approx(float(cls) + 0.1 * float(lkd), rel=1e-6)


def test_likelihood_loss_matches_gaussian_formula():
    z = tf.constant([[1.0, 2.0]])
    prior = dists.diagonal_normal(tf.constant([[0.0, 0.0]]), tf.constant([[1.0, 4.0]]))
    expected = 0.5 * (1.0 / 1.0 + 4.0 / 4.0 + math.log(1.0) + math.log(4.0) + 2 * LOG_2PI)
    assert float(L.likelihood_loss(z, prior)) == pytest.approx(expected, rel=1e-6)


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


def _prior_with(means, variances):
    prior = dists.GaussianMixturePrior(*np.shape(means), min_variance=1e-3)
    prior.means.assign(means)
    # invert σ² = floor + softplus(raw)
    prior.raw_variances.assign(np.log(np.expm1(np.asarray(variances) - 1e-3)).astype("float32"))
    return prior


def test_prior_hands_out_tfp_components_and_uniform_mixture():
    rng = np.random.default_rng(5)
    means = rng.normal(size=(4, 3)).astype("float32")
    variances = rng.uniform(0.1, 1.5, size=(4, 3)).astype("float32")
    prior = _prior_with(means, variances)
    components = prior.components()
    assert isinstance(components, tfp.distributions.MultivariateNormalDiag)
    assert components.batch_shape == [4] and components.event_shape == [3]
    np.testing.assert_allclose(components.mean(), means, rtol=1e-6)
    np.testing.assert_allclose(components.variance(), variances, rtol=1e-5)
    labels = tf.constant([2, 0, 2])
    np.testing.assert_allclose(prior.components(labels).mean(), means[[2, 0, 2]], rtol=1e-6)
    mixture = prior.distribution()
    assert isinstance(mixture, tfp.distributions.MixtureSameFamily)
    np.testing.assert_allclose(mixture.mixture_distribution.probs_parameter(), [0.25] * 4)
    # log p(z) = logsumexp_c log N(z; μ_c, Σ_c) − log C, from the closed form
    z = rng.normal(size=(5, 3))
    log_lik = _reference_log_likelihoods(z, means, variances)[0]
    np.testing.assert_allclose(mixture.log_prob(tf.constant(z, tf.float32)),
                               np.log(np.exp(log_lik).sum(-1)) - math.log(4), rtol=1e-5)


def test_moment_matched_gaussian_is_eq11():
    rng = np.random.default_rng(3)
    means = (rng.normal(size=(4, 3)) * 2).astype("float32")
    variances = rng.uniform(0.1, 1.5, size=(4, 3)).astype("float32")
    gaussian = _prior_with(means, variances).moment_matched()
    # Eq. 11 written out: μ_t = Σ p(c) μ_c, σ²_t = Σ p(c) σ²_c + Σ p(c) μ_c² − μ_t²
    mean_t = means.mean(0)
    var_t = variances.mean(0) + (means**2).mean(0) - mean_t**2
    np.testing.assert_allclose(gaussian.mean(), mean_t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gaussian.variance(), var_t, rtol=1e-5)
    # and the mixture's own samples have these moments
    samples = _prior_with(means, variances).distribution().sample(200_000, seed=7)
    np.testing.assert_allclose(mean_t, tf.reduce_mean(samples, 0), atol=0.03)
    np.testing.assert_allclose(var_t, tf.math.reduce_variance(samples, 0), rtol=0.03)


def test_prior_gradients_reach_its_weights_unless_stopped():
    prior = dists.GaussianMixturePrior(3, 2)
    z = tf.constant([[0.5, -0.5]])
    for stop, expect in ((False, True), (True, False)):
        with tf.GradientTape() as tape:
            loss = -prior.moment_matched(stop_gradient=stop).log_prob(z)
        grads = tape.gradient(loss, [prior.means, prior.raw_variances])
        assert all((g is not None) == expect for g in grads)


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


def test_hsic_bandwidth_scales_average_kernels_and_see_local_dependence():
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(120, 1)).astype("float32")
    # The label is the parity of a fine bin of x: dependence at short distances only.
    y = np.eye(2, dtype="float32")[(np.floor(x[:, 0] * 12) % 2).astype(int)]
    wide, narrow = (float(L.hsic(x, y, bandwidth_scales=(s,))) for s in (1.0, 0.005))
    # HSIC is linear in the feature kernel: the multi-scale kernel's HSIC is the mean.
    both = float(L.hsic(x, y, bandwidth_scales=(1.0, 0.005)))
    assert both == pytest.approx((wide + narrow) / 2, rel=1e-5)
    assert float(L.hsic(x, y, bandwidth=0.3, bandwidth_scales=(1.0,))) == pytest.approx(
        float(L.hsic(x, y, bandwidth=0.3)), rel=1e-6)
    assert narrow > 3 * wide  # measured: 4x


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


# ------------------------------------------------------------------ paper B (CSVAE) losses
from keras_lsvae.distributions import SubspacePrior  # noqa: E402


def test_subspace_prior_moments_std_and_variance():
    attributes = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    prior = SubspacePrior(2, w_dim=2)
    dist = prior.distribution(attributes)
    np.testing.assert_allclose(dist.mean(), [[0, 0, 3, 3], [3, 3, 0, 0]])
    np.testing.assert_allclose(dist.stddev(), [[0.1, 0.1, 1, 1], [1, 1, 0.1, 0.1]], rtol=1e-6)
    variance = SubspacePrior(2, w_dim=2, scale="variance").distribution(attributes)
    np.testing.assert_allclose(variance.variance(), [[0.1, 0.1, 1, 1], [1, 1, 0.1, 0.1]],
                               rtol=1e-6)
    with pytest.raises(ValueError, match="scale"):
        SubspacePrior(2, scale="precision")


def test_kl_subspace_prior_matches_a_float64_hand_computation():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(3, 4)) + 1.0
    log_var = rng.normal(size=(3, 4)) * 0.5
    attributes = np.array([[1, 0], [0, 0], [1, 1]], np.float32)
    prior_mean = np.repeat(np.where(attributes == 1, 0.0, 3.0), 2, axis=1)
    prior_std = np.repeat(np.where(attributes == 1, 0.1, 1.0), 2, axis=1)
    var = np.exp(log_var)
    expected = np.mean(np.sum(np.log(prior_std) - 0.5 * log_var
                              + (var + (mean - prior_mean) ** 2) / (2 * prior_std**2) - 0.5,
                              axis=1))
    prior64 = dists.tfd.MultivariateNormalDiag(tf.constant(prior_mean), tf.constant(prior_std))
    got = L.kl_subspace_prior(tf.constant(mean, tf.float64), tf.constant(log_var, tf.float64),
                              prior64)
    np.testing.assert_allclose(float(got), expected, rtol=1e-10)
    # And through the prior itself in float32.
    got32 = L.kl_subspace_prior(tf.constant(mean, tf.float32), tf.constant(log_var, tf.float32),
                                SubspacePrior(2, w_dim=2).distribution(attributes))
    np.testing.assert_allclose(float(got32), expected, rtol=1e-5)


def test_m2_is_minimal_for_a_uniform_adversary():
    uniform = tf.zeros([4, 3])
    confident = tf.fill([4, 3], 4.0)
    np.testing.assert_allclose(float(L.attribute_entropy(uniform)), 3 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(float(L.attribute_negative_entropy(uniform)), -3 * np.log(2),
                               rtol=1e-6)
    p = 1 / (1 + np.exp(-4.0))
    expected = 3 * (p * np.log(p) + (1 - p) * np.log(1 - p))
    np.testing.assert_allclose(float(L.attribute_negative_entropy(confident)), expected,
                               rtol=1e-5)
    assert float(L.attribute_negative_entropy(confident)) > float(
        L.attribute_negative_entropy(uniform))


def test_attribute_cross_entropy_and_information_loss():
    logits = np.array([[2.0, -1.0], [0.0, 3.0]], np.float32)
    y = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    p = 1 / (1 + np.exp(-logits))
    expected = np.mean(np.sum(-(y * np.log(p) + (1 - y) * np.log(1 - p)), axis=1))
    np.testing.assert_allclose(float(L.attribute_cross_entropy(logits, y)), expected,
                               rtol=1e-6)
    np.testing.assert_allclose(float(L.information_encoder_loss(logits, y)), -expected,
                               rtol=1e-6)
