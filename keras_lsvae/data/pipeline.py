"""`prepare`, `load`, `load_arrays` and `info`: the public entry points of `keras_lsvae.data`.

Names are looked up in `keras_lsvae.registry.DATASETS`; ``"kind:argument"`` names (``npz:<path>``,
``folder:<path>``) look up ``kind`` and pass the argument as the source's ``path``. Source
options can be part of the name, so a flagfile's ``--dataset`` can set them: everything after
the first ``?`` is ``key=value`` pairs joined by ``&``, e.g.
``npz:../shared/data/celeba_dev.npz?subset=glasses`` or ``npz:d.npz?attributes=Eyeglasses,Male``
(`split_name`). A value of digits only is an int (``num_classes=7``, ``subset_seed=1``), any
other value a string; a key twice, a key also given as a keyword argument, or a pair without
``=`` is a `ValueError`, and so is an option the data set does not take (naming the ones it
takes).

`prepare` is what a program calls before building a model or writing a file: TFDS data sets
are downloaded and prepared there (unless ``download=False`` or offline: then a
`FileNotFoundError` says how to prepare them), user files are checked to exist. `load` and
`load_arrays` prepare too, with the same ``download`` option, so they never download when told
not to; `info` is static and never touches data.

Arguments are checked before any data is read, and wrong types are refused, never converted (a
`ValueError` naming the argument): counts (``batch_size``, ``group``, ``max_examples``,
``shuffle_buffer``) are integers >= 1, ``seed`` / ``start_step`` integers >= 0 (bool, ``16.0``
and ``"16"`` are not integers), switches (``shuffle``, ``flip``, ``repeat``, ``drop_remainder``,
``download``, ``continuous``) are bools, ``image_size`` an integer or an (H, W) pair of them,
``classes`` a non-empty list of distinct integer ids in [0, K), ``cache`` a bool or a path, and
an option a data set does not take is named. When the split size is known without reading
images, a split too small to give one batch is a `ValueError` that gives both numbers.

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

`train_stream` is what training reads instead: an endless stream of batches whose order is a pure
function of ``(seed, position)``, so that a run resumed from a checkpoint at step ``s`` reads
exactly the batches an uninterrupted run reads from step ``s`` on (`load`'s reshuffling depends
on how many times the dataset was iterated in the current process, so a restarted process
would replay the first epoch's order).
"""

from __future__ import annotations

import inspect
import os
from typing import Iterable, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from keras_lsvae.data.core import (CLASS, DatasetInfo, ImageSize, Source, check_bool, check_int,
                                   check_str, normalize_image_size)
from keras_lsvae.registry import DATASETS

AUTOTUNE = tf.data.AUTOTUNE
# Offset so the flip randomness is not the same stream as the shuffle for the same `seed`.
_FLIP_SEED_OFFSET = 7919
#: largest accepted ``seed`` (seeds plus offsets stay int64 inside TensorFlow)
MAX_SEED = 2 ** 62


def _check_source_options(name: str, factory, options: dict) -> None:
    """A ValueError naming the options a data set does not take (instead of a TypeError from
    deep inside its constructor)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # not introspectable: let the factory decide
        return
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        known = sorted(set(parameters) - {"data_dir", "image_size"})
        raise ValueError(f"{name}: unknown option{'s' * (len(unknown) > 1)} "
                         f"{', '.join(unknown)}; this data set takes "
                         f"{', '.join(known) if known else 'no options'}"
                         " (besides data_dir and image_size)")


def split_name(name: str) -> Tuple[str, dict]:
    """``(name without options, options)`` of ``"kind:path?key=value&key=value"`` (module
    docstring): ``split_name("npz:d.npz?subset=glasses&subset_seed=1")`` is
    ``("npz:d.npz", {"subset": "glasses", "subset_seed": 1})``; a name without ``?`` has no
    options."""
    base, sep, query = name.partition("?")
    options: dict = {}
    if not sep:
        return name, options
    usage = (f"data set name {name!r}: options after '?' are key=value pairs joined by '&', "
             "e.g. npz:data.npz?subset=glasses")
    if not base:
        raise ValueError(f"{usage} (no data set name before '?')")
    for pair in query.split("&"):
        key, equals, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not key or not value:
            raise ValueError(f"{usage} (bad pair {pair!r})")
        if key in options:
            raise ValueError(f"{usage} (option {key!r} is given twice)")
        options[key] = int(value) if value.isascii() and value.isdigit() else value
    return base, options


def get_source(name: str, *, data_dir: Optional[str] = None, image_size: ImageSize = None,
               **source_options) -> Source:
    """Builds the registered `Source` for `name` (``"digits"``, ``"npz:/path/d.npz"``, ...).

    ``name``, ``data_dir`` and ``image_size`` are checked (wrong types are refused, not
    converted: ``image_size="16"`` is an error), and so are the option names. Options written
    in the name (``"npz:d.npz?subset=glasses"``, `split_name`) join ``source_options``.
    """
    name = check_str("name (the data set name)", name)
    name, named_options = split_name(name)
    both = sorted(set(named_options) & set(source_options))
    if both:
        raise ValueError(f"data set option{'s' * (len(both) > 1)} {', '.join(both)} given both "
                         f"in the name and as an argument: give {'them' if len(both) > 1 else 'it'}"
                         " once")
    source_options = {**named_options, **source_options}
    data_dir = check_str("data_dir", data_dir, allow_none=True, path=True)
    size = normalize_image_size(image_size)
    kind, sep, argument = name.partition(":")
    factory = DATASETS.get(kind)  # KeyError listing the known names
    if sep:
        if not argument:
            raise ValueError(f"data set name {name!r} needs a path after ':'")
        source_options["path"] = argument
    _check_source_options(kind, factory, source_options)
    return factory(data_dir=data_dir, image_size=size, **source_options)


def _check_cache(cache) -> Union[bool, str]:
    if isinstance(cache, os.PathLike):
        cache = os.fspath(cache)
    if isinstance(cache, (bool, np.bool_)):
        return bool(cache)
    if isinstance(cache, str) and cache:
        return cache
    raise ValueError(f"cache must be True, False or a file path (a non-empty string), got "
                     f"{cache!r} ({type(cache).__name__})")


def info(name: str, *, data_dir: Optional[str] = None, image_size: ImageSize = None,
         **source_options) -> DatasetInfo:
    """Static metadata of a data set; never needs the network or TFDS files on disk.

    ``npz:`` and ``folder:`` sources read the file header / folder listing.
    """
    return get_source(name, data_dir=data_dir, image_size=image_size, **source_options).info


def prepare(name: str, data_dir: Optional[str] = None, download: bool = True,
            image_size: ImageSize = None, **source_options) -> DatasetInfo:
    """Makes data set `name` ready to read; call it before building a model or writing files.

    TFDS data sets that are not prepared in `data_dir` (default: TFDS's own, ``~/tensorflow_
    datasets`` or ``$TFDS_DATA_DIR``) are downloaded and prepared, with TFDS's progress bar.
    Other sources are checked cheaply (an ``npz:`` file or ``folder:`` folder must exist).

    Args:
        name: as for `load`.
        data_dir: TFDS data directory; None lets TFDS choose.
        download: False (``--nodownload``) never downloads: unprepared data is an error.
        image_size: as for `load`; only changes the returned `DatasetInfo`.
        **source_options: as for `load`.

    Returns:
        The `DatasetInfo` of the data set.

    Raises:
        FileNotFoundError: a TFDS set is not prepared and ``download=False``, there is no
            network, or the download failed with a network error (the message names the
            resolved data directory and gives the commands that prepare it); or a user file /
            folder does not exist (the message names it).
    """
    download = check_bool("download", download)
    source = get_source(name, data_dir=data_dir, image_size=image_size, **source_options)
    source.prepare(download=download)
    return source.info


def _check_classes(classes: Iterable[int], meta: DatasetInfo) -> np.ndarray:
    """`classes` as int32 ids; a ValueError naming ``classes`` unless they are a non-empty
    collection of distinct integers in [0, K) (a string such as ``"1,2"`` is not one)."""
    if meta.label_kind != CLASS:
        raise ValueError(f"{meta.name}: classes= needs class labels, but this data set has "
                         f"attribute labels ({', '.join(meta.class_names)})")
    expected = f"a non-empty list of distinct integer class ids in [0, {meta.num_classes})"
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Iterable):
        raise ValueError(f"{meta.name}: classes={classes!r} must be {expected}")
    items = list(classes)
    if not items:
        raise ValueError(f"{meta.name}: classes=[] is empty; it must be {expected}")
    # bool is an int subclass, but classes=[True] is surely a mistake.
    not_integers = [c for c in items
                    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer))]
    if not_integers:
        raise ValueError(f"{meta.name}: classes={items!r} must be {expected}; "
                         f"{not_integers!r} are not integers")
    ids = np.asarray(items, dtype=np.int64)
    values, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"{meta.name}: classes={items!r} must be {expected}; "
                         f"{values[counts > 1].tolist()} appear more than once")
    outside = [int(c) for c in ids if not 0 <= c < meta.num_classes]
    if outside:
        raise ValueError(f"{meta.name}: classes={items!r} must be {expected}; {outside} are "
                         f"outside (the data set has {meta.num_classes} classes)")
    return ids.astype(np.int32)


def _count_examples(source: Source, split: str, keep: Optional[np.ndarray]) -> Optional[int]:
    """Examples of `split` (of classes `keep`) if known without reading images, else None."""
    labels = source.known_labels(split)
    if labels is None:
        return source.num_examples(split) if keep is None else None
    return int(labels.shape[0] if keep is None else np.isin(labels, keep).sum())


def _check_enough_examples(meta: DatasetInfo, split: str, count: Optional[int], batch_size: int,
                           group: int, drop_remainder: bool, repeat: bool,
                           classes: Optional[np.ndarray]) -> None:
    """A ValueError if the pipeline would give no batch at all (an empty epoch trains nothing
    and fails far from its cause). With ``repeat`` batches span repetitions: only 0 fails."""
    if count is None:
        return
    # The arguments that set the size of one batch, each with the change that lowers it.
    factors = [(f"batch_size={batch_size}", "a smaller batch_size")] if drop_remainder else []
    if group > 1:
        factors.append((f"group={group}", "a smaller group"))
    needed = group * (batch_size if drop_remainder else 1)
    if count > 0 and (repeat or count >= needed):
        return
    what = f"{count} examples" + (f" of classes {classes.tolist()}" if classes is not None else "")
    how = " x ".join(text for text, _ in factors) or "at least one example"
    note = " (drop_remainder=True drops an incomplete batch)" if drop_remainder else ""
    fixes = [fix for _, fix in factors] + ["drop_remainder=False"] * drop_remainder
    raise ValueError(f"{meta.name}: split {split!r} has {what}, but one batch needs {needed} "
                     f"({how}){note}: no batch would be produced. Use more data"
                     + "".join(f" or {fix}" for fix in fixes) + ".")


def _to_float(image, label):
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    return image, label


def _checked_source(name, split, batch_size, group, data_dir, image_size, flip, classes,
                    source_options):
    """(source, its info, the kept class ids or None) after checking the arguments that
    `load` and `train_stream` share (named ValueErrors), before any download."""
    source = get_source(name, data_dir=data_dir, image_size=image_size, **source_options)
    meta = source.info
    source.check_split(split)
    if flip and not meta.is_image:
        raise ValueError(f"{meta.name}: flip=True needs images, but this data set holds points")
    keep = None if classes is None else _check_classes(classes, meta)
    return source, meta, keep


def _kept_examples(source, split, keep, cache):
    """The split's (image, label) examples, only the ``keep`` classes (None: all), cached in
    memory (``cache`` True) or in the file ``cache`` names (shared by `load` and
    `train_stream`)."""
    examples = source.examples(split)
    if keep is not None:
        keep_t = tf.constant(keep)
        examples = examples.filter(
            lambda image, label: tf.reduce_any(tf.equal(tf.cast(label, tf.int32), keep_t)))
    if cache:
        examples = examples.cache(cache if isinstance(cache, str) else "")
    return examples


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
    download: bool = True,
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
        data_dir: TFDS data directory; None: TFDS's default (see `prepare`).
        image_size: int or (H, W) to resize images to (bilinear); default: the source's size.
        flip: random horizontal flips, applied on the train split only (evaluation data stay
            deterministic). Not allowed for point data.
        repeat: repeat indefinitely (after shuffling, so every pass is reshuffled).
        drop_remainder: default True for train, False otherwise.
        cache: True caches in memory, a string caches to that file, False does not cache.
        group: n > 1 gives elements of shape (B, n, ...): n independent mini-batches per element.
        classes: keep only these class ids (class data only), e.g. for semi-supervised splits:
            distinct integers in [0, K).
        shuffle_buffer: shuffle buffer size; default: the whole split for in-memory sources,
            10 000 for lazily read ones.
        download: download unprepared TFDS data (see `prepare`); False: an error instead.
        **source_options: options of the source (e.g. ``subset="glasses"`` for celeb_a).

    Returns:
        Elements ``(images, labels)``: images float32, (B, H, W, C) in [0, 1] (points: (B, D));
        labels int32 (B,) class ids or float32 (B, A) attributes; with ``group=n`` an extra axis
        of size n after B.

    Raises:
        ValueError: a bad argument (named), or a split too small to give one batch.
        FileNotFoundError: see `prepare`.
    """
    split = check_str("split", split)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    group = check_int("group", group, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=MAX_SEED)
    shuffle = check_bool("shuffle", shuffle, allow_none=True)
    flip, repeat = check_bool("flip", flip), check_bool("repeat", repeat)
    drop_remainder = check_bool("drop_remainder", drop_remainder, allow_none=True)
    cache = _check_cache(cache)
    shuffle_buffer = check_int("shuffle_buffer", shuffle_buffer, minimum=1, allow_none=True)
    download = check_bool("download", download)
    source, meta, keep = _checked_source(name, split, batch_size, group, data_dir, image_size,
                                         flip, classes, source_options)
    is_train = split == "train"
    shuffle = is_train if shuffle is None else shuffle
    drop_remainder = is_train if drop_remainder is None else drop_remainder
    # Arguments are checked above, before a possibly long download.
    source.prepare(download=download)
    _check_enough_examples(meta, split, _count_examples(source, split, keep), batch_size, group,
                           drop_remainder, repeat, keep)

    ds = _kept_examples(source, split, keep, cache)
    ds = ds.map(_to_float, num_parallel_calls=AUTOTUNE)
    if shuffle:
        if shuffle_buffer is None:
            size = source.num_examples(split)
            shuffle_buffer = size if size is not None else source.default_shuffle_buffer
        ds = ds.shuffle(max(1, shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
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
        ds = ds.batch(group, drop_remainder=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(AUTOTUNE)


def load_arrays(
    name: str,
    split: str = "train",
    *,
    data_dir: Optional[str] = None,
    image_size: ImageSize = None,
    classes: Optional[Sequence[int]] = None,
    max_examples: Optional[int] = None,
    download: bool = True,
    **source_options,
) -> Tuple[np.ndarray, np.ndarray]:
    """The whole split in memory (source order), validated: ``(images float32, labels)``.

    For metrics and probes. `max_examples` keeps the first examples (after `classes` filtering).
    Labels are int32 class ids or float32 attribute vectors. `download` as for `prepare`.
    A selection of `classes` with no example in the split is a `ValueError`, and so is a
    ``max_examples`` that is not an integer >= 1.
    """
    split = check_str("split", split)
    max_examples = check_int("max_examples", max_examples, minimum=1, allow_none=True)
    download = check_bool("download", download)
    source = get_source(name, data_dir=data_dir, image_size=image_size, **source_options)
    meta = source.info
    source.check_split(split)
    keep = None if classes is None else _check_classes(classes, meta)
    source.prepare(download=download)
    if keep is None:
        return source.arrays(split, max_examples=max_examples)
    images, labels = source.arrays(split)
    mask = np.isin(labels, keep)
    if not mask.any():
        raise ValueError(f"{meta.name}: split {split!r} has no examples of classes "
                         f"{keep.tolist()} (classes=)")
    images, labels = images[mask], labels[mask]
    if max_examples is not None:
        images, labels = images[:max_examples], labels[:max_examples]
    return images, labels


#: graph seed of `train_stream`'s per-pass shuffles (any fixed value but 0: see there)
_GRAPH_SEED = 1
#: examples of filtered lazily read splits, counted once per process (`train_stream`)
_COUNTED = {}


def _pass_seed(seed: int, offset: int, index) -> tf.Tensor:
    """A well-mixed int64 seed, a pure function of ``(seed, offset, index)`` (``index`` may be a
    tensor: the pass number inside `tf.data.Dataset.flat_map`)."""
    key = tf.stack([tf.constant(int(seed) + int(offset), tf.int64), tf.cast(index, tf.int64)])
    return tf.random.stateless_uniform([], seed=key, minval=0, maxval=2 ** 31 - 1,
                                       dtype=tf.int64)


def train_stream(
    name: str,
    batch_size: int = 64,
    *,
    seed: int = 0,
    start_step: int = 0,
    continuous: bool = False,
    split: str = "train",
    data_dir: Optional[str] = None,
    image_size: ImageSize = None,
    flip: bool = False,
    cache: Union[bool, str] = True,
    group: int = 1,
    classes: Optional[Sequence[int]] = None,
    shuffle_buffer: Optional[int] = None,
    download: bool = True,
    **source_options,
) -> Tuple[tf.data.Dataset, int]:
    """An endless, resumable stream of shuffled training batches, and the batches of one pass.

    Pass ``p`` over the split (an "epoch" of the data) is shuffled with a seed that is a pure
    function of ``(seed, p)``, and its flips (``flip=True``) with seeds keyed by ``(seed, p,
    example index)``; nothing depends on how often, or in which process, the stream was iterated
    before. ``start_step=s`` begins with the batch an uninterrupted stream yields as its
    ``s``-th (0-based), which is how a resumed run continues with the data order of the run it
    resumes (tests/test_resume.py).

    Args:
        continuous: False (training without ``--steps_per_epoch``): every pass is grouped and
            batched on its own (``drop_remainder``), so the batches of pass ``p`` are the steps of
            epoch ``p``. True (``--steps_per_epoch``): the passes are concatenated before batching,
            batches may span two passes and no example is dropped.
        start_step: batches to skip; the skip starts at the right pass and reads at most one
            pass (so resuming late in a long run costs at most one pass of input work).
        Other arguments: as for `load` (``shuffle``, ``repeat`` and ``drop_remainder`` are
            implied: the stream is shuffled, endless and drops incomplete batches).

    Returns:
        ``(dataset, batches_per_pass)``; ``batches_per_pass`` is the number of steps of one epoch
        when ``continuous`` is False.
    """
    split = check_str("split", split)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    group = check_int("group", group, minimum=1)
    seed = check_int("seed", seed, minimum=0, maximum=MAX_SEED)
    start_step = check_int("start_step", start_step, minimum=0)
    continuous, flip = check_bool("continuous", continuous), check_bool("flip", flip)
    cache = _check_cache(cache)
    shuffle_buffer = check_int("shuffle_buffer", shuffle_buffer, minimum=1, allow_none=True)
    download = check_bool("download", download)
    source, meta, keep = _checked_source(name, split, batch_size, group, data_dir, image_size,
                                         flip, classes, source_options)
    source.prepare(download=download)
    count = _count_examples(source, split, keep)
    _check_enough_examples(meta, split, count, batch_size, group, True, continuous, keep)

    examples = _kept_examples(source, split, keep, cache)
    if count is None:  # a lazy source of unknown size (e.g. filtered): one pass counts it once
        key = (name, split, data_dir, str(image_size),
               None if keep is None else tuple(keep.tolist()),
               tuple(sorted(source_options.items())))
        if key not in _COUNTED:
            _COUNTED[key] = int(examples.reduce(np.int64(0), lambda n, _: n + 1))
        count = _COUNTED[key]
        _check_enough_examples(meta, split, count, batch_size, group, True, continuous, keep)
    examples = examples.map(_to_float, num_parallel_calls=AUTOTUNE)
    if shuffle_buffer is None:
        size = source.num_examples(split)
        shuffle_buffer = size if size is not None else source.default_shuffle_buffer
    buffer = max(1, shuffle_buffer)
    do_flip = flip and split == "train"

    def one_pass(p):
        # Traced by flat_map: this sets the seed of that function's graph only. `shuffle` pairs
        # it with the op seed and compares the pair with (0, 0) in Python, which fails for a
        # tensor op seed when the graph seed is 0 (as after keras.utils.set_random_seed(0)).
        tf.random.set_seed(_GRAPH_SEED)
        ds = examples.shuffle(buffer, seed=_pass_seed(seed, 0, p), reshuffle_each_iteration=False)
        if do_flip:
            flip_seed = _pass_seed(seed, _FLIP_SEED_OFFSET, p)
            ds = ds.enumerate().map(
                lambda i, example: (tf.image.stateless_random_flip_left_right(
                    example[0], tf.stack([flip_seed, i])), example[1]),
                num_parallel_calls=AUTOTUNE)
        return ds

    def batched(ds):
        if group > 1:
            ds = ds.batch(group, drop_remainder=True)
        return ds.batch(batch_size, drop_remainder=True)

    per_pass = count // group // batch_size
    if continuous:
        offset = start_step * batch_size * group  # examples before the first batch
        first_pass, skip = divmod(offset, count)
        ds = batched(tf.data.Dataset.range(first_pass, np.iinfo(np.int64).max)
                     .flat_map(one_pass).skip(skip))
    else:
        first_pass, skip = divmod(start_step, per_pass)
        ds = (tf.data.Dataset.range(first_pass, np.iinfo(np.int64).max)
              .flat_map(lambda p: batched(one_pass(p))).skip(skip))
    return ds.prefetch(AUTOTUNE), per_pass
