"""Tests for keras_lsvae.metrics: exact values where a closed form exists, properties otherwise."""

import numpy as np
import pytest
import scipy.linalg

from keras_lsvae import metrics
from keras_lsvae.registry import METRICS


# --------------------------------------------------------------------------- registry


def test_metrics_are_registered_by_name():
    expected = {
        "inception_score": metrics.inception_score,
        "fid": metrics.frechet_distance,
        "intra_class_fid": metrics.intra_class_fid,
        "ms_ssim_diversity": metrics.ms_ssim_diversity,
        "intra_class_diversity": metrics.intra_class_diversity,
        "probe_accuracy": metrics.probe_accuracy,
        "leakage": metrics.leakage_report,
        "regression_r2": metrics.regression_r2,
        "conditional_accuracy": metrics.conditional_accuracy,
    }
    for name, function in expected.items():
        assert METRICS.get(name) is function


# --------------------------------------------------------------------------- Inception Score


def test_inception_score_of_confident_uniform_classes_is_num_classes():
    num_classes = 10
    # Contiguous splits of 100 each hold exactly 10 samples of every class.
    labels = np.tile(np.arange(num_classes), 100)
    probs = np.eye(num_classes)[labels]
    mean, std = metrics.inception_score(probs, splits=10, shuffle_seed=None)
    assert mean == pytest.approx(num_classes)
    assert std == pytest.approx(0.0, abs=1e-12)
    # One split: p(y) is exactly uniform whatever the order.
    assert metrics.inception_score(probs, splits=1)[0] == pytest.approx(num_classes)


def test_inception_score_of_constant_predictions_is_one():
    probs = np.tile([[0.2, 0.5, 0.3]], (50, 1))
    mean, std = metrics.inception_score(probs, splits=5)
    assert mean == pytest.approx(1.0)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_shuffles_class_sorted_samples_before_splitting():
    probs = np.eye(4)[np.repeat(np.arange(4), 250)]  # sorted by class, as generated sets are
    # Without shuffling each split holds one class: p(y) = p(y|x) and IS collapses to 1.
    assert metrics.inception_score(probs, splits=4, shuffle_seed=None)[0] == pytest.approx(1.0)
    assert metrics.inception_score(probs, splits=4, shuffle_seed=0)[0] > 3.8


def test_inception_score_matches_direct_formula():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=40)
    marginal = probs.mean(axis=0)
    expected = np.exp(np.mean(np.sum(probs * np.log(probs / marginal), axis=1)))
    assert metrics.inception_score(probs, splits=1)[0] == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- FID


def _samples_with_exact_moments(mean, cov, num, seed):
    """Samples whose empirical mean and (ddof=1) covariance are exactly ``mean`` and ``cov``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((num, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whiten
    return z @ np.linalg.cholesky(cov).T + mean


def test_fid_of_identical_sets_is_zero():
    feats = np.random.default_rng(0).normal(size=(200, 16))
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_fid_equals_closed_form_for_diagonal_gaussians():
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    # Commuting covariances: Tr (Σa Σb)^½ = Σ σa σb, so d² = |Δμ|² + Σ (σa − σb)².
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    feats_a = _samples_with_exact_moments(mean_a, np.diag(var_a), 500, seed=1)
    feats_b = _samples_with_exact_moments(mean_b, np.diag(var_b), 700, seed=2)
    assert metrics.frechet_distance(feats_a, feats_b) == pytest.approx(expected, rel=1e-9)


def test_fid_equals_sqrtm_formula_for_non_commuting_covariances():
    mean_a, mean_b = np.array([0.5, -1.0]), np.array([0.0, 2.0])
    cov_a = np.array([[2.0, 0.8], [0.8, 1.0]])
    cov_b = np.array([[1.0, -0.3], [-0.3, 0.5]])
    expected = (
        np.sum((mean_a - mean_b) ** 2)
        + np.trace(cov_a + cov_b - 2.0 * np.real(scipy.linalg.sqrtm(cov_a @ cov_b)))
    )
    assert metrics.frechet_distance_from_statistics(mean_a, cov_a, mean_b, cov_b) == (
        pytest.approx(expected, rel=1e-10)
    )
    feats_a = _samples_with_exact_moments(mean_a, cov_a, 300, seed=3)
    feats_b = _samples_with_exact_moments(mean_b, cov_b, 300, seed=4)
    assert metrics.frechet_distance(feats_a, feats_b) == pytest.approx(expected, rel=1e-9)


def test_fid_handles_singular_covariances():
    # More dimensions than samples: rank-deficient covariance must not produce NaN.
    rng = np.random.default_rng(0)
    value = metrics.frechet_distance(rng.normal(size=(10, 32)), rng.normal(size=(10, 32)) + 1.0)
    assert np.isfinite(value) and value > 0


def test_intra_class_fid_averages_per_class_distances():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(120, 4))
    labels = np.repeat([0, 1, 2], 40)
    gen = real.copy()
    gen[labels == 1] += 2.0  # only class 1 differs, by a pure shift: FID = 4 · 2² = 16
    result = metrics.intra_class_fid(real, labels, gen, labels)
    assert result["per_class"][0] == pytest.approx(0.0, abs=1e-8)
    assert result["per_class"][1] == pytest.approx(16.0, rel=1e-9)
    assert result["mean"] == pytest.approx(16.0 / 3, rel=1e-9)
    assert result["counts"][2] == (40, 40)


# --------------------------------------------------------------------------- diversity (Eq. 12)


@pytest.mark.parametrize("shape", [(5, 16, 16, 1), (5, 32, 32, 3), (4, 64, 64, 3)])
def test_diversity_is_zero_for_identical_and_positive_for_random_images(shape):
    rng = np.random.default_rng(0)
    random_images = rng.random(shape).astype(np.float32)
    identical = np.repeat(random_images[:1], shape[0], axis=0)
    assert metrics.ms_ssim_diversity(identical) == pytest.approx(0.0, abs=1e-5)
    assert metrics.ms_ssim_diversity(random_images) > 0.5


def test_ms_ssim_settings_shrink_with_the_image():
    assert metrics.ms_ssim_settings(256, 256)["num_scales"] == 5
    assert metrics.ms_ssim_settings(256, 256)["filter_size"] == 11
    small = metrics.ms_ssim_settings(32, 32)
    assert small["num_scales"] == 3 and small["filter_size"] == 7
    assert sum(small["power_factors"]) == pytest.approx(1.0)
    assert metrics.ms_ssim_settings(16, 16)["num_scales"] == 2
    with pytest.raises(ValueError):
        metrics.ms_ssim_settings(4, 4)


def test_diversity_with_self_pairs_follows_eq12_literally():
    images = np.random.default_rng(1).random((4, 16, 16, 1)).astype(np.float32)
    distinct = metrics.ms_ssim_diversity(images)
    literal = metrics.ms_ssim_diversity(images, include_self_pairs=True)
    # Eq. 12 over X × X: 4 self-pairs with MS-SSIM 1 and 12 ordered distinct pairs.
    assert literal == pytest.approx((12 / 16) * distinct, rel=1e-6)


def test_pair_sampling_is_capped_and_seeded():
    images = np.random.default_rng(2).random((30, 16, 16, 1)).astype(np.float32)
    first = metrics.pairwise_ms_ssim(images, max_pairs=50, seed=3)
    again = metrics.pairwise_ms_ssim(images, max_pairs=50, seed=3)
    assert len(first["values"]) == 50 and not first["all_pairs"]
    np.testing.assert_array_equal(first["values"], again["values"])
    assert metrics.pairwise_ms_ssim(images[:6])["all_pairs"]


def test_intra_class_diversity_reports_each_class_and_settings():
    rng = np.random.default_rng(0)
    constant_class = np.repeat(rng.random((1, 16, 16, 1)), 4, axis=0)
    random_class = rng.random((4, 16, 16, 1))
    images = np.concatenate([constant_class, random_class]).astype(np.float32)
    labels = np.array([0] * 4 + [1] * 4)
    result = metrics.intra_class_diversity(images, labels)
    assert result["per_class"][0] == pytest.approx(0.0, abs=1e-5)
    assert result["per_class"][1] > 0.5
    assert result["mean"] == pytest.approx(np.mean(list(result["per_class"].values())))
    assert result["num_pairs"] == {0: 6, 1: 6}
    assert result["ms_ssim"]["num_scales"] == 2


# --------------------------------------------------------------------------- probes


def _split(x, y, num_train):
    return x[:num_train], y[:num_train], x[num_train:], y[num_train:]


def test_linearly_separable_labels_are_found_by_every_probe():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    for kind in ("linear", "knn", "mlp"):
        assert metrics.probe_accuracy(*_split(x, y, 400), kind=kind) > 0.9


def test_random_labels_give_chance_accuracy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(800, 5))
    y = rng.integers(0, 4, size=800)
    report = metrics.leakage_report(*_split(x, y, 400), num_classes=4)
    assert report["chance"] == 0.25
    for kind in ("linear", "knn", "mlp"):
        assert abs(report[kind] - 0.25) < 0.1
    assert report["num_train"] == 400 and report["num_test"] == 400


def test_nonlinear_leakage_is_caught_by_knn_but_not_linear_probe():
    # Label = which of two concentric rings a point lies on: no linear boundary exists.
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=600)
    radius = np.where(y == 1, 2.0, 1.0) + 0.1 * rng.normal(size=600)
    angle = rng.uniform(0, 2 * np.pi, size=600)
    z = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    report = metrics.leakage_report(*_split(z, y, 400), num_classes=2, kinds=("linear", "knn"))
    assert report["linear"] < 0.65
    assert report["knn"] > 0.95


def test_regression_r2_of_linear_target_is_one():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 6))
    targets = np.stack([x @ rng.normal(size=6) + 1.0, rng.normal(size=300)], axis=1)
    r2 = metrics.regression_r2(*_split(x, targets, 200), names=["linear", "noise"])
    assert r2["linear"] == pytest.approx(1.0, abs=1e-9)
    assert r2["noise"] < 0.1


# --------------------------------------------------------------------------- classifier


def test_eval_classifier_trains_and_gives_probs_and_features(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((24, 16, 16, 1)).astype(np.float32)
    labels = np.arange(24) % 3
    model = metrics.train_eval_classifier(images, labels, epochs=1, batch_size=8, seed=0,
                                          width=4)
    probs = metrics.predict_probs(model, images[:5])
    assert probs.shape == (5, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert metrics.features(model, images[:5]).shape == (5, 128)

    path = metrics.save_eval_classifier(model, str(tmp_path / "cache" / "classifier.keras"))
    restored = metrics.load_eval_classifier(path)
    np.testing.assert_allclose(metrics.predict_probs(restored, images[:5]), probs, atol=1e-6)
    np.testing.assert_allclose(
        metrics.features(restored, images[:5]), metrics.features(model, images[:5]), atol=1e-6
    )


def test_eval_classifier_handles_8px_digits_and_rejects_bad_backbone():
    model = metrics.build_eval_classifier((8, 8, 1), num_classes=10, width=4, feature_dim=16)
    assert model.output_shape == (None, 10)
    with pytest.raises(ValueError):
        metrics.build_eval_classifier((8, 8, 1), num_classes=10, backbone="resnet_v2")


def test_conditional_accuracy_overall_and_per_class():
    # A "classifier" that reads the class off the mean pixel value.
    def classifier(images):
        class_id = np.round(images.mean(axis=(1, 2, 3)) * 2).astype(int)
        return np.eye(3)[class_id]

    requested = np.array([0, 0, 1, 1, 2, 2])
    produced = np.array([0, 1, 1, 1, 2, 0])  # two of the six samples came out wrong
    images = np.ones((6, 4, 4, 1), np.float32) * (produced / 2.0)[:, None, None, None]
    assert metrics.conditional_accuracy(classifier, images, requested) == pytest.approx(4 / 6)
    report = metrics.conditional_accuracy_report(classifier, images, requested)
    assert report["per_class"] == {0: 0.5, 1: 1.0, 2: 0.5}
    assert report["num_samples"] == 6


# The model is saved untrained, so its optimizer has no variables yet: Keras warns on load.
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_keras_cv_backbone_builds_offline_and_round_trips(tmp_path):
    model = metrics.build_eval_classifier((32, 32, 3), num_classes=3, width=4,
                                          backbone="resnet_v2", feature_dim=8)
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    assert metrics.features(model, images).shape == (2, 8)
    restored = metrics.load_eval_classifier(
        metrics.save_eval_classifier(model, str(tmp_path / "resnet.keras"))
    )
    np.testing.assert_allclose(
        metrics.predict_probs(restored, images), metrics.predict_probs(model, images), atol=1e-6
    )
