"""Inpainting masks (Lr-LiVAE §4.5, Fig. 7). Convention: 1 marks a missing pixel, 0 a kept one.

The paper corrupts the right half, the "eyes, nose and mouth" region and the bottom half of
64×64 aligned faces; ``eyes_band`` here is the central box spanning rows 25%–75% and columns
20%–80% of the image, which covers those parts on aligned faces and the middle stroke of digits.
``random_squares`` adds a seeded set of squares (an extra, not in the paper).
"""

from __future__ import annotations

import numpy as np

MASK_KINDS = ("right_half", "eyes_band", "bottom_half", "random_squares")


def make_mask(kind, height, width, *, num_squares=3, square_fraction=0.25, seed=0):
    """A (height, width, 1) float32 mask of the named kind."""
    mask = np.zeros((height, width, 1), np.float32)
    if kind == "right_half":
        mask[:, width // 2:] = 1.0
    elif kind == "bottom_half":
        mask[height // 2:, :] = 1.0
    elif kind == "eyes_band":
        mask[round(0.25 * height):round(0.75 * height), round(0.2 * width):round(0.8 * width)] = 1
    elif kind == "random_squares":
        rng = np.random.default_rng(seed)
        side = max(1, round(square_fraction * min(height, width)))
        for _ in range(num_squares):
            top = rng.integers(0, height - side + 1)
            left = rng.integers(0, width - side + 1)
            mask[top:top + side, left:left + side] = 1.0
    else:
        raise ValueError(f"unknown mask {kind!r}; known: {', '.join(MASK_KINDS)}")
    return mask
