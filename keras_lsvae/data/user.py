"""User data: ``npz:<path>`` (arrays in one file) and ``folder:<path>`` (one folder per class).

``npz:<path>`` - a NumPy ``.npz`` file with

* ``images``: (N, H, W, C) with C in {1, 3}, uint8 0..255 (divided by 255) or float in [0, 1];
  (N, H, W) gets a channel axis.
* ``labels``: numeric (or bool), never strings (store the names as ``class_names``):

  - int class ids (N,) -> class data. K is the number of ``class_names`` if the file has them,
    else the source option ``num_classes``, else inferred as largest id + 1 **only if every id
    0..K-1 occurs** in some split: a stray label (1000 among ten digits) or sparse ids are a
    `ValueError` naming the file, the field and the ids, and saying how to fix it (renumber
    the labels, or store ``class_names``). Negative, non-integer and non-finite ids are refused
    the same way, and so is an id >= K. ``num_classes`` and ``class_names`` must agree, and K is
    at most `MAX_CLASSES`;
  - a 2-D {0, 1} array (N, A) -> attribute data (one-hot class labels are read as attributes
    too: store ``argmax`` ids instead); every split has the same A;
  - (N, 1) is ambiguous. Rule: if every value in the file's (N, 1) label arrays is 0 or 1 it is
    one binary attribute (like ``swiss_roll`` / ``celeb_a_glasses``; a class model still takes
    it as 2 classes, see `keras_lsvae.data.single_attribute_as_class`); if any value is another
    integer, or another split of the file has (N,) labels, they are class ids, squeezed to (N,).
* optional names, a 1-D array of distinct strings with one name per class / attribute:
  ``class_names`` names the classes of class data; attribute data take ``attribute_names`` (or
  ``class_names``). A class data set's ``attribute_names`` names its extra ``attributes_*``
  arrays (as in a CelebA file) and is not used for the classes.
* any other arrays (``filenames_*``, ``azimuth_*``, ``attributes_*``, ...) are ignored: training
  never reads them; benchmarks and user code can read them with `np.load`. (The options below
  read ``attributes_*`` instead of ``labels_*``.)

Options (in the name after ``?``, ``key=value`` joined by ``&``, see `keras_lsvae.data.pipeline`;
or as keyword arguments in Python): ``num_classes=K`` (above), and two that take the labels from
a file in CelebA's layout, ``attributes_<split>`` (N, 40) {0, 1} with ``attribute_names`` (one
name per column; the whole-file layout has ``attributes`` beside ``images``):

* ``attributes=NAME,NAME,...`` (a list of names in Python): attribute data, the named columns in
  that order, every image of every split; ``npz:celeba_dev.npz?attributes=Eyeglasses,Male``.
* ``subset=glasses|facial_hair|glasses_facial_hair``: paper B §5.2.2's CelebA subsets, built
  per split by the rule of the TFDS ``celeb_a_*`` sources (one implementation,
  `keras_lsvae.data.celeba`): ``glasses`` = every image with ``Eyeglasses`` and twice as many
  without; ``facial_hair`` = every image with a beard (``No_Beard`` = 0), ``Mustache`` or
  ``Goatee`` and as many without; ``glasses_facial_hair`` = the union of both, labelled with both
  (2 attributes, not exclusive). The labels are the derived attributes (names ``glasses``,
  ``facial_hair``); images keep their split order. The images without the attribute are drawn
  with ``subset_seed`` (default 0, independent of the pipeline seed): the same file and seed
  always give the same selection.

An unknown attribute name is a `ValueError` listing the file's attributes; so is a subset whose
CelebA columns the file lacks, a missing ``attributes_<split>`` / ``attribute_names`` field, an
empty subset (a split without any positive), ``attributes=`` with ``subset=`` (they exclude each
other) and ``subset_seed`` without ``subset``. The info name then carries the options
(``npz:PATH?subset=glasses``). Without these options a file is read as before (celeba_dev.npz:
class data, Eyeglasses 0/1 via ``class_names``).

A file that is not an .npz archive (e.g. a ``.npy`` array from `np.save`) is a `ValueError`
that says so; a missing file a `FileNotFoundError` naming it (and its absolute path).

Splits: if the file has ``images_<split>`` / ``labels_<split>`` pairs (e.g. ``images_train``,
``labels_test``) those are the splits; otherwise the whole file is every split (train = test:
state it when you report test numbers). `info` reads the array headers plus the labels and the
names, and refuses a file whose splits cannot feed one model: each image array must have rank 3
or 4, 1 or 3 channels, at least one example, uint8 or float dtype and as many labels; all splits
must have the same channels and (unless ``image_size`` resizes them) the same size. Float pixels
are checked by `NpzSource.prepare` (`keras_lsvae.data.prepare`, which the training loop calls
before writing anything; `load` / `load_arrays` call it too): NaN / inf or values outside [0, 1]
in any split are a `ValueError` naming the file and the field (``images_test``). uint8 pixels
are in range by construction.

``folder:<path>`` - ``path/<class name>/*.{png,jpg,jpeg,bmp,gif}``, like a FaceScrub crop
folder. Class ids are the sorted sub-folder names. Hidden entries (names starting with ``.``:
``.ipynb_checkpoints``, ``.DS_Store``, ``._*`` files) are ignored everywhere, and so are files
that are not images. Every other sub-folder is a class and must hold at least one image: an
empty one (or one holding only folders) is a `ValueError` naming it, because skipping it would
silently shift the ids of the classes after it. Symbolic links to folders are followed one level
only; a broken link, a link back to the data set's folder or above it (a loop) and two names
for one folder are `ValueError` s naming them. If ``path/train`` and ``path/test`` exist,
they are the splits (same class folders; a class may be absent from test); otherwise a fixed
per-class split puts a seeded (seed 0) random 20% of each class's files in "test" and the rest
in "train", independent of the pipeline seed. Images are decoded lazily with
`tf.io.decode_image`; all are converted to the channel count of the first image (or the
``channels`` option, 1 or 3) and resized to ``image_size`` (default: the first image's size).
Data errors name the file and the field: an image that cannot be decoded fails when it is read,
with its path in the error (a `ValueError` from `load_arrays`, a `tf.errors.InvalidArgumentError`
carrying the same text from a `load` pipeline). Decoding goes through `tf.py_function` for
that: in-graph decoding cannot attach the file name to its error; the cost is paid once, before
the uint8 cache. Decoded pixels are uint8, so folder data cannot hold NaN or out-of-range values.
"""

from __future__ import annotations

import os
import re
import zipfile
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from keras_lsvae.data import celeba
from keras_lsvae.data.core import (ATTRIBUTES, CLASS, ArraySource, DatasetInfo, Source,
                                   check_int, is_int, resize_float, resize_uint8, some,
                                   validate_arrays, validate_example)
from keras_lsvae.registry import DATASETS

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SPLITS = ("train", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
FOLDER_TEST_FRACTION = 0.2
FOLDER_SPLIT_SEED = 0


# ----------------------------------------------------------------------------------------------
# npz
# ----------------------------------------------------------------------------------------------


def _npz_header(path: str, key: str) -> Tuple[Tuple[int, ...], np.dtype]:
    """Shape and dtype of one array of an .npz without reading its data."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(member)
    return tuple(shape), np.dtype(dtype)


def _npz_image_field(images: np.ndarray, source: str, field: str) -> np.ndarray:
    """uint8 -> float32 / 255; (N, H, W) -> (N, H, W, 1); other dtypes checked later."""
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    if images.dtype == np.bool_ or not np.issubdtype(images.dtype, np.number):
        raise ValueError(f"{source}: field '{field}' has unsupported dtype {images.dtype} "
                         "(use uint8 0..255 or float in [0, 1])")
    if np.issubdtype(images.dtype, np.integer):
        raise ValueError(f"{source}: field '{field}' has integer dtype {images.dtype}; only uint8 "
                         "(0..255) or float in [0, 1] are unambiguous")
    return images


_NPY_MAGIC = b"\x93NUMPY"


def _check_is_npz(path: str, name: str) -> None:
    """A ValueError saying what the file is, unless it is an .npz (zip) archive."""
    if zipfile.is_zipfile(path):
        return
    with open(path, "rb") as handle:
        is_npy = handle.read(len(_NPY_MAGIC)) == _NPY_MAGIC
    what = ("a .npy file (one array, from np.save)" if is_npy
            else "not an .npz archive (not a zip file)")
    raise ValueError(f"{name}: {path} is {what}; the npz source needs an .npz archive with "
                     "fields 'images' and 'labels', e.g. np.savez(path, images=images, "
                     "labels=labels)")


def _read_field(data, key: str, path: str) -> np.ndarray:
    try:
        return data[key]
    except ValueError as error:  # object arrays need pickle, which is never allowed here
        raise ValueError(f"{path}: field '{key}' cannot be read without pickle ({error}); store "
                         "numeric arrays") from None


def _check_label_dtype(labels: np.ndarray, path: str, key: str) -> None:
    if np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_:
        return
    kind = "string" if labels.dtype.kind in "US" else "non-numeric"
    raise ValueError(f"{path}: field '{key}' has {kind} dtype {labels.dtype}; labels must be "
                     "integer class ids (N,) or a {0, 1} attribute array (N, A): map the names "
                     "to ids and store the names as 'class_names'")


def _label_layout(label_arrays: Dict[str, np.ndarray]) -> Tuple[str, bool]:
    """``(label kind, squeeze (N, 1) to (N,))`` of a file's label arrays (module docstring rule).

    (N, 1) arrays are class ids if any value is not 0/1 or another split has (N,) labels;
    otherwise one binary attribute.
    """
    arrays = list(label_arrays.values())
    two_d = [a for a in arrays if a.ndim == 2]
    if not two_d:
        return CLASS, False  # (N,) ids; other ranks are named by validation
    if len(two_d) < len(arrays):
        return CLASS, True  # other splits have (N,) class ids: (N, 1) ones are ids too
    if any(a.shape[1] != 1 for a in two_d):
        return ATTRIBUTES, False
    values = np.concatenate([a.reshape(-1) for a in two_d]).astype(np.float64)
    if np.all((values == 0) | (values == 1)):
        return ATTRIBUTES, False
    return CLASS, True


#: most classes a data set may declare (``num_classes=``, ``class_names``): names are built
#: eagerly, and no model here takes that many classes.
MAX_CLASSES = 100_000


def _npz_image_header(path: str, key: str) -> Tuple[int, int, int, int]:
    """(N, H, W, C) of the image array ``key`` from its header, or a ValueError naming it: rank
    3 or 4, 1 or 3 channels, at least one example, uint8 or float."""
    shape, dtype = _npz_header(path, key)
    if len(shape) == 3:
        shape = (*shape, 1)
    if len(shape) != 4:
        raise ValueError(f"{path}: field '{key}' must have rank 4 (N, H, W, C) or 3 (N, H, W), "
                         f"got shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{path}: field '{key}' is empty (no examples)")
    if shape[3] not in (1, 3):
        raise ValueError(f"{path}: field '{key}' must have 1 or 3 channels, got {shape[3]} "
                         f"(shape {shape})")
    if dtype == np.bool_ or not np.issubdtype(dtype, np.number):
        raise ValueError(f"{path}: field '{key}' has unsupported dtype {dtype} "
                         "(use uint8 0..255 or float in [0, 1])")
    if np.issubdtype(dtype, np.integer) and dtype != np.uint8:
        raise ValueError(f"{path}: field '{key}' has integer dtype {dtype}; only uint8 "
                         "(0..255) or float in [0, 1] are unambiguous")
    if np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"{path}: field '{key}' has complex dtype {dtype} "
                         "(use uint8 0..255 or float in [0, 1])")
    return tuple(int(s) for s in shape)


def _check_same_image_shape(path: str, shapes: Dict[str, Tuple[int, ...]], resized: bool):
    """Every split must give the model one input shape: the same channels, and the same size
    unless ``image_size`` resizes them all (a ValueError naming the fields otherwise)."""
    def listing(index, unit=""):
        return ", ".join(f"'{key}' {'x'.join(str(s) for s in shape[index])}{unit}"
                         for key, shape in sorted(shapes.items()))
    if len({shape[3] for shape in shapes.values()}) > 1:
        raise ValueError(f"{path}: the splits' images differ in channels ("
                         f"{listing(slice(3, 4), ' channels')}); a model takes one input "
                         "shape: store every split with the same number of channels")
    if not resized and len({shape[1:3] for shape in shapes.values()}) > 1:
        raise ValueError(f"{path}: the splits' images differ in size ({listing(slice(1, 3))});"
                         " a model takes one input shape: store every split at one size or "
                         "pass image_size to resize them all")


def _read_names(data, key: str, path: str) -> Tuple[str, ...]:
    """The names stored as ``key`` (a 1-D array of distinct, non-empty strings)."""
    array = _read_field(data, key, path)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{path}: field '{key}' must be a non-empty 1-D array of names, got "
                         f"shape {array.shape}")
    if array.size > MAX_CLASSES:
        raise ValueError(f"{path}: field '{key}' has {array.size} names, more than the "
                         f"{MAX_CLASSES} classes a data set may have")
    names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
                  for n in array.tolist())
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{path}: field '{key}' names {repeated} more than once; every class "
                         "needs its own name")
    return names


def _class_ids(labels: np.ndarray, path: str, key: str) -> np.ndarray:
    """Labels ``key`` as int64 class ids, or a ValueError naming the offending values: class
    ids are finite, non-negative integers (bool arrays are ids 0 and 1)."""
    if labels.ndim != 1:
        raise ValueError(f"{path}: field '{key}' (class ids) must have rank 1 (N,), got shape "
                         f"{labels.shape}")
    if labels.dtype == np.bool_:
        return labels.astype(np.int64)
    values = labels.astype(np.float64) if not np.issubdtype(labels.dtype, np.integer) else labels
    if not np.issubdtype(values.dtype, np.integer):
        rows = np.flatnonzero(~np.isfinite(values))
        if rows.size:
            raise ValueError(f"{path}: field '{key}' has non-finite values (NaN or inf) in "
                             f"{rows.size} examples, the first at index {int(rows[0])}; class "
                             "ids are integers 0..K-1")
        fractional = values != np.round(values)
        if np.any(fractional):
            raise ValueError(f"{path}: field '{key}' (class ids) has non-integer values "
                             f"{some(values[fractional])}; class ids are integers 0..K-1")
    negative = values < 0
    if np.any(negative):
        raise ValueError(f"{path}: field '{key}' has negative class ids {some(values[negative])}"
                         ", outside [0, K): class ids are integers 0..K-1")
    return values.astype(np.int64)


def _infer_num_classes(ids: Dict[str, np.ndarray], path: str) -> int:
    """K = largest id + 1, but only if every id 0..K-1 occurs in some split: a stray label
    (1000 among ten digits) would otherwise make a 1001-class model, and a huge one hang."""
    present = np.unique(np.concatenate(list(ids.values())))
    count = int(present[-1]) + 1
    if present.size == count:
        return count
    first_missing = int(np.flatnonzero(present != np.arange(present.size))[0])
    beyond, missing = present[present > first_missing], count - present.size
    fields = [key for key, array in ids.items() if np.isin(array, beyond).any()]
    raise ValueError(
        f"{path}: cannot infer the number of classes: {', '.join(repr(f) for f in fields)} "
        f"hold{'s' * (len(fields) == 1)} class ids {some(beyond)}, but {missing} of the ids "
        f"0..{count - 1} never occur{'s' * (missing == 1)} (the first is {first_missing}), so "
        f"K = {count} "
        "would give classes without examples. Class ids must be 0..K-1: renumber the labels "
        "(np.unique(labels, return_inverse=True)), or state K by storing K names as "
        "'class_names' in the npz (or the source option num_classes=K)")


def _check_selection_options(source: str, attributes, subset, subset_seed):
    """None (labels from ``labels_*``), or ``("attributes", names, None)`` /
    ``("subset", subset, seed)``; a ValueError for a bad combination or value. ``attributes``
    is a comma-separated string (as written in a name) or a sequence of names."""
    if attributes is not None and subset is not None:
        raise ValueError(f"{source}: options attributes= and subset= exclude each other: "
                         "subset= chooses its own labels (paper B §5.2.2); give one of them")
    if subset_seed is not None and subset is None:
        raise ValueError(f"{source}: option subset_seed= needs subset= "
                         f"({', '.join(celeba.SUBSETS)})")
    if subset is not None:
        seed = celeba.SELECTION_SEED if subset_seed is None else subset_seed
        seed = check_int("subset_seed", seed, minimum=0, source=source)
        return "subset", celeba.check_subset(subset, source), seed
    if attributes is None:
        return None
    names = attributes.split(",") if isinstance(attributes, str) else attributes
    if isinstance(names, (bytes, dict)) or not isinstance(names, (list, tuple)):
        raise ValueError(f"{source}: option attributes= must be attribute names, as a "
                         f"comma-separated string ('Eyeglasses,Male') or a list of strings, "
                         f"got {attributes!r} ({type(attributes).__name__})")
    names = [name.strip() if isinstance(name, str) else name for name in names]
    if not names or any(not isinstance(name, str) or not name for name in names):
        raise ValueError(f"{source}: option attributes= must be non-empty attribute names, got "
                         f"{attributes!r}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{source}: option attributes= names {', '.join(repeated)} more than "
                         "once")
    return "attributes", tuple(names), None


class NpzSource(ArraySource):
    """Arrays of a user .npz file (see the module docstring for the layout).

    Everything but the pixel values is checked when the source is built (so `info` refuses a
    bad file): every split's image header (rank, channels, dtype, at least one example, one
    shape for all splits), the label arrays (dtype, count, finite non-negative integer class
    ids, dense enough to infer K, or {0, 1} attributes) and the names. Float pixels (finite,
    in [0, 1]) are checked by `prepare`, which the training loop calls before it writes a file;
    uint8 pixels need no check.
    """

    def __init__(self, path: str, data_dir: Optional[str] = None, image_size=None,
                 num_classes: Optional[int] = None, attributes=None,
                 subset: Optional[str] = None, subset_seed: Optional[int] = None):
        del data_dir
        self.path = os.path.expanduser(path)
        if not os.path.isfile(self.path):
            where = os.path.abspath(self.path)
            raise FileNotFoundError(
                f"npz:{path}: file not found"
                + (f" (looked for {where}, from the working directory {os.getcwd()})"
                   if where != self.path else "")
                + "; an npz data set is a file written by np.savez(path, images_train=..., "
                "labels_train=..., images_test=..., labels_test=..., class_names=...) "
                "(layout: keras_lsvae.data.user)")
        _check_is_npz(self.path, f"npz:{path}")
        num_classes = check_int("num_classes", num_classes, minimum=1, maximum=MAX_CLASSES,
                                allow_none=True, source=f"npz:{path}")
        # attributes= / subset=: labels are columns of the attributes_* arrays (module docstring).
        self._selection = _check_selection_options(f"npz:{path}", attributes, subset,
                                                   subset_seed)
        label_prefix = "labels" if self._selection is None else "attributes"
        self.image_size = image_size
        self._cache: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
        with np.load(self.path, allow_pickle=False) as data:
            keys = set(data.files)
            split_names = sorted(k[len("images_"):] for k in keys
                                 if k.startswith("images_") and len(k) > len("images_"))
            needed_by = ("" if self._selection is None else
                         f"; option {self._selection[0]}= reads the attribute columns of "
                         "attributes_<split> (or 'attributes' beside 'images')")
            if split_names:
                self.splits = tuple(split_names)
                self._keys = {s: (f"images_{s}", f"{label_prefix}_{s}") for s in split_names}
                for s, (_, label_key) in self._keys.items():
                    if label_key not in keys:
                        raise ValueError(f"{self.path}: field '{label_key}' is missing "
                                         f"(the file has 'images_{s}'){needed_by}")
            else:
                for key in ("images", label_prefix):
                    if key not in keys:
                        raise ValueError(f"{self.path}: field '{key}' is missing; the file has "
                                         f"{sorted(keys)}{needed_by}")
                self.splits = DEFAULT_SPLITS
                self._keys = {s: ("images", label_prefix) for s in DEFAULT_SPLITS}
            label_arrays = {key: _read_field(data, key, self.path)
                            for _, key in self._keys.values()}
            names = {key: _read_names(data, key, self.path)
                     for key in ("class_names", "attribute_names") if key in keys}
        # Other arrays (filenames_*, azimuth_*, attributes_*, ...) are never read here.
        for key, array in label_arrays.items():
            _check_label_dtype(array, self.path, key)
        shapes = {}
        for image_key, label_key in dict(self._keys.values()).items():
            shapes[image_key] = _npz_image_header(self.path, image_key)
            count = int(label_arrays[label_key].shape[0]) if label_arrays[label_key].ndim else 0
            if count != shapes[image_key][0]:
                raise ValueError(f"{self.path}: field '{label_key}' has {count} entries but "
                                 f"'{image_key}' has {shapes[image_key][0]}")
        _check_same_image_shape(self.path, shapes, resized=image_size is not None)
        self._float_images = [key for key in shapes
                              if _npz_header(self.path, key)[1] != np.uint8]
        self._rows: Dict[str, np.ndarray] = {}  # label key -> selected rows (attributes=/subset=)
        if self._selection is not None:
            self.label_kind = ATTRIBUTES
            self._labels, self._rows, self.class_names = self._select(
                label_arrays, names.get("attribute_names"))
            self.num_classes = len(self.class_names)
            if num_classes is not None and num_classes != self.num_classes:
                raise ValueError(f"{self.path}: num_classes={num_classes}, but option "
                                 f"{self._selection[0]}= gives {self.num_classes} attributes "
                                 f"({', '.join(self.class_names)})")
        else:
            self.label_kind, self._squeeze_labels = _label_layout(label_arrays)
        if self._selection is None and self.label_kind == ATTRIBUTES:
            self._labels = self._attribute_labels(label_arrays, num_classes)
            self.num_classes = int(next(iter(self._labels.values())).shape[1])
            field = "attribute_names" if "attribute_names" in names else "class_names"
            self.class_names = self._named(names.get(field), field, "attribute")
        elif self._selection is None:
            self._labels = {key: _class_ids(a[:, 0] if self._squeeze_labels and a.ndim == 2
                                            and a.shape[1] == 1 else a, self.path, key)
                            for key, a in label_arrays.items()}
            # 'attribute_names' names the attributes_* arrays of a class data set (CelebA).
            self.num_classes = self._count_classes(num_classes, names.get("class_names"))
            self.class_names = self._named(names.get("class_names"), "class_names", "class")
        first = shapes[self._keys[self.splits[0]][0]]
        self.input_shape = (*(image_size or first[1:3]), first[3])

    def _select(self, attribute_arrays, names):
        """``(labels, rows, names)`` for option ``attributes=`` or ``subset=``: per label key,
        the float32 (n, A) labels and the int64 rows of the split they belong to (all rows for
        ``attributes=``; paper B §5.2.2's subset for ``subset=``, `keras_lsvae.data.celeba`)."""
        option, value, seed = self._selection
        field = next(iter(attribute_arrays))
        if names is None:
            raise ValueError(f"{self.path}: option {option}= needs the field 'attribute_names' "
                             f"(one name per column of '{field}'), which the file does not have")
        for key, array in attribute_arrays.items():
            if array.ndim != 2 or array.shape[1] != len(names):
                raise ValueError(f"{self.path}: field '{key}' must have shape (N, "
                                 f"{len(names)}) (one column per name in 'attribute_names'), "
                                 f"got {array.shape}")
            bad = ~np.isin(array, (0, 1))
            if np.any(bad):
                raise ValueError(f"{self.path}: field '{key}' (attributes) has values other "
                                 f"than 0 and 1: {some(array[bad])}")
        wanted = value if option == "attributes" else celeba.SOURCE_ATTRIBUTES
        unknown = [name for name in wanted if name not in names]
        if unknown:
            what = (f"unknown attribute{'s' * (len(unknown) > 1)} {', '.join(unknown)} "
                    "(option attributes=)" if option == "attributes" else
                    f"subset={value} needs the attributes {', '.join(wanted)}, but "
                    f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not among them")
            raise ValueError(f"{self.path}: {what}; the file's attributes ('attribute_names') "
                             f"are: {', '.join(names)}")
        columns = [names.index(name) for name in wanted]
        labels, rows = {}, {}
        for key, array in attribute_arrays.items():
            chosen = array[:, columns]
            if option == "attributes":
                rows[key] = np.arange(array.shape[0], dtype=np.int64)
                labels[key] = chosen.astype(np.float32)
                continue
            rows[key], labels[key] = celeba.selection(
                dict(zip(wanted, chosen.T)), value, seed=seed, source=f"npz:{self.path}")
            if rows[key].size == 0:
                raise ValueError(f"{self.path}: subset={value} of field '{key}' is empty (no "
                                 f"image has {' or '.join(celeba.SUBSET_ATTRIBUTES[value])})")
        return labels, rows, (tuple(value) if option == "attributes"
                              else celeba.SUBSET_ATTRIBUTES[value])

    def _attribute_labels(self, label_arrays, num_classes):
        widths = {key: a.shape[1] for key, a in label_arrays.items()}
        if len(set(widths.values())) > 1:
            listing = ", ".join(f"'{key}' {width}" for key, width in sorted(widths.items()))
            raise ValueError(f"{self.path}: the label arrays differ in their number of "
                             f"attributes ({listing}); every split needs the same attributes")
        width = next(iter(widths.values()))
        if num_classes is not None and num_classes != width:
            raise ValueError(f"{self.path}: num_classes={num_classes}, but the labels are "
                             f"{{0, 1}} attribute vectors of {width} attributes")
        for key, array in label_arrays.items():
            values = array.astype(np.float64)
            bad = ~((values == 0) | (values == 1))
            if np.any(bad):
                raise ValueError(f"{self.path}: field '{key}' (attributes) has values other "
                                 f"than 0 and 1: {some(values[bad])}")
        return label_arrays

    def _count_classes(self, num_classes, class_names):
        """K: ``num_classes=`` or the number of 'class_names' (which must agree), else inferred
        from dense labels; every label must be below it."""
        if num_classes is not None and class_names is not None and num_classes != len(
                class_names):
            raise ValueError(f"{self.path}: num_classes={num_classes}, but field 'class_names' "
                             f"has {len(class_names)} names")
        if num_classes is not None:
            count, origin = num_classes, f"num_classes={num_classes}"
        elif class_names is not None:
            count, origin = len(class_names), f"field 'class_names' has {len(class_names)} names"
        else:
            return _infer_num_classes(self._labels, self.path)
        for key, ids in self._labels.items():
            outside = ids[ids >= count]
            if outside.size:
                raise ValueError(f"{self.path}: field '{key}' has class ids {some(outside)} "
                                 f"outside [0, {count}) for {count} classes ({origin})")
        return count

    def _named(self, names, field, kind):
        if names is None:
            return tuple((f"attribute_{i}" if kind == "attribute" else str(i))
                         for i in range(self.num_classes))
        if len(names) != self.num_classes:
            raise ValueError(f"{self.path}: field '{field}' has {len(names)} names, but the "
                             f"labels have {self.num_classes} "
                             f"{kind}{'es' if kind == 'class' else 's'}: store one name per "
                             f"{kind}")
        return tuple(names)

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name=f"npz:{self.path}{self._name_options}",
                           num_classes=self.num_classes,
                           label_kind=self.label_kind, input_shape=tuple(self.input_shape),
                           is_image=True, class_names=self.class_names, splits=self.splits)

    @property
    def _name_options(self) -> str:
        """The options that change the labels, as written in a name (``?subset=glasses``)."""
        if self._selection is None:
            return ""
        option, value, seed = self._selection
        if option == "attributes":
            return f"?attributes={','.join(value)}"
        default = seed == celeba.SELECTION_SEED
        return f"?subset={value}" + ("" if default else f"&subset_seed={seed}")

    def prepare(self, download: bool = True) -> None:
        """Checks the pixels of every split stored as float (finite, in [0, 1]): a bad split
        is a ValueError naming the file and its field before anything is built or written."""
        del download
        for split in self.splits:
            if self._keys[split][0] in self._float_images:
                self.split_arrays(split)

    def check_split(self, split: str) -> None:
        if split not in self._keys:
            raise ValueError(f"{self.path}: no split {split!r}; the file has splits "
                             f"{', '.join(self.splits)}")

    def split_arrays(self, split: str):
        self.check_split(split)
        if split not in self._cache:
            image_key, label_key = self._keys[split]
            same = [s for s, keys in self._keys.items() if keys == self._keys[split]
                    and s in self._cache]
            if same:  # the whole file is every split
                self._cache[split] = self._cache[same[0]]
                return self._cache[split]
            with np.load(self.path, allow_pickle=False) as data:
                images = _read_field(data, image_key, self.path)
            if label_key in self._rows:  # attributes= / subset=: the selected rows only
                images = images[self._rows[label_key]]
            images = _npz_image_field(images, self.path, image_key)
            labels = self._labels[label_key]
            try:
                images, labels = validate_arrays(images, labels, num_classes=self.num_classes,
                                                 label_kind=self.label_kind, source=self.path)
            except ValueError as error:
                # Name the file's own field when it is split-specific (images_train, ...).
                message = str(error).replace("field 'images'", f"field '{image_key}'")
                message = message.replace("field 'labels'", f"field '{label_key}'")
                message = message.replace("but 'images'", f"but '{image_key}'")
                raise ValueError(message) from None
            if self.image_size is not None:
                images = resize_float(images, self.image_size)
            self._cache[split] = (images, labels)
        return self._cache[split]


def _npz_factory(path: Optional[str] = None, data_dir: Optional[str] = None, image_size=None,
                 num_classes: Optional[int] = None, attributes=None,
                 subset: Optional[str] = None, subset_seed: Optional[int] = None) -> NpzSource:
    if path is None:
        raise ValueError("npz needs a file: use the name 'npz:/path/to/data.npz'")
    return NpzSource(path, data_dir=data_dir, image_size=image_size, num_classes=num_classes,
                     attributes=attributes, subset=subset, subset_seed=subset_seed)


DATASETS.register("npz")(_npz_factory)


# ----------------------------------------------------------------------------------------------
# folder
# ----------------------------------------------------------------------------------------------


def _decode_file(path: str, channels: Optional[int], source: str) -> tf.Tensor:
    """Decodes one image file eagerly; a ValueError naming the file if it is not an image."""
    try:
        return tf.io.decode_image(tf.io.read_file(path), channels=channels or 0,
                                  expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
        raise ValueError(f"{source}: field 'images': cannot decode image file {path} "
                         f"({error.message.splitlines()[0]})") from None


# How a ValueError raised inside `tf.py_function` reaches the consumer of a tf.data pipeline.
_PY_FUNCTION_ERROR = re.compile(r"ValueError: ([^\n]*)")


def _visible(folder: str) -> List[str]:
    """Sorted entries of ``folder`` without hidden ones (``.ipynb_checkpoints``, ``.DS_Store``,
    macOS ``._*`` files)."""
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def _class_folders(root: str) -> List[str]:
    """Names of the class folders in ``root``: its visible sub-folders (files beside them are
    ignored). A broken symbolic link, a link back to ``root`` or above it (a loop: it is never
    followed) and two names for one folder are ValueErrors naming them."""
    real_root = os.path.realpath(root)
    names, seen = [], {}
    for name in _visible(root):
        path = os.path.join(root, name)
        if os.path.islink(path) and not os.path.exists(path):
            raise ValueError(f"{root}: field 'classes': {path} is a broken symbolic link (or a "
                             "link loop): remove it or point it at a folder of images")
        if not os.path.isdir(path):
            continue
        real = os.path.realpath(path)
        if real == real_root or real_root.startswith(real.rstrip(os.sep) + os.sep):
            raise ValueError(f"{root}: field 'classes': {path} links back to {real}, which "
                             "contains it (a symbolic link loop): remove the link")
        if real in seen:
            raise ValueError(f"{root}: field 'classes': class folders '{seen[real]}' and "
                             f"'{name}' are the same folder ({real}): each class needs its own")
        seen[real] = name
        names.append(name)
    return names


def _image_files(folder: str) -> List[str]:
    """Sorted paths of the visible image files in ``folder`` (by extension; other files are
    ignored); a ValueError if there is none (a class folder holds at least one image) or if an
    image name is a broken link."""
    files = []
    for name in _visible(folder):
        path = os.path.join(folder, name)
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            continue
        if os.path.islink(path) and not os.path.exists(path):
            raise ValueError(f"{folder}: field 'images': {path} is a broken symbolic link")
        if os.path.isfile(path):
            files.append(path)
    if not files:
        nested = any(os.path.isdir(os.path.join(folder, n)) for n in _visible(folder))
        hint = (" It holds only sub-folders: the layout is <root>/<class>/<images> or "
                "<root>/train/<class>/<images> with <root>/test/<class>/<images>." if nested
                else "")
        raise ValueError(f"{folder}: field 'classes': class folder "
                         f"'{os.path.basename(folder)}' has no image files "
                         f"({', '.join(IMAGE_EXTENSIONS)}); every visible sub-folder is a "
                         "class and needs at least one image (skipping it would shift the ids "
                         "of the classes after it): add images or remove the folder (hidden "
                         f"entries such as .ipynb_checkpoints are ignored).{hint}")
    return files


class FolderSource(Source):
    """Images in one sub-folder per class (see the module docstring)."""

    def __init__(self, path: str, data_dir: Optional[str] = None, image_size=None,
                 channels: Optional[int] = None):
        del data_dir
        self.root = os.path.expanduser(path)
        if not os.path.isdir(self.root):
            where = os.path.abspath(self.root)
            raise FileNotFoundError(
                f"folder:{path}: folder not found"
                + (f" (looked for {where}, from the working directory {os.getcwd()})"
                   if where != self.root else "")
                + "; a folder data set is <root>/<class name>/<image files>, or "
                "<root>/train/<class name>/... with <root>/test/<class name>/...")
        if channels is not None and not (is_int(channels) and channels in (1, 3)):
            raise ValueError(f"{self.root}: option 'channels' must be 1 or 3, got {channels!r}")
        has_split_folders = all(os.path.isdir(os.path.join(self.root, s)) for s in DEFAULT_SPLITS)
        class_root = os.path.join(self.root, "train") if has_split_folders else self.root
        self.class_names = tuple(_class_folders(class_root))
        if not self.class_names:
            raise ValueError(f"{class_root}: field 'classes': no class sub-folders found "
                             "(expected <root>/<class name>/<image files>)")
        self.files: Dict[str, Tuple[List[str], List[int]]] = {}
        if has_split_folders:
            for split in DEFAULT_SPLITS:
                split_root = os.path.join(self.root, split)
                unknown = set(_class_folders(split_root)) - set(self.class_names)
                if unknown:
                    raise ValueError(f"{split_root}: field 'classes': class folders "
                                     f"{sorted(unknown)} are not in {class_root}")
                self.files[split] = self._list(split_root)
        else:
            files, labels = self._list(self.root)
            self.files = self._fixed_split(files, labels)
        first_file = next((f[0][0] for f in self.files.values() if f[0]), None)
        if first_file is None:
            raise ValueError(f"{self.root}: field 'images': no image files "
                             f"({', '.join(IMAGE_EXTENSIONS)}) in the class folders")
        first = _decode_file(first_file, None, self.root)
        first_channels = int(first.shape[-1])
        self.channels = channels or (3 if first_channels >= 3 else 1)
        self.image_size = tuple(image_size or first.shape[:2])

    def _list(self, root: str) -> Tuple[List[str], List[int]]:
        files, labels = [], []
        for class_id, name in enumerate(self.class_names):
            folder = os.path.join(root, name)
            if os.path.isdir(folder):
                found = _image_files(folder)  # a ValueError if it has none
                files += found
                labels += [class_id] * len(found)
        return files, labels

    @staticmethod
    def _fixed_split(files, labels):
        """Per class, a seeded random 20% (rounded) to test; order within a split: sorted paths."""
        labels = np.asarray(labels, dtype=np.int64)
        rng = np.random.default_rng(FOLDER_SPLIT_SEED)
        is_test = np.zeros(labels.size, dtype=bool)
        for class_id in np.unique(labels):
            members = np.flatnonzero(labels == class_id)
            count = int(round(FOLDER_TEST_FRACTION * members.size))
            is_test[rng.choice(members, size=count, replace=False)] = True
        return {split: ([f for f, t in zip(files, is_test) if t == want],
                        [int(y) for y, t in zip(labels, is_test) if t == want])
                for split, want in (("train", False), ("test", True))}

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name=f"folder:{self.root}", num_classes=len(self.class_names),
                           label_kind=CLASS, input_shape=(*self.image_size, self.channels),
                           is_image=True, class_names=self.class_names, splits=DEFAULT_SPLITS)

    def num_examples(self, split: str) -> Optional[int]:
        self.check_split(split)
        return len(self.files[split][0])

    def known_labels(self, split: str) -> Optional[np.ndarray]:
        self.check_split(split)
        return np.asarray(self.files[split][1], dtype=np.int32)

    def arrays(self, split: str, max_examples: Optional[int] = None):
        try:
            return super().arrays(split, max_examples=max_examples)
        except tf.errors.InvalidArgumentError as error:
            found = _PY_FUNCTION_ERROR.search(error.message)
            if found is None:
                raise
            raise ValueError(found.group(1)) from None  # the file's own error, see `decode`

    def examples(self, split: str) -> tf.data.Dataset:
        self.check_split(split)
        files, labels = self.files[split]
        if not files:
            raise ValueError(f"{self.root}: field 'images': split {split!r} has no image files")
        meta = self.info
        channels, image_size = self.channels, self.image_size

        def decode_eagerly(path):
            return _decode_file(path.numpy().decode(), channels, self.root)

        def decode(path, label):
            # uint8, converted to `channels`; eager so a bad file's error can name it.
            image = tf.py_function(decode_eagerly, [path], tf.uint8)
            image.set_shape((None, None, channels))
            image = resize_uint8(image, image_size)
            image.set_shape(meta.input_shape)
            return validate_example(image, label, meta, self.root)

        ds = tf.data.Dataset.from_tensor_slices(
            (tf.constant(files), tf.constant(labels, dtype=tf.int32)))
        return ds.map(decode, num_parallel_calls=AUTOTUNE)


def _folder_factory(path: Optional[str] = None, **options) -> FolderSource:
    if path is None:
        raise ValueError("folder needs a directory: use the name 'folder:/path/to/images'")
    return FolderSource(path, **options)


DATASETS.register("folder")(_folder_factory)
