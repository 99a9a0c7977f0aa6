"""Intra-class diversity from MS-SSIM (paper A Eq. 12).

Paper A (Lr-LiVAE, §4.2, Eq. 12), after Odena et al. (AC-GAN):

    d_intra(X) = 1 − 1/|X|² · Σ_{(x', x) ∈ X × X} MS-SSIM(x', x),

computed per class on generated images (and, for reference, on real images of that class).

Choices made here (all reported in :func:`intra_class_diversity`'s result):

* **Self-pairs.** Eq. 12 sums over X × X, which includes the |X| self-pairs with MS-SSIM = 1 and
  so pulls d_intra down by ≈ 1/|X| for small sets. By default we average over *distinct* pairs
  (x' ≠ x), which does not depend on |X|. ``include_self_pairs=True`` returns the literal Eq. 12
  value, ``1/|X| + (|X|−1)/|X| · mean_distinct`` (MS-SSIM is symmetric, so the mean over ordered
  distinct pairs equals the mean over unordered ones).
* **Pair sampling.** With more than ``max_pairs`` distinct pairs, ``max_pairs`` ordered pairs
  (i ≠ j) are drawn uniformly with replacement using ``seed``; otherwise all i < j pairs are used.
* **Scales and filter.** ``tf.image.ssim_multiscale`` needs every scale to be at least
  ``filter_size`` pixels (5 scales × 11 px needs ≥ 176 px; 32×32 fails). :func:`ms_ssim_settings`
  keeps as many of the 5 standard scales as fit, with the coarsest scale at least
  ``min_filter_size`` px, truncates the standard power factors (0.0448, 0.2856, 0.3001, 0.2363,
  0.1333) to those scales and renormalises them to sum to 1, and shrinks the Gaussian window to
  the largest odd size ≤ min(11, coarsest scale), scaling σ = 1.5 · size / 11 so the window still
  spans the same number of σ. Examples (defaults): 8×8 (embedded digits) → 1 scale (plain SSIM),
  7-px window; 16×16 → 2 scales, 7 px; 28/32 px → 3 scales, 7 px; 64×64 → 4 scales, 7 px;
  128 px → 5 scales, 7 px; ≥ 176 px → the standard 5 scales, 11 px, σ = 1.5. (The renormalised
  5-scale weights differ from the standard ones in the 4th decimal: those sum to 1.0001.)
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from keras_lsvae.registry import METRICS

STANDARD_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
STANDARD_FILTER_SIZE = 11
STANDARD_FILTER_SIGMA = 1.5


def ms_ssim_settings(
    height: int, width: int, max_scales: int = 5, min_filter_size: int = 5
) -> Dict[str, object]:
    """MS-SSIM scales / window that ``tf.image.ssim_multiscale`` accepts for an image size.

    Returns ``{"num_scales", "power_factors", "filter_size", "filter_sigma", "image_size"}``.
    Raises ``ValueError`` if even a single-scale SSIM window of ``min_filter_size`` does not fit.
    """
    side = min(int(height), int(width))
    max_scales = min(max_scales, len(STANDARD_POWER_FACTORS))
    for num_scales in range(max_scales, 0, -1):
        # tf pads odd sizes before each 2× average pooling, so scale k has ceil(side / 2^k) px.
        coarsest = math.ceil(side / 2 ** (num_scales - 1))
        filter_size = min(STANDARD_FILTER_SIZE, coarsest)
        if filter_size % 2 == 0:
            filter_size -= 1  # odd window: centred on a pixel
        if filter_size >= min_filter_size:
            weights = np.asarray(STANDARD_POWER_FACTORS[:num_scales], dtype=np.float64)
            weights = weights / weights.sum()
            return {
                "num_scales": num_scales,
                "power_factors": [float(w) for w in weights],
                "filter_size": int(filter_size),
                "filter_sigma": STANDARD_FILTER_SIGMA * filter_size / STANDARD_FILTER_SIZE,
                "image_size": [int(height), int(width)],
            }
    raise ValueError(
        f"images of {height}x{width} px are smaller than the minimum SSIM window "
        f"({min_filter_size} px)"
    )


def _as_nhwc(images) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:  # (N, H, W) grayscale
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W[, C]), got shape {images.shape}")
    return images


def _sample_pairs(num_images: int, max_pairs: int, seed: int):
    num_distinct = num_images * (num_images - 1) // 2
    if num_distinct <= max_pairs:
        first, second = np.triu_indices(num_images, k=1)
        return first, second, True
    rng = np.random.default_rng(seed)
    first = rng.integers(0, num_images, size=max_pairs)
    # Offset in [1, N-1] makes j uniform over the N-1 images different from i.
    second = (first + rng.integers(1, num_images, size=max_pairs)) % num_images
    return first, second, False


def pairwise_ms_ssim(
    images,
    max_pairs: int = 2000,
    seed: int = 0,
    batch_size: int = 256,
    max_val: float = 1.0,
    settings: Optional[Dict[str, object]] = None,
) -> Dict[str, object]:
    """MS-SSIM of distinct image pairs (all pairs, or ``max_pairs`` sampled ones).

    Returns ``{"values": (P,) array, "all_pairs": bool, "settings": ms_ssim_settings(...)}``.
    """
    images = _as_nhwc(images)
    if len(images) < 2:
        raise ValueError("need at least two images to form a pair")
    if settings is None:
        settings = ms_ssim_settings(images.shape[1], images.shape[2])
    first, second, all_pairs = _sample_pairs(len(images), max_pairs, seed)
    values = []
    for start in range(0, len(first), batch_size):
        i = first[start : start + batch_size]
        j = second[start : start + batch_size]
        values.append(
            tf.image.ssim_multiscale(
                images[i],
                images[j],
                max_val=max_val,
                power_factors=settings["power_factors"],
                filter_size=settings["filter_size"],
                filter_sigma=settings["filter_sigma"],
            ).numpy()
        )
    return {"values": np.concatenate(values).astype(np.float64), "all_pairs": all_pairs,
            "settings": settings}


@METRICS.register("ms_ssim_diversity")
def ms_ssim_diversity(
    images,
    max_pairs: int = 2000,
    seed: int = 0,
    include_self_pairs: bool = False,
    max_val: float = 1.0,
) -> float:
    """Eq. 12 diversity ``1 − mean MS-SSIM`` of one image set (see module docstring for choices).

    Args:
        images: (N, H, W, C) or (N, H, W), values in [0, max_val].
        max_pairs: cap on the number of pairs evaluated (sampled with ``seed`` beyond it).
        include_self_pairs: ``True`` gives the literal Eq. 12 (X × X, self-pairs count 1).
    """
    return float(
        _diversity_details(images, max_pairs, seed, include_self_pairs, max_val)["diversity"]
    )


def _diversity_details(images, max_pairs, seed, include_self_pairs, max_val):
    pairs = pairwise_ms_ssim(images, max_pairs=max_pairs, seed=seed, max_val=max_val)
    mean_distinct = float(pairs["values"].mean())
    num_images = len(images)
    if include_self_pairs:
        mean_ms_ssim = 1.0 / num_images + (num_images - 1) / num_images * mean_distinct
    else:
        mean_ms_ssim = mean_distinct
    return {
        "diversity": 1.0 - mean_ms_ssim,
        "num_images": num_images,
        "num_pairs": int(len(pairs["values"])),
        "all_pairs": pairs["all_pairs"],
        "settings": pairs["settings"],
    }


@METRICS.register("intra_class_diversity")
def intra_class_diversity(
    images,
    labels,
    max_pairs: int = 2000,
    seed: int = 0,
    include_self_pairs: bool = False,
    max_val: float = 1.0,
) -> Dict[str, object]:
    """Eq. 12 per class and averaged over classes.

    Call it on generated images and on real images of the same classes to report both, as
    DESIGN.md asks. Classes with fewer than two images are skipped (no pair exists).

    Returns:
        ``{"per_class": {class_id: d_intra}, "mean": float, "num_images": {class_id: n},
        "num_pairs": {class_id: P}, "skipped": [...], "include_self_pairs": bool,
        "max_pairs": int, "seed": int, "ms_ssim": ms_ssim_settings(...)}``
    """
    images = _as_nhwc(images)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    settings = ms_ssim_settings(images.shape[1], images.shape[2])
    per_class, num_images, num_pairs, skipped = {}, {}, {}, []
    for class_id in sorted(set(labels.tolist())):
        members = images[labels == class_id]
        num_images[int(class_id)] = len(members)
        if len(members) < 2:
            skipped.append(int(class_id))
            continue
        details = _diversity_details(members, max_pairs, seed, include_self_pairs, max_val)
        per_class[int(class_id)] = float(details["diversity"])
        num_pairs[int(class_id)] = details["num_pairs"]
    mean = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return {
        "per_class": per_class,
        "mean": mean,
        "num_images": num_images,
        "num_pairs": num_pairs,
        "skipped": skipped,
        "include_self_pairs": include_self_pairs,
        "max_pairs": max_pairs,
        "seed": seed,
        "ms_ssim": settings,
    }
