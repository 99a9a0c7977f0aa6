"""TensorFlow Datasets sources: mnist, fashion_mnist, cifar10, svhn_cropped (alias svhn), celeb_a.

Preparation (`prepare_tfds`, called by `keras_lsvae.data.prepare` / `load` / `load_arrays` before
anything is read or built): if the data set is not prepared in the data directory, TFDS
downloads and prepares it as it normally does (with its progress bar), unless

* ``download=False`` (``--nodownload``), or
* there is no network: before downloading, one TCP connection to the download hosts (TFDS's GCS
  mirror and the data set's own URLs, or the proxy for them) is tried with a
  `PROBE_TIMEOUT_SECONDS` timeout. Without it TFDS would retry every file 10 times with
  exponential back-off, about 3.5 minutes before the same failure. A download that fails later
  with a network error (requests / socket / urllib errors, TFDS's `DownloadError`) is treated
  the same way.

Then a `FileNotFoundError` (chained from the network error, if any) names the resolved data
directory and says how to prepare the data elsewhere. After a failed download the temporary
files of that attempt (``*.tmp.<hex>`` downloads, ``incomplete.*`` data set folders) and the empty
folders it created are removed, so the next attempt starts clean; completely downloaded files
are kept for TFDS to reuse. The data directory is TFDS's own default (``~/tensorflow_datasets`` or
``$TFDS_DATA_DIR``) unless ``data_dir`` is given. Reading itself never downloads.

Data prepared by `tfds.testing.mock_data` counts as prepared (whatever ``as_dataset`` can read),
so tests need neither files nor network. Metadata (`info`) is static: it needs neither.

Image sizes: the conv networks take image sides 4·2^n (8, 16, 32, 64). Sources whose native size
is not of that form get `DEFAULT_RESIZE` (32x32) as their default ``image_size``: ``mnist`` and
``fashion_mnist`` (native 28x28). An explicit ``image_size`` wins (``image_size=28`` gives the
native images, which the conv networks reject with an error naming ``--image_size=32``).

Images stay uint8 inside the pipeline (cached as uint8, divided by 255 after the cache), which
also makes them in range by construction; labels are checked per element with `tf.debugging`.
Files are read in their fixed order (``shuffle_files=False``) so every selection is deterministic.

CelebA attribute subsets - CSVAE §5.2.2 (Klys et al., NeurIPS 2018), applied "independently to
each of the training, validation and test split"; the rule is `keras_lsvae.data.celeba`, shared
with the npz source (``npz:PATH?subset=glasses`` on a file with CelebA's ``attributes_*``):

* ``glasses``: "all images labelled with the attribute glasses and twice as many images
  without" - attribute ``Eyeglasses``; 1 label.
* ``facial_hair``: "all images labelled with at least one of the attributes beard, mustache,
  goatee and an equal number of images without" - beard is TFDS's ``not No_Beard``; 1 label.
* ``glasses_facial_hair``: "the images from the previous two subsets along with the binary labels
  for both attributes" - the union of both selections, 2 labels (glasses, facial_hair).

The images without the attribute are drawn uniformly at random with a fixed seed (option
``subset_seed``, default 0, independent of the pipeline seed) and kept in split order. Choosing
needs the attribute counts of the split first: one pass over the split's records with image
decoding skipped.

Crop "as in [14]" (Larsen et al. 2016, "Autoencoding beyond pixels"; their released code crops the
aligned 218x178 image to rows 40..188, columns 15..163, a 148x148 square around the face) then
resize to 64x64 (bilinear with antialiasing; Larsen smooth before resizing for the same reason).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import urllib.parse
import urllib.request
from typing import Dict, Iterable, List, Optional, Set, Tuple

import numpy as np
import tensorflow as tf

from keras_lsvae.data import celeba
from keras_lsvae.data.core import (ATTRIBUTES, CLASS, DatasetInfo, Source, check_int,
                                   resize_uint8, validate_example)
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
CELEB_A_SELECTION_SEED = celeba.SELECTION_SEED
_CELEB_A_ATTRIBUTES_READ = celeba.SOURCE_ATTRIBUTES

#: Default size of TFDS images whose native sides the conv networks cannot take.
DEFAULT_RESIZE = (32, 32)

# ----------------------------------------------------------------------------------------------
# Preparation: download unless told not to or offline, else a FileNotFoundError that says how
# ----------------------------------------------------------------------------------------------

#: TCP connect timeout of the network probe, per host.
PROBE_TIMEOUT_SECONDS = 5.0
#: TFDS downloads data sets it hosts itself (``gs://tfds-data``) from here.
TFDS_MIRROR_URL = "https://storage.googleapis.com/tfds-data/"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
# Names TFDS gives to the pieces of an unfinished attempt (downloads: "<name>.tmp.<32 hex>";
# data set folders: "incomplete.<suffix>_<version>").
_PARTIAL_NAME = re.compile(r"\.tmp\.[0-9a-f]{32}$|^incomplete\.")

DOWNLOAD_DISABLED = "downloading is switched off (--nodownload, download=False in Python)"
NOT_PREPARED = "it was read without keras_lsvae.data.prepare, which downloads it"


def missing_data_message(name: str, tfds_name: str, data_dir: str, reason: str,
                         error: Optional[BaseException] = None) -> str:
    """What is missing, why it was not downloaded, and how to prepare it.

    Args:
        data_dir: the resolved TFDS data directory (not None: the user needs the real path).
        reason: why it is not prepared now, e.g. `DOWNLOAD_DISABLED`.
        error: the underlying TFDS / network error, quoted at the end.
    """
    message = (
        f"{name}: TFDS data set '{tfds_name}' is not prepared in {data_dir}, and {reason}.\n"
        "To prepare it, run with network access (and without --nodownload) to let TFDS "
        f"download it into {data_dir}, or on a machine with network run\n"
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
    if error is not None:
        message += f"\n(Cause: {type(error).__name__}: {error})"
    return message


def _builder(tfds_name: str, data_dir: Optional[str]):
    import tensorflow_datasets as tfds

    return tfds.builder(tfds_name, data_dir=data_dir)


def _is_readable(builder) -> bool:
    """Prepared on disk, or served by `tfds.testing.mock_data` (there `is_prepared()` stays False
    although `as_dataset` works). On a real unprepared folder `as_dataset` fails at once."""
    if builder.is_prepared():
        return True
    try:
        builder.as_dataset(split="train")  # every TFDS set used here has a train split
    except Exception:  # noqa: BLE001 - any failure means "cannot be read as it is"
        return False
    return True


def _download_urls(builder) -> List[str]:
    """URLs TFDS may fetch for `builder`: its mirror, then the data set's own files."""
    try:
        own = list(builder.url_infos or ())
    except Exception:  # noqa: BLE001 - the URL list is optional information for the probe
        # (it needs the checksums file; an incomplete TFDS installation cannot read it)
        own = []
    return [TFDS_MIRROR_URL, *own]


def _endpoints(urls: Iterable[str]) -> List[Tuple[str, int]]:
    """Distinct (host, port) to connect to for `urls`: the proxy where one applies, as requests
    (which TFDS downloads with) would use it."""
    proxies = urllib.request.getproxies()
    endpoints: List[Tuple[str, int]] = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        proxy = proxies.get(parts.scheme)
        if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
            parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if not parts.hostname:
            continue
        endpoint = (parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme, 443))
        if endpoint not in endpoints:
            endpoints.append(endpoint)
    return endpoints


def network_error(urls: Iterable[str], timeout: float = PROBE_TIMEOUT_SECONDS
                  ) -> Optional[OSError]:
    """None if one of the hosts of `urls` (or their proxy) accepts a TCP connection, else the
    error of the last attempt (`socket.gaierror` when names do not resolve, as here)."""
    error: Optional[OSError] = None
    for host, port in _endpoints(urls):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except OSError as attempt_error:
            error = attempt_error
    return error


def _network_errors() -> Tuple[type, ...]:
    """Exception types that mean "the download could not reach its server"."""
    import urllib.error

    import requests
    import tensorflow_datasets as tfds

    return (requests.exceptions.RequestException, urllib.error.URLError, ConnectionError,
            TimeoutError, socket.gaierror, socket.herror, tfds.download.DownloadError)


def _entries(root: str, tfds_name: str) -> Set[str]:
    """Paths a download of `tfds_name` may create: the data set folder (whole tree; it holds
    only this data set), ``downloads/`` two levels deep (the per-file temporary folders), and
    `root` itself."""
    found = {root} if os.path.isdir(root) else set()
    for base, max_depth in ((os.path.join(root, tfds_name), None),
                            (os.path.join(root, "downloads"), 2)):
        if os.path.isdir(base):
            found.add(base)
        for folder, dirs, files in os.walk(base):
            found.update(os.path.join(folder, name) for name in dirs + files)
            depth = 0 if folder == base else os.path.relpath(folder, base).count(os.sep) + 1
            if max_depth is not None and depth + 1 >= max_depth:
                dirs[:] = []  # deeper entries share the fate of their listed parent
    return found


def _remove_partial_files(root: str, tfds_name: str, before: Set[str]) -> None:
    """Removes what a failed attempt left that a later attempt must not see: TFDS's temporary
    downloads / incomplete folders, then the folders it created that are now empty."""
    for path in sorted(_entries(root, tfds_name) - before, key=len, reverse=True):  # deepest first
        if not os.path.lexists(path):
            continue  # inside a temporary folder removed just before
        if _PARTIAL_NAME.search(os.path.basename(path)):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
        elif os.path.isdir(path) and not os.listdir(path):
            os.rmdir(path)


def prepare_tfds(name: str, tfds_name: str, data_dir: Optional[str], download: bool) -> None:
    """Makes TFDS data set `tfds_name` readable, downloading it if allowed and possible.

    Raises:
        FileNotFoundError: not prepared and ``download=False``, no network, or the download failed
            with a network error; the message names the resolved data directory and the commands
            that prepare it.
    """
    builder = _builder(tfds_name, data_dir)
    if _is_readable(builder):
        return
    root = os.fspath(builder.data_dir_root)
    if not download:
        raise FileNotFoundError(missing_data_message(name, tfds_name, root, DOWNLOAD_DISABLED))
    urls = _download_urls(builder)
    offline = network_error(urls)
    if offline is not None:
        hosts = ", ".join(host for host, _ in _endpoints(urls))
        raise FileNotFoundError(missing_data_message(
            name, tfds_name, root, f"there is no network to download it ({hosts}: no connection)",
            offline)) from offline
    before = _entries(root, tfds_name)
    try:
        builder.download_and_prepare()
    except BaseException as error:  # also Ctrl-C: never leave a half-written attempt behind
        _remove_partial_files(root, tfds_name, before)
        if isinstance(error, _network_errors()):
            raise FileNotFoundError(missing_data_message(
                name, tfds_name, root, "the download failed with a network error",
                error)) from error
        raise


def tfds_load(name: str, tfds_name: str, split: str, data_dir: Optional[str], decoders=None):
    """`tfds.load` of prepared data only (never downloads: `prepare_tfds` does that first);
    missing data -> `FileNotFoundError` with instructions."""
    import tensorflow_datasets as tfds

    try:
        return tfds.load(tfds_name, split=split, data_dir=data_dir, download=False,
                         shuffle_files=False, decoders=decoders)
    except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError) as error:
        # TFDS signals "not prepared" with an AssertionError ("could not find data in ...").
        root = os.fspath(_builder(tfds_name, data_dir).data_dir_root)
        raise FileNotFoundError(
            missing_data_message(name, tfds_name, root, NOT_PREPARED, error)) from error


def conv_friendly(side: int) -> bool:
    """True for image sides 4·2^n, n >= 1 (8, 16, 32, 64, ...): what the conv networks take."""
    quarter, remainder = divmod(int(side), 4)
    return remainder == 0 and quarter >= 2 and quarter & (quarter - 1) == 0


def default_image_size(native_shape: Tuple[int, ...]) -> Optional[Tuple[int, int]]:
    """None (keep the native size) if the conv networks take it, else `DEFAULT_RESIZE`."""
    return None if all(conv_friendly(side) for side in native_shape[:2]) else DEFAULT_RESIZE


class TfdsClassSource(Source):
    """A TFDS image classification data set with ``image`` (uint8) and ``label`` features.

    ``image_size=None`` means `default_image_size` of the native shape (32x32 for 28x28 data).
    """

    def __init__(self, name: str, tfds_name: str, image_shape: Tuple[int, int, int],
                 class_names: Tuple[str, ...], data_dir: Optional[str] = None, image_size=None):
        self.name = name
        self.tfds_name = tfds_name
        self.native_shape = tuple(image_shape)
        self.class_names = tuple(class_names)
        self.data_dir = data_dir
        self.image_size = image_size or default_image_size(self.native_shape)

    @property
    def info(self) -> DatasetInfo:
        height, width = self.image_size or self.native_shape[:2]
        return DatasetInfo(name=self.name, num_classes=len(self.class_names), label_kind=CLASS,
                           input_shape=(height, width, self.native_shape[2]), is_image=True,
                           class_names=self.class_names, splits=("train", "test"))

    def prepare(self, download: bool = True) -> None:
        prepare_tfds(self.name, self.tfds_name, self.data_dir, download)

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

    size = default_image_size(image_shape)
    resized = f", resized to {size[0]}x{size[1]} by default" if size else ""
    factory.__doc__ = f"TFDS '{tfds_name}' {image_shape}{resized}, {len(class_names)} classes."
    for name in names:
        DATASETS.register(name)(factory)


_register_class_source(("mnist",), "mnist", (28, 28, 1), DIGIT_CLASSES)
_register_class_source(("fashion_mnist",), "fashion_mnist", (28, 28, 1), FASHION_MNIST_CLASSES)
_register_class_source(("cifar10",), "cifar10", (32, 32, 3), CIFAR10_CLASSES)
_register_class_source(("svhn_cropped", "svhn"), "svhn_cropped", (32, 32, 3), DIGIT_CLASSES)


# ----------------------------------------------------------------------------------------------
# CelebA attribute subsets (CSVAE §5.2.2)
# ----------------------------------------------------------------------------------------------


# The subset rule itself is `keras_lsvae.data.celeba` (shared with ``npz:PATH?subset=...``);
# these names are kept for code that imported them from here.
CELEB_A_ATTRIBUTES = celeba.DERIVED_ATTRIBUTES
NEGATIVES_PER_POSITIVE = celeba.NEGATIVES_PER_POSITIVE
CELEB_A_SUBSET_ATTRIBUTES = celeba.SUBSET_ATTRIBUTES
CELEB_A_SUBSETS = celeba.SUBSETS


def celeb_a_selection(attributes: Dict[str, np.ndarray], subset: str,
                      seed: int = CELEB_A_SELECTION_SEED) -> Tuple[np.ndarray, np.ndarray]:
    """Indices into the split and their float32 labels (n, A) for a CSVAE §5.2.2 subset
    (`keras_lsvae.data.celeba.selection`).

    Args:
        attributes: boolean arrays (N,) of the split for the TFDS names ``Eyeglasses``,
            ``No_Beard``, ``Mustache``, ``Goatee``.
        subset: one of `CELEB_A_SUBSETS`.
        seed: seed of the draw of the images without the attribute.
    """
    return celeba.selection(attributes, subset, seed=seed, source="celeb_a")


class CelebASubsetSource(Source):
    """CelebA attribute subset, 64x64x3 (or `image_size`), float32 attribute labels."""

    def __init__(self, data_dir: Optional[str] = None, image_size=None, subset: str = "glasses",
                 name: str = "celeb_a", subset_seed: int = CELEB_A_SELECTION_SEED):
        celeba.check_subset(subset, name)
        self.name = name
        self.subset = subset
        self.subset_seed = check_int("subset_seed", subset_seed, minimum=0, source=name)
        self.data_dir = data_dir
        self.image_size = image_size or CELEB_A_IMAGE_SIZE

    @property
    def info(self) -> DatasetInfo:
        attribute_names = CELEB_A_SUBSET_ATTRIBUTES[self.subset]
        return DatasetInfo(name=self.name, num_classes=len(attribute_names),
                           label_kind=ATTRIBUTES, input_shape=(*self.image_size, 3),
                           is_image=True, class_names=attribute_names, splits=CELEB_A_SPLITS)

    def prepare(self, download: bool = True) -> None:
        prepare_tfds(self.name, "celeb_a", self.data_dir, download)

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
        index, labels = celeb_a_selection(self.split_attributes(split), self.subset,
                                          seed=self.subset_seed)
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
    def factory(data_dir=None, image_size=None, subset=default_subset,
                subset_seed=CELEB_A_SELECTION_SEED):
        if subset_is_fixed and subset != default_subset:
            raise ValueError(f"{name}: the subset is fixed to {default_subset!r}; "
                             f"use celeb_a with subset={subset!r}")
        return CelebASubsetSource(data_dir=data_dir, image_size=image_size, subset=subset,
                                  name=name, subset_seed=subset_seed)

    factory.__doc__ = f"CelebA subset (CSVAE §5.2.2), default subset {default_subset!r}."
    DATASETS.register(name)(factory)


_register_celeb_a("celeb_a", "glasses", subset_is_fixed=False)
for _subset in CELEB_A_SUBSETS:
    _register_celeb_a(f"celeb_a_{_subset}", _subset, subset_is_fixed=True)
