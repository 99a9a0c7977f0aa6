"""Image grids as plain NumPy arrays, and PNG writing (matplotlib, Agg backend).

``image_grid`` follows torchvision's ``make_grid`` layout: ``nrow`` is the number of images *per
row*, tiles are separated and surrounded by ``padding`` pixels, so N images of H×W give an array
of shape ``(rows·(H+p)+p, nrow·(W+p)+p, C)`` with ``rows = ceil(N / nrow)``. Empty cells of the
last row are filled with ``pad_value``.
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_lsvae import io  # noqa: E402


def to_numpy(x) -> np.ndarray:
    """NumPy view of a NumPy array, TF tensor or Keras tensor."""
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.asarray(x)


def as_nhwc(images) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) -> float32 (N, H, W, C)."""
    images = to_numpy(images).astype(np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W[, C]), got shape {images.shape}")
    return images


def image_grid(images, nrow: int, padding: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile N images into one (rows·(H+p)+p, nrow·(W+p)+p, C) array, ``nrow`` images per row."""
    images = as_nhwc(images)
    num, height, width, channels = images.shape
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    cols = min(nrow, num) if num else nrow
    rows = max(1, math.ceil(num / cols))
    grid = np.full(
        (rows * (height + padding) + padding, cols * (width + padding) + padding, channels),
        pad_value,
        dtype=np.float32,
    )
    for index, image in enumerate(images):
        row, col = divmod(index, cols)
        top = padding + row * (height + padding)
        left = padding + col * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def _prepare_for_png(grid: np.ndarray) -> np.ndarray:
    grid = np.clip(np.asarray(grid, dtype=np.float32), 0.0, 1.0)
    if grid.ndim == 3 and grid.shape[-1] == 1:
        grid = grid[..., 0]  # matplotlib wants (H, W) for grayscale
    return grid


def save_array_png(path: str, array) -> str:
    """Write an (H, W), (H, W, 1) or (H, W, 3) array in [0, 1] as a PNG of exactly H×W pixels."""
    _make_parent(path)
    array = _prepare_for_png(array)
    if array.ndim == 2:
        io.atomic_imsave(path, array, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        io.atomic_imsave(path, array)
    return str(path)


def save_image_grid(path: str, images, nrow: int, padding: int = 1,
                    pad_value: float = 1.0) -> str:
    """``image_grid`` written to ``path`` as a PNG (one image pixel = one PNG pixel)."""
    return save_array_png(path, image_grid(images, nrow, padding, pad_value))


def save_figure(fig, path: str, dpi: int = 100) -> str:
    """Save a matplotlib figure (tight bounding box), close it, return the path."""
    _make_parent(path)
    try:
        io.atomic_savefig(fig, path, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return str(path)


def _make_parent(path: str) -> None:
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
