"""`load`, `load_arrays` and `info`: the public entry points of `keras_lsvae.data`.

Names are looked up in `keras_lsvae.registry.DATASETS`; ``"kind:argument"`` names (``npz:<path>``,
``folder:<path>``) look up ``kind`` and pass the argument as the source's ``path``.

Pipeline order of `load` (each step says why it is where it is):

1. source: fixed-order, validated single examples; `classes=` filtering happens here so the
   cache holds only kept examples.
2. cache (``cache=True`` in memory, or a file path string): images are still uint8 for the TFDS
   and folder sources here, so the cache is 4x smaller than float32.
3. uint8 -> float32 / 255 (a cheap cast, after the cache).
4. shuffle (train default): seeded, ``reshuffle_each_iteration=True`` - each epoch has a new order,
   and the sequence of orders is the same for the same `seed`. In-memory sources shuffle with a
   buffer of the whole split (a uniform shuffle); lazy sources use `shuffle_buffer` (10 000).
5. repeat (optional, after shuffle, so each repetition is reshuffled).
6. flip (optional, train split only): random horizontal flip per example, seeded through
   `tf.data.Dataset.random` so it is reproducible and differs between epochs.
7. group (``group=n > 1``): ``batch(n, drop_remainder=True)`` then the batch below, giving
   elements of shape (B, n, ...): column k is one independent mini-batch. Used by Algorithm 1's
   GM stage of Lr-LiVAE (n_gm fresh batches per train step); the batch axis stays axis 0, so
   `strategy.experimental_distribute_dataset` splits it correctly.
8. batch (train drops the remainder by default: constant shapes for compiled steps), prefetch.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from keras_lsvae.data.core import CLASS, DatasetInfo, ImageSize, Source, normalize_image_size
from keras_lsvae.registry import DATASETS

AUTOTUNE = tf.data.AUTOTUNE
# Offset so the flip randomness is not the same stream as the shuffle for the same `seed`.
_FLIP_SEED_OFFSET = 7919


def get_source(name: str, *, data_dir: Optional[str] = None, image_size: ImageSize = None,
               **source_options) -> Source:
    """Builds the registered `Source` for `name` (``"digits"``, ``"npz:/path/d.npz"``, ...)."""
    kind, sep, argument = str(name).partition(":")
    factory = DATASETS.get(kind)  # KeyError listing the known names
    if sep:
        if not argument:
            raise ValueError(f"data set name {name!r} needs a path after ':'")
        source_options["path"] = argument
    return factory(data_dir=data_dir, image_size=normalize_image_size(image_size),
                   **source_options)


def info(name: str, *, data_dir: Optional[str] = None, image_size: ImageSize = None,
         **source_options) -> DatasetInfo:
    """Static metadata of a data set; never needs the network or TFDS files on disk.

    ``npz:`` and ``folder:`` sources read the file header / folder listing.
    """
    return get_source(name, data_dir=data_dir, image_size=image_size, **source_options).info


def _check_classes(classes: Sequence[int], meta: DatasetInfo) -> np.ndarray:
    if meta.label_kind != CLASS:
        raise ValueError(f"{meta.name}: classes= needs class labels, but this data set has "
                         f"attribute labels ({', '.join(meta.class_names)})")
    ids = np.unique(np.asarray(list(classes), dtype=np.int64))
    if ids.size == 0 or ids.min() < 0 or ids.max() >= meta.num_classes:
        raise ValueError(f"{meta.name}: classes={list(classes)} must be non-empty ids in "
                         f"[0, {meta.num_classes})")
    return ids.astype(np.int32)


def _to_float(image, label):
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    return image, label


def load(
    name: str,
    split: str = "train",
    batch_size: int = 64,
    *,
    shuffle: Optional[bool] = None,
    seed: int = 0,
    data_dir: Optional[str] = None,
    image_size: ImageSize = None,
    flip: bool = False,
    repeat: bool = False,
    drop_remainder: Optional[bool] = None,
    cache: Union[bool, str] = True,
    group: int = 1,
    classes: Optional[Sequence[int]] = None,
    shuffle_buffer: Optional[int] = None,
    **source_options,
) -> tf.data.Dataset:
    """A batched `tf.data.Dataset` of ``(images, labels)``.

    Args:
        name: registered data set name (see `keras_lsvae.registry.DATASETS.names()`), or
            ``"npz:<path>"`` / ``"folder:<path>"``.
        split: ``"train"``, ``"test"`` (and ``"validation"`` where the source has it).
        batch_size: examples per batch (per element column when ``group > 1``).
        shuffle: default True for ``split == "train"``, False otherwise.
        seed: shuffle / flip seed; the same seed gives the same sequence of epochs.
        data_dir: TFDS data directory (prepared offline; TFDS never downloads here).
        image_size: int or (H, W) to resize images to (bilinear); default: the source's size.
        flip: random horizontal flips, applied on the train split only (evaluation data stay
            deterministic). Not allowed for point data.
        repeat: repeat indefinitely (after shuffling, so every pass is reshuffled).
        drop_remainder: default True for train, False otherwise.
        cache: True caches in memory, a string caches to that file, False does not cache.
        group: n > 1 gives elements of shape (B, n, ...): n independent mini-batches per element.
        classes: keep only these class ids (class data only), e.g. for semi-supervised splits.
        shuffle_buffer: shuffle buffer size; default: the whole split for in-memory sources,
            10 000 for lazily read ones.
        **source_options: options of the source (e.g. ``subset="glasses"`` for celeb_a).

    Returns:
        Elements ``(images, labels)``: images float32, (B, H, W, C) in [0, 1] (points: (B, D));
        labels int32 (B,) class ids or float32 (B, A) attributes; with ``group=n`` an extra axis
        of size n after B.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if int(group) < 1:
        raise ValueError(f"group must be >= 1, got {group}")
    source = get_source(name, data_dir=data_dir, image_size=image_size, **source_options)
    meta = source.info
    source.check_split(split)
    if flip and not meta.is_image:
        raise ValueError(f"{meta.name}: flip=True needs images, but this data set holds points")
    is_train = split == "train"
    shuffle = is_train if shuffle is None else bool(shuffle)
    drop_remainder = is_train if drop_remainder is None else bool(drop_remainder)

    ds = source.examples(split)
    if classes is not None:
        keep = tf.constant(_check_classes(classes, meta))
        ds = ds.filter(lambda image, label: tf.reduce_any(tf.equal(tf.cast(label, tf.int32), keep)))
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    ds = ds.map(_to_float, num_parallel_calls=AUTOTUNE)
    if shuffle:
        if shuffle_buffer is None:
            size = source.num_examples(split)
            shuffle_buffer = size if size is not None else source.default_shuffle_buffer
        ds = ds.shuffle(max(1, int(shuffle_buffer)), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if flip and is_train:
        # One stateless seed pair per example; `rerandomize_each_iteration` gives new flips in
        # every epoch while staying reproducible for a given `seed`.
        flip_seeds = tf.data.Dataset.random(
            seed=seed + _FLIP_SEED_OFFSET, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, flip_seeds)).map(
            lambda example, pair: (tf.image.stateless_random_flip_left_right(example[0], pair),
                                   example[1]),
            num_parallel_calls=AUTOTUNE)
    if group > 1:
        ds = ds.batch(int(group), drop_remainder=True)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    return ds.prefetch(AUTOTUNE)


def load_arrays(
    name: str,
    split: str = "train",
    *,
    data_dir: Optional[str] = None,
    image_size: ImageSize = None,
    classes: Optional[Sequence[int]] = None,
    max_examples: Optional[int] = None,
    **source_options,
) -> Tuple[np.ndarray, np.ndarray]:
    """The whole split in memory (source order), validated: ``(images float32, labels)``.

    For metrics and probes. `max_examples` keeps the first examples (after `classes` filtering).
    Labels are int32 class ids or float32 attribute vectors.
    """
    source = get_source(name, data_dir=data_dir, image_size=image_size, **source_options)
    meta = source.info
    if classes is None:
        return source.arrays(split, max_examples=max_examples)
    keep = _check_classes(classes, meta)
    images, labels = source.arrays(split)
    mask = np.isin(labels, keep)
    images, labels = images[mask], labels[mask]
    if max_examples is not None:
        images, labels = images[:max_examples], labels[:max_examples]
    return images, labels
