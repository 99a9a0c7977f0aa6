"""Low-dimensional toy data of both papers (point data, not images: ``is_image=False``).

``toy2d`` - Lr-LiVAE §4.1 (Zheng & Sun, CVPR 2019): "the real data distribution lies in 2D with
one dimension (x axis) being label relevant and the other (y axis) being irrelevant. The
distribution is assumed to be known. There are 3 types of data points ... belonging to 3 classes."
The paper does not give the distribution; ours is (module constants below)::

    c ~ Uniform{0, 1, 2} (exactly balanced per split),
    x | c ~ N(CLASS_MEANS_X[c], CLASS_STD_X^2) = N(m_c, 0.3^2), m = (-2, 0, 2)
    y ~ N(Y_MEAN, Y_STD^2) = N(0, 1), independent of c and x.

So an ideal label-irrelevant code carries y and no information about c. Splits: train 6000
(seed 0), test 1500 (seed 1). Points are float32 (N, 2); only finiteness is checked.

``swiss_roll`` - CSVAE §5.1 (Klys et al., NeurIPS 2018): `sklearn.datasets.make_swiss_roll(
n_samples=10000, noise=0, random_state=0)`, 3-D points kept in raw (unstandardised) coordinates,
one binary attribute "label 0 if x < 10, and 1 if x > 10". Rows are i.i.d., so the first 8000
are train and the last 2000 test. Note: with scikit-learn's coordinates (x = t cos t, y = height
in [0, 21], z = t sin t) the first coordinate exceeds 10 for only ~14% of the points, although the
paper says the rule splits "the roll in half" - which the height axis (column 1, ~52%) does. The
default follows the paper's words (``label_axis=0``); ``label_axis=1`` gives the even split.
"""

from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np

from keras_lsvae.data.core import ATTRIBUTES, CLASS, ArraySource, DatasetInfo, validate_arrays
from keras_lsvae.registry import DATASETS

# --- toy2d: the known generating distribution ---
NUM_CLASSES = 3
CLASS_MEANS_X = (-2.0, 0.0, 2.0)
CLASS_STD_X = 0.3
Y_MEAN = 0.0
Y_STD = 1.0
TOY2D_SPLITS = {"train": (6000, 0), "test": (1500, 1)}  # split -> (size, seed)

# --- swiss_roll (CSVAE §5.1) ---
SWISS_ROLL_SAMPLES = 10_000
SWISS_ROLL_NOISE = 0.0
SWISS_ROLL_RANDOM_STATE = 0
SWISS_ROLL_THRESHOLD = 10.0
SWISS_ROLL_TRAIN = 8000


def _no_image_size(name: str, image_size) -> None:
    if image_size is not None:
        raise ValueError(f"{name}: image_size does not apply to point data")


def sample(n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """``n`` toy2d points ``(points float32 (n, 2), labels int32 (n,))``, classes balanced."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int32)
    x = rng.normal(np.asarray(CLASS_MEANS_X)[labels], CLASS_STD_X)
    y = rng.normal(Y_MEAN, Y_STD, size=n)
    return np.stack([x, y], axis=1).astype(np.float32), labels


@functools.lru_cache(maxsize=4)
def _toy2d_split(split: str):
    size, seed = TOY2D_SPLITS[split]
    points, labels = sample(size, seed)
    return validate_arrays(points, labels, num_classes=NUM_CLASSES, label_kind=CLASS,
                           source="toy2d", is_image=False)


@DATASETS.register("toy2d")
class Toy2DSource(ArraySource):
    """Lr-LiVAE §4.1 toy: 2-D points, 3 classes; x label-relevant, y label-irrelevant."""

    def __init__(self, data_dir: Optional[str] = None, image_size=None):
        del data_dir
        _no_image_size("toy2d", image_size)

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="toy2d", num_classes=NUM_CLASSES, label_kind=CLASS,
                           input_shape=(2,), is_image=False,
                           class_names=tuple(f"x~N({m:g},{CLASS_STD_X:g}^2)"
                                             for m in CLASS_MEANS_X),
                           splits=tuple(TOY2D_SPLITS))

    def split_arrays(self, split: str):
        self.check_split(split)
        return _toy2d_split(split)


@functools.lru_cache(maxsize=8)
def _swiss_roll_split(split: str, label_axis: int):
    from sklearn.datasets import make_swiss_roll

    points, _ = make_swiss_roll(n_samples=SWISS_ROLL_SAMPLES, noise=SWISS_ROLL_NOISE,
                                random_state=SWISS_ROLL_RANDOM_STATE)
    labels = (points[:, label_axis] >= SWISS_ROLL_THRESHOLD).astype(np.float32)[:, None]
    rows = slice(0, SWISS_ROLL_TRAIN) if split == "train" else slice(SWISS_ROLL_TRAIN, None)
    return validate_arrays(points[rows], labels[rows], num_classes=1, label_kind=ATTRIBUTES,
                           source="swiss_roll", is_image=False)


@DATASETS.register("swiss_roll")
class SwissRollSource(ArraySource):
    """CSVAE §5.1 swiss roll: raw 3-D points, one attribute (coordinate `label_axis` >= 10)."""

    def __init__(self, data_dir: Optional[str] = None, image_size=None, label_axis: int = 0):
        del data_dir
        _no_image_size("swiss_roll", image_size)
        if label_axis not in (0, 1, 2):
            raise ValueError(f"swiss_roll: label_axis must be 0, 1 or 2, got {label_axis!r}")
        self.label_axis = int(label_axis)

    @property
    def info(self) -> DatasetInfo:
        axis_name = "xyz"[self.label_axis]
        return DatasetInfo(name="swiss_roll", num_classes=1, label_kind=ATTRIBUTES,
                           input_shape=(3,), is_image=False,
                           class_names=(f"{axis_name}_above_{SWISS_ROLL_THRESHOLD:g}",),
                           splits=("train", "test"))

    def split_arrays(self, split: str):
        self.check_split(split)
        return _swiss_roll_split(split, self.label_axis)
