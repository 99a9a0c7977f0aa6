"""Inception Score and Fréchet distance on the evaluation classifier (paper A §4.2).

Paper A (Lr-LiVAE, §4.2) measures realism and inter-class diversity with the Inception Score

    IS = exp( E_x KL( p(y|x) || p(y) ) ),

where p(y|x) comes from a classifier trained on the *real* training split of the same data set
(paper A used Inception-ResNet-v1; we use :mod:`keras_lsvae.metrics.classifier`) and p(y) is the
marginal over the generated samples. As in the original IS code the samples are cut into
``splits`` groups and the mean ± std of the per-split scores is reported.

FID is the Fréchet distance between Gaussians fitted to classifier features of real and generated
images,

    d² = ||μ_a − μ_b||² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}),

computed in float64. ``Tr (Σ_a Σ_b)^{1/2}`` is obtained from the eigenvalues of the symmetric PSD
matrix ``Σ_a^{1/2} Σ_b Σ_a^{1/2}`` (same spectrum as ``Σ_a Σ_b``), so no complex ``sqrtm`` result
and no "tiny imaginary part" ever has to be discarded; round-off negative eigenvalues are clipped
to 0. Per DESIGN.md these are *not* Inception-v3 IS/FID: always report the feature extractor,
the reference split and the sample counts next to the numbers.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
from scipy.special import rel_entr

from keras_lsvae.registry import METRICS


@METRICS.register("inception_score")
def inception_score(
    probs, splits: int = 10, shuffle_seed: Optional[int] = 0
) -> Tuple[float, float]:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` as mean and std over ``splits`` groups.

    Args:
        probs: (N, K) class probabilities p(y|x) of generated samples (rows sum to 1).
        splits: number of disjoint groups; p(y) is estimated within each group.
        shuffle_seed: samples are permuted with this seed before splitting, because generated
            sets are usually ordered by requested class and a contiguous split would then hold
            one class per group (p(y) ≈ p(y|x), IS ≈ 1). ``None`` keeps the given order.

    Returns:
        (mean, std) of the per-split scores (std with ddof=0, as in the original IS code).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {probs.shape}")
    if len(probs) < splits:
        raise ValueError(f"need at least splits={splits} samples, got {len(probs)}")
    if shuffle_seed is not None:
        probs = probs[np.random.default_rng(shuffle_seed).permutation(len(probs))]
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # rel_entr(p, q) = p log(p / q) with the 0 log 0 = 0 convention: no epsilon needed.
        kl_per_sample = rel_entr(part, marginal).sum(axis=1)
        scores.append(np.exp(kl_per_sample.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def gaussian_statistics(features) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and (ddof=1) covariance of (N, D) features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be (N>=2, D), got shape {features.shape}")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix via eigh (negative round-off → 0)."""
    eigvals, eigvecs = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def frechet_distance_from_statistics(mu_a, cov_a, mu_b, cov_b) -> float:
    """Fréchet distance between N(mu_a, cov_a) and N(mu_b, cov_b), in float64."""
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.atleast_2d(cov_a).astype(np.float64), np.atleast_2d(cov_b).astype(np.float64)
    sqrt_a = _psd_sqrt(cov_a)
    # Σa^{1/2} Σb Σa^{1/2} is symmetric PSD and similar to Σa Σb, so its eigenvalues give
    # Tr (Σa Σb)^{1/2} without a complex matrix square root.
    middle = sqrt_a @ cov_b @ sqrt_a
    eigvals = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    trace_sqrt = np.sqrt(np.clip(eigvals, 0.0, None)).sum()
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt
    # Tiny negative values are round-off for identical distributions.
    return float(max(value, 0.0))


@METRICS.register("fid")
def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (float64)."""
    mu_a, cov_a = gaussian_statistics(feats_a)
    mu_b, cov_b = gaussian_statistics(feats_b)
    return frechet_distance_from_statistics(mu_a, cov_a, mu_b, cov_b)


@METRICS.register("intra_class_fid")
def intra_class_fid(feats_real, labels_real, feats_gen, labels_gen) -> Dict[str, object]:
    """FID computed separately for each class present in both sets, then averaged.

    Returns:
        ``{"per_class": {class_id: fid}, "mean": float, "counts": {class_id: (n_real, n_gen)},
        "skipped": [class ids with < 2 samples on either side]}``.
    """
    feats_real, feats_gen = np.asarray(feats_real), np.asarray(feats_gen)
    labels_real = np.asarray(labels_real).reshape(-1)
    labels_gen = np.asarray(labels_gen).reshape(-1)
    per_class, counts, skipped = {}, {}, []
    for class_id in sorted(set(labels_real.tolist()) | set(labels_gen.tolist())):
        real = feats_real[labels_real == class_id]
        gen = feats_gen[labels_gen == class_id]
        counts[int(class_id)] = (len(real), len(gen))
        if len(real) < 2 or len(gen) < 2:
            skipped.append(int(class_id))  # a covariance needs at least two samples
            continue
        per_class[int(class_id)] = frechet_distance(real, gen)
    mean = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return {"per_class": per_class, "mean": mean, "counts": counts, "skipped": skipped}
