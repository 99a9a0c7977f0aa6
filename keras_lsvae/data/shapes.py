"""``shapes``: procedurally rendered grey-scale shapes with known, independent factors.

Ground truth for disentanglement: the class (label-relevant) and five label-irrelevant factors
are sampled independently, so "change the class, keep the rest" has an exact answer,
``render(new_classes, same_factors)`` (`render_targets` for examples of a split): the target of attribute/identity transfer (z_s/z_u swaps
of Lr-LiVAE §4.4, attribute manipulation of CSVAE §4.3) and of leakage checks.

Classes (K = 4): 0 square, 1 circle, 2 triangle (equilateral, pointing up at rotation 0),
3 cross (a plus sign). Their areas are within a factor ~1.6 of each other and every shape is at
least ~7 px wide at 32x32, so they stay distinguishable at the smallest scale.

Factors (uniform, independent of each other and of the class), `FACTOR_NAMES`:

=============  ===================  ===============================================================
x_position     [-0.2, 0.2]          centre offset from the image centre, fraction of the width
y_position     [-0.2, 0.2]          same, fraction of the height (positive = down)
scale          [0.55, 1.0]          shape radius = scale * 0.22 * image side (3.9..7 px at 32)
rotation       [-pi/4, pi/4)        radians; a quarter turn, so square/cross/triangle
                                    rotations are not aliased by symmetry (circle: no effect)
intensity      [0.5, 1.0]           grey level of the shape on a black background
=============  ===================  ===============================================================

Factors are resolution independent: the same factors render the same scene at any size.
Rendering is vectorised numpy: inside tests on a 4x4 supersampled pixel grid, averaged
(anti-aliasing), times the intensity. Deterministic: split "train" = 12 000 examples from seed 0,
"test" = 3 000 from seed 1; classes exactly balanced.
"""

from __future__ import annotations

import functools
from typing import Dict, Optional, Tuple

import numpy as np

from keras_lsvae.data.core import CLASS, ArraySource, DatasetInfo, validate_arrays
from keras_lsvae.registry import DATASETS

CLASS_NAMES = ("square", "circle", "triangle", "cross")
NUM_CLASSES = len(CLASS_NAMES)
FACTOR_NAMES = ("x_position", "y_position", "scale", "rotation", "intensity")
FACTOR_RANGES: Dict[str, Tuple[float, float]] = {
    "x_position": (-0.2, 0.2),
    "y_position": (-0.2, 0.2),
    "scale": (0.55, 1.0),
    "rotation": (-np.pi / 4, np.pi / 4),
    "intensity": (0.5, 1.0),
}
RADIUS_FRACTION = 0.22  # radius at scale 1, as a fraction of the image side
SUPERSAMPLING = 4
DEFAULT_IMAGE_SIZE = 32
SPLITS = {"train": (12_000, 0), "test": (3_000, 1)}  # split -> (size, seed)
_CHUNK = 512  # examples rendered at once: bounds the supersampled buffer to ~8 M floats at 32x32

# Shape geometry in units of the radius (u, v: rotated coordinates, v pointing down).
_SQUARE_HALF_SIDE = 0.85
_CIRCLE_RADIUS = 1.0
_TRIANGLE_INRADIUS = 0.6  # circumradius 1.2
_CROSS_ARM_HALF_WIDTH = 0.33
_CROSS_ARM_LENGTH = 1.05


def _inside_square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF_SIDE


def _inside_circle(u, v):
    return u * u + v * v <= _CIRCLE_RADIUS**2


def _inside_triangle(u, v):
    # Intersection of three half planes whose outward normals point down, up-left and up-right
    # (v grows downward, so the apex at angle 0 points up).
    inside = np.ones(u.shape, dtype=bool)
    for angle in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
        inside &= u * np.cos(angle) + v * np.sin(angle) <= _TRIANGLE_INRADIUS
    return inside


def _inside_cross(u, v):
    au, av = np.abs(u), np.abs(v)
    horizontal = (au <= _CROSS_ARM_LENGTH) & (av <= _CROSS_ARM_HALF_WIDTH)
    vertical = (av <= _CROSS_ARM_LENGTH) & (au <= _CROSS_ARM_HALF_WIDTH)
    return horizontal | vertical


_INSIDE = (_inside_square, _inside_circle, _inside_triangle, _inside_cross)


def sample_factors(n: int, seed: int) -> Dict[str, np.ndarray]:
    """``n`` independent uniform draws of every factor in `FACTOR_RANGES` (float32 arrays)."""
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(*FACTOR_RANGES[name], size=n).astype(np.float32)
            for name in FACTOR_NAMES}


def sample_classes(n: int, seed: int) -> np.ndarray:
    """``n`` class ids, exactly balanced (up to n mod K), in a seeded random order."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int32)


def render(classes, factors: Dict[str, np.ndarray], image_size: int = DEFAULT_IMAGE_SIZE
           ) -> np.ndarray:
    """Renders float32 images (N, S, S, 1) in [0, 1]; pure function of its arguments.

    Args:
        classes: int class ids (N,) in [0, K), see `CLASS_NAMES`.
        factors: dict with every name of `FACTOR_NAMES` -> array (N,).
        image_size: side length S in pixels.
    """
    classes = np.asarray(classes)
    n = classes.shape[0]
    missing = [name for name in FACTOR_NAMES if name not in factors]
    if missing:
        raise ValueError(f"shapes.render: factors lack {missing}")
    if classes.ndim != 1 or (n and (classes.min() < 0 or classes.max() >= NUM_CLASSES)):
        raise ValueError(f"shapes.render: classes must be ids in [0, {NUM_CLASSES}), shape (N,)")
    f = {name: np.asarray(factors[name], dtype=np.float32).reshape(-1) for name in FACTOR_NAMES}
    if any(v.shape[0] != n for v in f.values()):
        raise ValueError("shapes.render: every factor needs one value per class id")
    size = int(image_size)
    sub = SUPERSAMPLING
    # Sub-pixel centres in pixel units, shared by all examples.
    grid = (np.arange(size * sub, dtype=np.float32) + 0.5) / sub
    images = np.zeros((n, size, size), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        rows = slice(start, min(n, start + _CHUNK))
        cx = (0.5 + f["x_position"][rows]) * size
        cy = (0.5 + f["y_position"][rows]) * size
        radius = f["scale"][rows] * RADIUS_FRACTION * size
        cos, sin = np.cos(f["rotation"][rows]), np.sin(f["rotation"][rows])
        dx = grid[None, None, :] - cx[:, None, None]  # (n, 1, W)
        dy = grid[None, :, None] - cy[:, None, None]  # (n, H, 1)
        inv_r = (1.0 / radius)[:, None, None]
        # Rotate the sampling grid by -rotation = rotate the shape by +rotation.
        u = (cos[:, None, None] * dx + sin[:, None, None] * dy) * inv_r
        v = (-sin[:, None, None] * dx + cos[:, None, None] * dy) * inv_r
        coverage = np.zeros(u.shape, dtype=np.float32)
        chunk_classes = classes[rows]
        for class_id, inside in enumerate(_INSIDE):
            members = np.flatnonzero(chunk_classes == class_id)
            if members.size:
                coverage[members] = inside(u[members], v[members])
        # Average the sub-pixels (anti-aliasing).
        coverage = coverage.reshape(-1, size, sub, size, sub).mean(axis=(2, 4))
        images[rows] = coverage * f["intensity"][rows][:, None, None]
    return np.clip(images, 0.0, 1.0)[..., None]


def _split_spec(split: str) -> Tuple[int, int]:
    if split not in SPLITS:
        raise ValueError(f"shapes: unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    return SPLITS[split]


def load_classes(split: str) -> np.ndarray:
    """Class ids of `split`, aligned with ``load_arrays("shapes", split)``."""
    size, seed = _split_spec(split)
    return sample_classes(size, seed)


def load_factors(split: str) -> Dict[str, np.ndarray]:
    """Factors of `split`, aligned with ``load_arrays("shapes", split)`` (same order)."""
    size, seed = _split_spec(split)
    # A separate stream from the classes (seed offset) keeps classes and factors independent.
    return sample_factors(size, seed + 1000)


def render_targets(split: str, indices, target_classes, image_size: int = DEFAULT_IMAGE_SIZE
                   ) -> np.ndarray:
    """The true images of test examples switched to another class, every other factor kept:
    ``render(target_classes, factors of examples indices)`` (N, S, S, 1). The ground truth of
    attribute manipulation (CSVAE §5.4 method 2 / Table 2 analogue: MSE between G_ij(x) and
    the real x with class j). With the examples' own classes it gives back the stored images.

    Args:
        split: ``"train"`` or ``"test"``.
        indices: int positions (N,) into the split (as ``load_arrays("shapes", split)``).
        target_classes: class ids (N,) (or one id for all) to render the examples as.
        image_size: must match the images compared with (``--image_size``).
    """
    size, _ = _split_spec(split)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise ValueError(f"shapes.render_targets: indices must lie in [0, {size}) for split "
                         f"{split!r}")
    targets = np.broadcast_to(np.asarray(target_classes, dtype=np.int64), indices.shape)
    factors = {name: values[indices] for name, values in load_factors(split).items()}
    return render(targets, factors, image_size)


@functools.lru_cache(maxsize=4)
def _shapes_split(split: str, image_size: int):
    images = render(load_classes(split), load_factors(split), image_size)
    return validate_arrays(images, load_classes(split), num_classes=NUM_CLASSES,
                           label_kind=CLASS, source="shapes")


@DATASETS.register("shapes")
class ShapesSource(ArraySource):
    """Rendered shapes, 1 channel, K=4 classes, default 32x32; splits train / test."""

    def __init__(self, data_dir: Optional[str] = None, image_size=None):
        del data_dir
        if image_size is not None and image_size[0] != image_size[1]:
            raise ValueError(f"shapes: renders square images, got image_size={image_size}")
        self.image_size = int(image_size[0]) if image_size else DEFAULT_IMAGE_SIZE

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="shapes", num_classes=NUM_CLASSES, label_kind=CLASS,
                           input_shape=(self.image_size, self.image_size, 1), is_image=True,
                           class_names=CLASS_NAMES, splits=tuple(SPLITS))

    def split_arrays(self, split: str):
        self.check_split(split)
        return _shapes_split(split, self.image_size)
