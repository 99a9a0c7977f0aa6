"""``digits``: scikit-learn's embedded 8x8 handwritten digits, the offline default data set.

`sklearn.datasets.load_digits` ships with scikit-learn (1797 images, 10 classes, grey levels
0..16), so it needs neither network nor files: every test and quick run can use it. Values are
divided by 16 into [0, 1] and the images are shown at ``image_size`` (default 16x16; bilinear
via `tf.image.resize`, clipped to [0, 1]) so that conv nets with a few stride-2 layers fit.

The train/test split is fixed: stratified `train_test_split(test_size=0.2, random_state=0)`,
independent of the pipeline `seed`, so test numbers from different runs are comparable.
"""

from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np

from keras_lsvae.data.core import CLASS, ArraySource, DatasetInfo, resize_float, validate_arrays
from keras_lsvae.registry import DATASETS

DEFAULT_IMAGE_SIZE = (16, 16)
TEST_FRACTION = 0.2
SPLIT_RANDOM_STATE = 0


@functools.lru_cache(maxsize=1)
def _split_indices() -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    labels = load_digits().target
    train, test = train_test_split(np.arange(labels.size), test_size=TEST_FRACTION,
                                   random_state=SPLIT_RANDOM_STATE, stratify=labels)
    return {"train": train, "test": test}


@functools.lru_cache(maxsize=8)
def _digits_split(split: str, image_size: Tuple[int, int]):
    from sklearn.datasets import load_digits

    digits = load_digits()
    index = _split_indices()[split]
    images = (digits.images[index] / 16.0).astype(np.float32)[..., None]
    images = resize_float(images, image_size)
    return validate_arrays(images, digits.target[index], num_classes=10, label_kind=CLASS,
                           source="digits")


@DATASETS.register("digits")
class DigitsSource(ArraySource):
    """scikit-learn digits, 1 channel, 10 classes, splits train (1437) / test (360)."""

    def __init__(self, data_dir: Optional[str] = None, image_size=None):
        del data_dir  # embedded data
        self.image_size = image_size or DEFAULT_IMAGE_SIZE

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="digits", num_classes=10, label_kind=CLASS,
                           input_shape=(*self.image_size, 1), is_image=True,
                           class_names=tuple(str(d) for d in range(10)), splits=("train", "test"))

    def split_arrays(self, split: str):
        self.check_split(split)
        return _digits_split(split, tuple(self.image_size))
