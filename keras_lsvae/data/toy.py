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
n_samples=10000, noise=0, random_state=0)`, 3-D points kept in raw (unstandardised) coordinates
(x = t cos t, y = height in [0, 21], z = t sin t, roll parameter t in [1.5 pi, 4.5 pi]), one binary
attribute. Rows are i.i.d., so the first 8000 are train and the last 2000 test. The paper's rule,
"label 0 if x < 10, and 1 if x > 10, splitting the roll in half", contradicts itself with
scikit-learn's coordinates: x >= 10 holds for only 13.7 % of the points (train 13.6 %, test
14.2 %), a strip of the outer turn, while its text and Fig. 2 split the roll in half. Two rules
(`SWISS_ROLL_RULES`, source option ``rule``; the second is also registered as its own name so
``--dataset`` reaches it):

* ``rule="length"`` (default, ``swiss_roll``): label 1 iff t >= 3 pi, the middle of the roll
  parameter's range: the outer half of the roll (along its length) vs the inner half. Measured
  positive fraction 49.4 % (train 49.3 %, test 49.7 %). Like the literal rule, label 1 is the
  outer part of the roll.
* ``rule="literal"`` (``swiss_roll_literal``): label 1 iff x >= 10, the paper's words (13.7 %).
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
SWISS_ROLL_THRESHOLD = 10.0  # literal rule: x >= 10
SWISS_ROLL_T_THRESHOLD = 3 * np.pi  # length rule: t >= 3 pi (middle of [1.5 pi, 4.5 pi])
#: split name -> (attribute name, description)
SWISS_ROLL_RULES = {
    "length": ("outer_half", "t >= 3 pi: the outer half of the roll (49.4 % positives)"),
    "literal": ("x_above_10", "x >= 10: the paper's literal rule (13.7 % positives)"),
}
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


def swiss_roll_labels(points: np.ndarray, t: np.ndarray, rule: str = "length") -> np.ndarray:
    """float32 (N, 1) labels of swiss-roll ``points`` with roll parameter ``t`` by ``rule``."""
    if rule == "length":
        positive = t >= SWISS_ROLL_T_THRESHOLD
    elif rule == "literal":
        positive = points[:, 0] >= SWISS_ROLL_THRESHOLD
    else:
        raise ValueError(f"swiss_roll: rule must be one of {', '.join(SWISS_ROLL_RULES)}, "
                         f"got {rule!r}")
    return positive.astype(np.float32)[:, None]


@functools.lru_cache(maxsize=8)
def _swiss_roll_split(split: str, rule: str, name: str):
    from sklearn.datasets import make_swiss_roll

    points, t = make_swiss_roll(n_samples=SWISS_ROLL_SAMPLES, noise=SWISS_ROLL_NOISE,
                                random_state=SWISS_ROLL_RANDOM_STATE)
    labels = swiss_roll_labels(points, t, rule)
    rows = slice(0, SWISS_ROLL_TRAIN) if split == "train" else slice(SWISS_ROLL_TRAIN, None)
    return validate_arrays(points[rows], labels[rows], num_classes=1, label_kind=ATTRIBUTES,
                           source=name, is_image=False)


class SwissRollSource(ArraySource):
    """CSVAE §5.1 swiss roll: raw 3-D points, one attribute (``rule``, module docstring)."""

    def __init__(self, data_dir: Optional[str] = None, image_size=None, rule: str = "length",
                 name: str = "swiss_roll"):
        del data_dir
        _no_image_size(name, image_size)
        if rule not in SWISS_ROLL_RULES:
            raise ValueError(f"{name}: rule must be one of {', '.join(SWISS_ROLL_RULES)}, "
                             f"got {rule!r}")
        self.rule, self.name = rule, name

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name=self.name, num_classes=1, label_kind=ATTRIBUTES,
                           input_shape=(3,), is_image=False,
                           class_names=(SWISS_ROLL_RULES[self.rule][0],),
                           splits=("train", "test"))

    def split_arrays(self, split: str):
        self.check_split(split)
        return _swiss_roll_split(split, self.rule, self.name)


@DATASETS.register("swiss_roll")
def _swiss_roll(data_dir=None, image_size=None, rule="length"):
    """CSVAE §5.1 swiss roll, label = outer half of the roll (t >= 3 pi) by default."""
    return SwissRollSource(data_dir=data_dir, image_size=image_size, rule=rule)


@DATASETS.register("swiss_roll_literal")
def _swiss_roll_literal(data_dir=None, image_size=None):
    """CSVAE §5.1 swiss roll with the paper's literal label rule x >= 10 (13.7 % positives)."""
    return SwissRollSource(data_dir=data_dir, image_size=image_size, rule="literal",
                           name="swiss_roll_literal")
