"""TensorFlow Datasets sources: mnist, fashion_mnist, cifar10, svhn_cropped (alias svhn), celeb_a.

TFDS never downloads at run time here (``download=False``): the data must be prepared offline
and passed with ``data_dir``. A missing data set raises `FileNotFoundError` whose message gives
the exact command. Metadata (`info`) is static, so it needs neither the files nor the network.

Images stay uint8 inside the pipeline (cached as uint8, divided by 255 after the cache), which
also makes them in range by construction; labels are checked per element with `tf.debugging`.
Files are read in their fixed order (``shuffle_files=False``) so every selection is deterministic.

CelebA attribute subsets - CSVAE §5.2.2 (Klys et al., NeurIPS 2018), applied "independently to
each of the training, validation and test split":

* ``glasses``: "all images labelled with the attribute glasses and twice as many images
  without" - attribute ``Eyeglasses``; 1 label.
* ``facial_hair``: "all images labelled with at least one of the attributes beard, mustache,
  goatee and an equal number of images without" - beard is TFDS's ``not No_Beard``; 1 label.
* ``glasses_facial_hair``: "the images from the previous two subsets along with the binary labels
  for both attributes" - the union of both selections, 2 labels (glasses, facial_hair).

The images without the attribute are drawn uniformly at random with a fixed seed (0, independent
of the pipeline seed) and kept in split order. Choosing needs the attribute counts of the split
first: one pass over the split's records with image decoding skipped.

Crop "as in [14]" (Larsen et al. 2016, "Autoencoding beyond pixels"; their released code crops the
aligned 218x178 image to rows 40..188, columns 15..163, a 148x148 square around the face) then
resize to 64x64 (bilinear with antialiasing; Larsen smooth before resizing for the same reason).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from keras_lsvae.data.core import (ATTRIBUTES, CLASS, DatasetInfo, Source, resize_uint8,
                                   validate_example)
from keras_lsvae.registry import DATASETS

AUTOTUNE = tf.data.AUTOTUNE

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
FASHION_MNIST_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal",
                         "shirt", "sneaker", "bag", "ankle boot")
DIGIT_CLASSES = tuple(str(d) for d in range(10))

CELEB_A_SPLITS = ("train", "validation", "test")
CELEB_A_IMAGE_SHAPE = (218, 178, 3)
CELEB_A_CROP = (40, 15, 148, 148)  # (top, left, height, width), Larsen et al. 2016
CELEB_A_IMAGE_SIZE = (64, 64)
CELEB_A_SELECTION_SEED = 0
_CELEB_A_ATTRIBUTES_READ = ("Eyeglasses", "No_Beard", "Mustache", "Goatee")


def missing_data_message(name: str, tfds_name: str, split: str, data_dir: Optional[str],
                         error: Exception) -> str:
    where = data_dir or "the default TFDS directory (~/tensorflow_datasets)"
    message = (
        f"{name}: TFDS data set '{tfds_name}' (split '{split}') is not prepared in {where}, and "
        "TFDS does not download at run time here. On a machine with network run\n"
        f"  python -c \"import tensorflow_datasets as tfds; tfds.builder('{tfds_name}', "
        f"data_dir='DIR').download_and_prepare()\"\n"
        "then copy DIR to this machine and pass --data_dir=DIR (data_dir=DIR in Python).")
    if tfds_name == "celeb_a":
        message += (
            "\nCelebA is hosted on Google Drive, which often refuses automated downloads "
            "(tensorflow/datasets#1482). If download_and_prepare fails, download "
            "img_align_celeba.zip, list_eval_partition.txt, list_attr_celeba.txt, "
            "list_landmarks_align_celeba.txt and identity_CelebA.txt by hand (links in the TFDS "
            "celeb_a checksums.tsv) into DIR/downloads/manual, then run the command again: TFDS "
            "uses files it finds in the manual directory instead of downloading them.")
    return f"{message}\n(TFDS said: {type(error).__name__}: {error})"


def tfds_load(name: str, tfds_name: str, split: str, data_dir: Optional[str], decoders=None):
    """`tfds.load` of prepared data only; missing data -> `FileNotFoundError` with instructions."""
    import tensorflow_datasets as tfds

    try:
        return tfds.load(tfds_name, split=split, data_dir=data_dir, download=False,
                         shuffle_files=False, decoders=decoders)
    except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError) as error:
        # TFDS signals "not prepared" with an AssertionError ("could not find data in ...").
        raise FileNotFoundError(
            missing_data_message(name, tfds_name, split, data_dir, error)) from error


class TfdsClassSource(Source):
    """A TFDS image classification data set with ``image`` (uint8) and ``label`` features."""

    def __init__(self, name: str, tfds_name: str, image_shape: Tuple[int, int, int],
                 class_names: Tuple[str, ...], data_dir: Optional[str] = None, image_size=None):
        self.name = name
        self.tfds_name = tfds_name
        self.native_shape = tuple(image_shape)
        self.class_names = tuple(class_names)
        self.data_dir = data_dir
        self.image_size = image_size

    @property
    def info(self) -> DatasetInfo:
        height, width = self.image_size or self.native_shape[:2]
        return DatasetInfo(name=self.name, num_classes=len(self.class_names), label_kind=CLASS,
                           input_shape=(height, width, self.native_shape[2]), is_image=True,
                           class_names=self.class_names, splits=("train", "test"))

    def examples(self, split: str) -> tf.data.Dataset:
        self.check_split(split)
        meta = self.info
        image_size = self.image_size

        def convert(example):
            image = example["image"]
            if image_size is not None:
                image = resize_uint8(image, image_size)
            image.set_shape(meta.input_shape)
            return validate_example(image, tf.cast(example["label"], tf.int32), meta, self.name)

        ds = tfds_load(self.name, self.tfds_name, split, self.data_dir)
        return ds.map(convert, num_parallel_calls=AUTOTUNE)


def _register_class_source(names, tfds_name, image_shape, class_names):
    def factory(data_dir=None, image_size=None):
        return TfdsClassSource(names[0], tfds_name, image_shape, class_names,
                               data_dir=data_dir, image_size=image_size)

    factory.__doc__ = f"TFDS '{tfds_name}' {image_shape}, {len(class_names)} classes."
    for name in names:
        DATASETS.register(name)(factory)


_register_class_source(("mnist",), "mnist", (28, 28, 1), DIGIT_CLASSES)
_register_class_source(("fashion_mnist",), "fashion_mnist", (28, 28, 1), FASHION_MNIST_CLASSES)
_register_class_source(("cifar10",), "cifar10", (32, 32, 3), CIFAR10_CLASSES)
_register_class_source(("svhn_cropped", "svhn"), "svhn_cropped", (32, 32, 3), DIGIT_CLASSES)


# ----------------------------------------------------------------------------------------------
# CelebA attribute subsets (CSVAE §5.2.2)
# ----------------------------------------------------------------------------------------------


def _choose_negatives(negatives: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` of the candidate indices uniformly at random (all if fewer), in split order."""
    if count >= negatives.size:
        return negatives
    return np.sort(rng.choice(negatives, size=count, replace=False))


# Derived binary attributes of CSVAE §5.2.2 from TFDS's CelebA attributes.
CELEB_A_ATTRIBUTES = {
    "glasses": lambda a: a["Eyeglasses"],
    "facial_hair": lambda a: ~a["No_Beard"] | a["Mustache"] | a["Goatee"],
}
# How many images without the attribute per image with it (paper: "twice as many", "equal").
NEGATIVES_PER_POSITIVE = {"glasses": 2, "facial_hair": 1}
# subset -> its attributes, in label-column order. A subset with several attributes is the
# union of the single-attribute subsets, labelled with all of them.
CELEB_A_SUBSET_ATTRIBUTES = {
    "glasses": ("glasses",),
    "facial_hair": ("facial_hair",),
    "glasses_facial_hair": ("glasses", "facial_hair"),
}
CELEB_A_SUBSETS = tuple(CELEB_A_SUBSET_ATTRIBUTES)


def celeb_a_selection(attributes: Dict[str, np.ndarray], subset: str
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Indices into the split and their float32 labels (n, A) for a CSVAE §5.2.2 subset.

    Args:
        attributes: boolean arrays (N,) of the split for the TFDS names ``Eyeglasses``,
            ``No_Beard``, ``Mustache``, ``Goatee``.
        subset: one of `CELEB_A_SUBSETS`.
    """
    if subset not in CELEB_A_SUBSET_ATTRIBUTES:
        raise ValueError(f"celeb_a: unknown subset {subset!r}; known: {', '.join(CELEB_A_SUBSETS)}")
    raw = {k: np.asarray(v, dtype=bool) for k, v in attributes.items()}
    columns, index = [], np.zeros(0, dtype=np.int64)
    for attribute in CELEB_A_SUBSET_ATTRIBUTES[subset]:
        positive = CELEB_A_ATTRIBUTES[attribute](raw)
        positives = np.flatnonzero(positive)
        # One generator per attribute, so the union subset contains exactly the images of the
        # single-attribute subsets.
        rng = np.random.default_rng(
            [CELEB_A_SELECTION_SEED, list(CELEB_A_ATTRIBUTES).index(attribute)])
        negatives = _choose_negatives(np.flatnonzero(~positive),
                                      NEGATIVES_PER_POSITIVE[attribute] * positives.size, rng)
        index = np.union1d(index, np.union1d(positives, negatives))
        columns.append(positive)
    labels = np.stack([column[index] for column in columns], axis=1).astype(np.float32)
    return index.astype(np.int64), labels


class CelebASubsetSource(Source):
    """CelebA attribute subset, 64x64x3 (or `image_size`), float32 attribute labels."""

    def __init__(self, data_dir: Optional[str] = None, image_size=None, subset: str = "glasses",
                 name: str = "celeb_a"):
        if subset not in CELEB_A_SUBSETS:
            raise ValueError(f"{name}: unknown subset {subset!r}; "
                             f"known: {', '.join(CELEB_A_SUBSETS)}")
        self.name = name
        self.subset = subset
        self.data_dir = data_dir
        self.image_size = image_size or CELEB_A_IMAGE_SIZE

    @property
    def info(self) -> DatasetInfo:
        attribute_names = CELEB_A_SUBSET_ATTRIBUTES[self.subset]
        return DatasetInfo(name=self.name, num_classes=len(attribute_names),
                           label_kind=ATTRIBUTES, input_shape=(*self.image_size, 3),
                           is_image=True, class_names=attribute_names, splits=CELEB_A_SPLITS)

    def split_attributes(self, split: str) -> Dict[str, np.ndarray]:
        """The attributes needed for the selection, for the whole split (images not decoded)."""
        import tensorflow_datasets as tfds

        ds = tfds_load(self.name, "celeb_a", split, self.data_dir,
                       decoders={"image": tfds.decode.SkipDecoding()})
        ds = ds.map(lambda ex: {k: ex["attributes"][k] for k in _CELEB_A_ATTRIBUTES_READ},
                    num_parallel_calls=AUTOTUNE).batch(8192)
        chunks = list(ds.as_numpy_iterator())
        return {k: np.concatenate([c[k] for c in chunks]) if chunks else np.zeros(0, bool)
                for k in _CELEB_A_ATTRIBUTES_READ}

    def examples(self, split: str) -> tf.data.Dataset:
        self.check_split(split)
        meta = self.info
        index, labels = celeb_a_selection(self.split_attributes(split), self.subset)
        if index.size == 0:
            raise ValueError(f"{self.name}: the {self.subset} subset of split {split!r} is empty")
        # Label of each selected record, looked up by its position in the split.
        num_records = int(index.max()) + 1
        selected = np.zeros(num_records, dtype=bool)
        selected[index] = True
        row_of = np.zeros(num_records, dtype=np.int64)
        row_of[index] = np.arange(index.size)
        selected_t, row_of_t, labels_t = (tf.constant(selected), tf.constant(row_of),
                                          tf.constant(labels))
        top, left, height, width = CELEB_A_CROP
        image_size = self.image_size

        def keep(position, example):
            return tf.gather(selected_t, position)

        def convert(position, example):
            image = tf.image.crop_to_bounding_box(example["image"], top, left, height, width)
            image = resize_uint8(image, image_size)
            image.set_shape(meta.input_shape)
            label = tf.gather(labels_t, tf.gather(row_of_t, position))
            return validate_example(image, label, meta, self.name)

        ds = tfds_load(self.name, "celeb_a", split, self.data_dir)
        # Records after the last selected one are not read at all.
        ds = ds.enumerate().take(num_records).filter(keep)
        return ds.map(convert, num_parallel_calls=AUTOTUNE)


def _register_celeb_a(name: str, default_subset: str, subset_is_fixed: bool) -> None:
    def factory(data_dir=None, image_size=None, subset=default_subset):
        if subset_is_fixed and subset != default_subset:
            raise ValueError(f"{name}: the subset is fixed to {default_subset!r}; "
                             f"use celeb_a with subset={subset!r}")
        return CelebASubsetSource(data_dir=data_dir, image_size=image_size, subset=subset,
                                  name=name)

    factory.__doc__ = f"CelebA subset (CSVAE §5.2.2), default subset {default_subset!r}."
    DATASETS.register(name)(factory)


_register_celeb_a("celeb_a", "glasses", subset_is_fixed=False)
for _subset in CELEB_A_SUBSETS:
    _register_celeb_a(f"celeb_a_{_subset}", _subset, subset_is_fixed=True)
