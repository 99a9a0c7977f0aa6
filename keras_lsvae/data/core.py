"""Shared pieces of the data package: metadata, the `Source` interface, validation, resizing.

Every data set is a `Source` registered in `keras_lsvae.registry.DATASETS`. A source yields
single, validated examples `(image, label)`; `keras_lsvae.data.pipeline` turns them into batched
`tf.data` pipelines. Conventions (DESIGN.md, "Public API contract"):

* images: NHWC float32 in [0, 1] at every public boundary. Inside a pipeline a source may hand
  out uint8 images (0..255): the pipeline caches them as uint8 (4x less memory than float32) and
  converts to float32 / 255 right after the cache. uint8 / 255 is in range by construction, so
  uint8 data needs no value check.
* point data (``toy2d``, ``swiss_roll``) are float32 vectors (D,), not images: ``is_image`` is
  False, only finiteness is checked.
* labels: int32 class ids in [0, K) for class data (paper A models), float32 {0, 1} attribute
  vectors of shape (A,) for attribute data (paper B models).

`validate_arrays` is the single gate for in-memory data; `validate_example` is its per-element
TensorFlow twin for lazily read sources. `Source.prepare` makes a source's files available (TFDS:
download and prepare) before anything is built; `single_attribute_as_class` says when attribute
data can feed a class model;
`as_attributes` turns any labels into the attribute vectors paper B's models take.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

CLASS = "class"
ATTRIBUTES = "attributes"
LABEL_KINDS = (CLASS, ATTRIBUTES)

ImageSize = Union[None, int, Sequence[int]]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of a data set (no data is read to build it for TFDS sources).

    Attributes:
        name: the name the data set was loaded by (e.g. ``"digits"``, ``"npz:/d/x.npz"``).
        num_classes: K for class data; the number of attributes A for attribute data.
        label_kind: ``"class"`` (int32 ids) or ``"attributes"`` (float32 {0,1} vectors (A,)).
        input_shape: shape of one example, (H, W, C) for images, (D,) for point data, after
            resizing: sources whose native image size the conv networks cannot take (they need
            sides 4·2^n: 8, 16, 32, 64) are resized by default, e.g. ``mnist`` and
            ``fashion_mnist`` are 32x32 unless an explicit ``image_size`` (such as 28, the native
            size) is asked for.
        is_image: False for point data (toy2d, swiss_roll).
        class_names: names of the K classes, or of the A attributes.
        splits: split names accepted by `load`.
    """

    name: str
    num_classes: int
    label_kind: str
    input_shape: Tuple[int, ...]
    is_image: bool
    class_names: Tuple[str, ...]
    splits: Tuple[str, ...]

    @property
    def label_shape(self) -> Tuple[int, ...]:
        """Shape of one label: () for class ids, (A,) for attribute vectors."""
        return () if self.label_kind == CLASS else (self.num_classes,)

    @property
    def attribute_names(self) -> Tuple[str, ...]:
        """Alias of `class_names` that reads better for attribute data."""
        return self.class_names


def single_attribute_as_class(meta: DatasetInfo) -> bool:
    """A data set with one binary attribute (swiss_roll, celeb_a_glasses) can feed a class model
    as 2 classes (attribute value = class id)."""
    return meta.label_kind == ATTRIBUTES and meta.num_classes == 1


def as_attributes(labels, meta: DatasetInfo, num_classes: Optional[int] = None):
    """Labels of data set ``meta`` as the float32 {0, 1} attribute vectors (N, A) that attribute
    models (paper B: CSVAE, VAE, CondVAE, CondVAE-info) take.

    Class data (digits, mnist, shapes, npz, folder) become one-hot vectors over the K classes
    (A = K; ``num_classes`` overrides K, e.g. the kept ``--classes``), as paper B §5.2.1 feeds
    TFD's 7 expressions to a single model; attribute data (swiss_roll, celeb_a_*) are returned
    as they are (float32). Works on NumPy arrays (returns NumPy) and on tensors inside a
    ``tf.data`` map (returns a tensor); a leading group axis (B, G) is kept: (B, G, A).

    Raises ``ValueError`` when the labels cannot be attributes: class data with fewer than 2
    classes (a one-hot vector of 1 class is a constant, not an attribute), or ``num_classes``
    given for attribute data.
    """
    num_classes = check_int("num_classes", num_classes, minimum=1, allow_none=True,
                            source=meta.name)
    if meta.label_kind == CLASS:
        depth = int(meta.num_classes if num_classes is None else num_classes)
        if depth < 2:
            raise ValueError(f"{meta.name}: {depth} class cannot be one-hot attributes for an "
                             "attribute model (it needs at least 2 classes)")
        if isinstance(labels, (tf.Tensor, tf.Variable)):
            return tf.one_hot(tf.cast(labels, tf.int32), depth, dtype=tf.float32)
        ids = np.asarray(labels).astype(np.int64)
        return np.eye(depth, dtype=np.float32)[ids]
    if num_classes is not None and int(num_classes) != meta.num_classes:
        raise ValueError(f"{meta.name}: has {meta.num_classes} attributes; their number cannot "
                         f"be changed to {num_classes}")
    if isinstance(labels, (tf.Tensor, tf.Variable)):
        return tf.cast(labels, tf.float32)
    return np.asarray(labels, dtype=np.float32)


def attribute_names(meta: DatasetInfo, num_classes: Optional[int] = None) -> Tuple[str, ...]:
    """Names of the A attributes `as_attributes` gives (class names for class data)."""
    names = tuple(meta.class_names)
    num_classes = check_int("num_classes", num_classes, minimum=1, allow_none=True,
                            source=meta.name)
    return names[:num_classes] if num_classes is not None else names


# ----------------------------------------------------------------------------------------------
# Arguments: wrong types and values are refused, never converted
# ----------------------------------------------------------------------------------------------


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def is_int(value) -> bool:
    """True for Python and NumPy integers; False for bool (an int subclass, but ``True`` as a
    count is a mistake), floats (``16.0``) and strings (``"16"``)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value, *, minimum: Optional[int] = None,
              maximum: Optional[int] = None, allow_none: bool = False,
              source: Optional[str] = None) -> Optional[int]:
    """``value`` as an int, or a ValueError naming ``name`` if it is not an integer (bool, float
    and str are refused, not converted) or is outside [minimum, maximum]. None passes if
    ``allow_none``."""
    prefix = f"{source}: " if source else ""
    if value is None and allow_none:
        return None
    bound = "" if minimum is None else f" >= {minimum}"
    bound += "" if maximum is None else (" and" if minimum is not None else "") + f" <= {maximum}"
    if not is_int(value):
        none = " or None" if allow_none else ""
        raise ValueError(f"{prefix}{name} must be an integer{bound}{none}, got {_describe(value)}")
    if (minimum is not None and int(value) < minimum) or (maximum is not None
                                                          and int(value) > maximum):
        raise ValueError(f"{prefix}{name} must be an integer{bound}, got {int(value)}")
    return int(value)


def check_bool(name: str, value, *, allow_none: bool = False) -> Optional[bool]:
    """``value`` as a bool, or a ValueError naming ``name`` (``1``, ``"no"`` are refused)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be True or False{none}, got {_describe(value)}")
    return bool(value)


def check_str(name: str, value, *, allow_none: bool = False, path: bool = False):
    """``value`` as a non-empty str (``path``: also an `os.PathLike`), else a ValueError."""
    if value is None and allow_none:
        return None
    if path and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        what = "a non-empty string" + (" (a path)" if path else "")
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}, "
                         f"got {_describe(value)}")
    return value


def normalize_image_size(image_size: ImageSize) -> Optional[Tuple[int, int]]:
    """None stays None, an int n becomes (n, n), a (height, width) pair of ints stays a pair.

    Anything else is a ValueError, not a conversion: ``"16"`` (a string is a sequence: it once
    became 1x6), ``16.0``, ``True``, ``(16,)`` and sides < 1 are refused.
    """
    if image_size is None:
        return None
    expected = "image_size must be an integer >= 1 or a (height, width) pair of them"
    if isinstance(image_size, np.ndarray) and image_size.ndim <= 1:
        image_size = image_size.tolist() if image_size.ndim else image_size.item()
    if is_int(image_size):
        size = (int(image_size), int(image_size))
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2 and all(
            is_int(s) for s in image_size):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise ValueError(f"{expected}, got {_describe(image_size)}")
    if min(size) < 1:
        raise ValueError(f"{expected}, got {image_size!r}")
    return size


def some(values, limit: int = 6) -> str:
    """A short list of (sorted, distinct) offending values for an error message."""
    values = np.unique(np.asarray(values).reshape(-1))
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(
            values == np.round(values)) and np.all(np.abs(values) < 2.0 ** 62):
        values = values.astype(np.int64)  # class ids read as floats: show 1000, not 1000.0
    shown = [v.item() if hasattr(v, "item") else v for v in values[:limit]]
    more = f" ... ({values.size} distinct values)" if values.size > limit else ""
    return f"{shown}{more}"


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def _fail(source: str, field: str, problem: str) -> None:
    raise ValueError(f"{source}: field '{field}' {problem}")


def validate_arrays(
    images,
    labels,
    *,
    num_classes: int,
    label_kind: str,
    source: str,
    is_image: bool = True,
) -> Tuple[np.ndarray, np.ndarray]:
    """Checks a whole in-memory split and returns it in canonical dtypes.

    Raises `ValueError` whose message starts with ``"{source}: field '{images|labels}'"`` for:
    empty data; wrong rank (images must be (N, H, W, C) with C in {1, 3}; points (N, D));
    non-finite values; image values outside [0, 1]; class labels that are not integers in
    [0, num_classes); attribute labels not of shape (N, num_classes) or not in {0, 1}; a label
    count that differs from the image count.

    Returns:
        ``(images float32, labels)`` with labels int32 (class) or float32 (attributes).
    """
    if label_kind not in LABEL_KINDS:
        raise ValueError(f"{source}: label_kind must be one of {LABEL_KINDS}, got {label_kind!r}")
    num_classes = check_int("num_classes", num_classes, minimum=1, source=source)
    is_image = check_bool("is_image", is_image)
    images = np.asarray(images)
    labels = np.asarray(labels)

    # Images / points.
    if images.ndim == 0 or images.shape[0] == 0:
        _fail(source, "images", "is empty (no examples)")
    if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
        _fail(source, "images", f"has non-numeric dtype {images.dtype}")
    if is_image:
        if images.ndim != 4:
            _fail(source, "images", f"must have rank 4 (N, H, W, C), got shape {images.shape}")
        if images.shape[-1] not in (1, 3):
            _fail(source, "images", f"must have 1 or 3 channels, got {images.shape[-1]} "
                  f"(shape {images.shape})")
    elif images.ndim != 2:
        _fail(source, "images", f"(points) must have rank 2 (N, D), got shape {images.shape}")
    images = images.astype(np.float32, copy=False)
    finite = np.isfinite(images)
    if not np.all(finite):
        rows = np.flatnonzero(~finite.reshape(images.shape[0], -1).all(axis=1))
        _fail(source, "images", f"has {int(np.sum(~finite))} non-finite values (NaN or inf) in "
              f"{rows.size} examples, the first at index {int(rows[0])}: fix or drop them")
    if is_image:
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0:
            _fail(source, "images", f"has values in [{low:g}, {high:g}], outside [0, 1] "
                  "(uint8 data must be divided by 255)")

    # Labels.
    if labels.ndim == 0 or labels.shape[0] == 0:
        _fail(source, "labels", "is empty (no labels)")
    if labels.shape[0] != images.shape[0]:
        _fail(source, "labels", f"has {labels.shape[0]} entries but 'images' has {images.shape[0]}")
    if not (np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_):
        _fail(source, "labels", f"has non-numeric dtype {labels.dtype}")
    labels_f = labels.astype(np.float64)
    if not np.all(np.isfinite(labels_f)):
        rows = np.flatnonzero(~np.isfinite(labels_f.reshape(labels_f.shape[0], -1)).all(axis=1))
        _fail(source, "labels", f"has non-finite values (NaN or inf) in {rows.size} examples, "
              f"the first at index {int(rows[0])}")
    if label_kind == CLASS:
        if labels.ndim != 1:
            _fail(source, "labels", f"(class ids) must have rank 1 (N,), got shape {labels.shape}")
        fractional = labels_f != np.round(labels_f)
        if np.any(fractional):
            _fail(source, "labels",
                  f"(class ids) has non-integer values {some(labels_f[fractional])}")
        outside = (labels_f < 0) | (labels_f >= num_classes)
        if np.any(outside):
            low, high = labels_f.min(), labels_f.max()
            _fail(source, "labels", f"has class ids in [{low:g}, {high:g}], outside "
                  f"[0, {num_classes}) for {num_classes} classes: {some(labels_f[outside])}")
        labels = labels_f.astype(np.int32)
    else:
        if labels.ndim != 2 or labels.shape[1] != num_classes:
            _fail(source, "labels", f"(attributes) must have shape (N, {num_classes}), "
                  f"got {labels.shape}")
        if not np.all((labels_f == 0) | (labels_f == 1)):
            _fail(source, "labels", "(attributes) has values other than 0 and 1")
        labels = labels_f.astype(np.float32)
    return images, labels


def validate_example(image: tf.Tensor, label: tf.Tensor, info: DatasetInfo, source: str):
    """Per-element checks for lazily read data; returns ``(image, label)`` with the checks attached.

    uint8 images are in range by construction and are not checked (zero cost); float images
    are checked for finiteness and [0, 1]. Class ids are checked against [0, K).
    """
    # No quotes: TF escapes them in assertion messages.
    images_field, labels_field = f"{source}: field images", f"{source}: field labels"
    checks = []
    if image.dtype != tf.uint8:
        checks.append(tf.debugging.assert_all_finite(image, f"{images_field} is not finite"))
        if info.is_image:  # point data may take any finite value
            checks.append(tf.debugging.assert_greater_equal(
                image, tf.zeros([], image.dtype), message=f"{images_field} has values < 0"))
            checks.append(tf.debugging.assert_less_equal(
                image, tf.ones([], image.dtype), message=f"{images_field} has values > 1"))
    if info.label_kind == CLASS:
        checks.append(tf.debugging.assert_greater_equal(
            label, tf.zeros([], label.dtype), message=f"{labels_field} has class ids < 0"))
        checks.append(tf.debugging.assert_less(
            label, tf.cast(info.num_classes, label.dtype),
            message=f"{labels_field} has class ids >= {info.num_classes}"))
    with tf.control_dependencies(checks):
        return tf.identity(image), tf.identity(label)


# ----------------------------------------------------------------------------------------------
# Resizing
# ----------------------------------------------------------------------------------------------


def resize_float(images: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Bilinear resize of float [0, 1] images (N, H, W, C), clipped back into [0, 1].

    ``antialias=True`` only matters when shrinking (it low-pass filters first, avoiding moire);
    enlarging is plain bilinear interpolation. Same-size input is returned unchanged.
    """
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    resized = tf.image.resize(images, size, method="bilinear", antialias=True)
    return np.clip(resized.numpy(), 0.0, 1.0).astype(np.float32)


def resize_uint8(image: tf.Tensor, size: Tuple[int, int]) -> tf.Tensor:
    """Bilinear (antialiased) resize of one uint8 image, rounded back to uint8.

    Rounding keeps pipeline caches in uint8; it is exactly what saving the resized image would do.
    Same-size resizing is the identity (half-pixel centres), so unchanged images stay bit-exact.
    """
    resized = tf.image.resize(image, size, method="bilinear", antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


# ----------------------------------------------------------------------------------------------
# The source interface
# ----------------------------------------------------------------------------------------------


class Source(abc.ABC):
    """One data set. Registered factories build it from ``(data_dir, image_size, **options)``.

    Subclasses provide `info` and `examples(split)`; `arrays(split)` has a generic
    implementation that reads `examples`.
    """

    #: Shuffle buffer used when the pipeline shuffles a split of unknown or large size.
    default_shuffle_buffer = 10_000

    @property
    @abc.abstractmethod
    def info(self) -> DatasetInfo:
        """Static metadata (`DatasetInfo`)."""

    @abc.abstractmethod
    def examples(self, split: str) -> tf.data.Dataset:
        """Unbatched, validated ``(image, label)`` pairs of `split`, in a fixed order.

        Images are uint8 (to be divided by 255 by the pipeline) or float32 in [0, 1]; labels
        are int32 class ids or float32 attribute vectors.
        """

    def prepare(self, download: bool = True) -> None:
        """Makes the data available for reading, or raises `FileNotFoundError` saying how to.

        Called by `keras_lsvae.data.prepare` / `load` / `load_arrays` before any example is read.
        Embedded and procedural sources have nothing to prepare, and user files were checked
        when the source was built, so the default does nothing; TFDS sources download and
        prepare here (unless ``download=False``).
        """
        del download

    def num_examples(self, split: str) -> Optional[int]:
        """Size of `split` if cheaply known, else None."""
        return None

    def known_labels(self, split: str) -> Optional[np.ndarray]:
        """Labels of the whole `split` if known without decoding images, else None.

        Lets the pipeline count the examples a ``classes=`` selection keeps, so a split too small
        for one batch is an error before training rather than an empty epoch.
        """
        return None

    def check_split(self, split: str) -> None:
        if split not in self.info.splits:
            raise ValueError(f"{self.info.name}: unknown split {split!r}; "
                             f"known splits: {', '.join(self.info.splits)}")

    def arrays(self, split: str, max_examples: Optional[int] = None):
        """The split in memory: ``(images float32 [0,1], labels)`` (first `max_examples`)."""
        self.check_split(split)
        max_examples = check_int("max_examples", max_examples, minimum=1, allow_none=True)
        ds = self.examples(split)
        if max_examples is not None:
            ds = ds.take(max_examples)
        images, labels = [], []
        for image_batch, label_batch in ds.batch(1024).as_numpy_iterator():
            if image_batch.dtype == np.uint8:
                image_batch = image_batch.astype(np.float32) / np.float32(255.0)
            images.append(image_batch)
            labels.append(label_batch)
        if not images:
            raise ValueError(f"{self.info.name}: split {split!r} has no examples")
        return validate_arrays(
            np.concatenate(images), np.concatenate(labels), num_classes=self.info.num_classes,
            label_kind=self.info.label_kind, source=self.info.name, is_image=self.info.is_image)


class ArraySource(Source):
    """A source whose splits are small enough to hold in memory as validated numpy arrays."""

    @abc.abstractmethod
    def split_arrays(self, split: str) -> Tuple[np.ndarray, np.ndarray]:
        """The whole split, already validated and in canonical dtypes."""

    def examples(self, split: str) -> tf.data.Dataset:
        self.check_split(split)
        return tf.data.Dataset.from_tensor_slices(self.split_arrays(split))

    def num_examples(self, split: str) -> Optional[int]:
        self.check_split(split)
        return int(self.split_arrays(split)[0].shape[0])

    def known_labels(self, split: str) -> Optional[np.ndarray]:
        self.check_split(split)
        return self.split_arrays(split)[1]

    def arrays(self, split: str, max_examples: Optional[int] = None):
        self.check_split(split)
        max_examples = check_int("max_examples", max_examples, minimum=1, allow_none=True)
        images, labels = self.split_arrays(split)
        if max_examples is not None:
            images, labels = images[:max_examples], labels[:max_examples]
        return images, labels
