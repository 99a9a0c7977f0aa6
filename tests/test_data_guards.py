"""Input guards of keras_lsvae.data: nothing silently wrong.

Folders: hidden entries are ignored, an empty class folder and symlink loops are refused. npz:
K is inferred only from dense ids, names must fit, every split is checked (shapes, pixels) before
anything is written, extra arrays are ignored. Public arguments: wrong types are refused, not
converted. Every case is a ValueError (FileNotFoundError for missing data) with one message that
names the file / argument and says how to fix it.
"""

import os
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import data
from keras_lsvae.data import pipeline


def png(path, value=0, size=(4, 4), channels=1):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.full((*size, channels), value, np.uint8)
    tf.io.write_file(str(path), tf.io.encode_png(pixels))


def class_folder(root, classes=("cat", "dog"), per_class=5):
    for class_id, name in enumerate(classes):
        for i in range(per_class):
            png(root / name / f"{i}.png", value=40 * class_id + i)
    return f"folder:{root}"


def npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def images(n, size=4, channels=1, dtype=np.uint8):
    pixels = np.arange(n * size * size * channels).reshape(n, size, size, channels) % 256
    return pixels.astype(np.uint8) if dtype == np.uint8 else (pixels / 255.0).astype(dtype)


# ----------------------------------------------------------------------------------------------
# folder: what is a class
# ----------------------------------------------------------------------------------------------


def test_hidden_entries_are_not_classes_nor_images(tmp_path):
    name = class_folder(tmp_path)
    png(tmp_path / ".ipynb_checkpoints" / "0-checkpoint.png")  # Jupyter's, with an image
    png(tmp_path / "cat" / "._0.png")                           # macOS resource fork
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / ".hidden_class").mkdir()
    meta = data.info(name)
    assert meta.class_names == ("cat", "dog") and meta.num_classes == 2
    source = data.get_source(name)
    every = source.files["train"][0] + source.files["test"][0]
    assert len(every) == 10 and not any("/." in path for path in every)
    # The same with train/test split folders.
    split_root = tmp_path / "split"
    class_folder(split_root / "train")
    class_folder(split_root / "test", per_class=2)
    png(split_root / "train" / ".ipynb_checkpoints" / "x.png")
    png(split_root / "test" / ".ipynb_checkpoints" / "x.png")
    _, labels = data.load_arrays(f"folder:{split_root}", "test")
    assert data.info(f"folder:{split_root}").class_names == ("cat", "dog")
    assert labels.tolist() == [0, 0, 1, 1]


def test_empty_class_folder_is_refused(tmp_path):
    name = class_folder(tmp_path, classes=("a_cat", "c_dog"))
    (tmp_path / "b_empty").mkdir()
    (tmp_path / "b_empty" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError) as error:
        data.info(name)
    message = str(error.value)
    assert f"{tmp_path}/b_empty: field 'classes': class folder 'b_empty' has no image files" \
        in message
    assert "shift the ids" in message and "add images or remove the folder" in message
    # The same in a test split folder.
    split_root = tmp_path / "split"
    class_folder(split_root / "train")
    class_folder(split_root / "test", per_class=1)
    (split_root / "test" / "dog" / "0.png").unlink()
    with pytest.raises(ValueError, match="class folder 'dog' has no image files"):
        data.info(f"folder:{split_root}")


def test_a_folder_of_folders_says_which_layout_is_expected(tmp_path):
    class_folder(tmp_path / "train")  # a train folder without a test folder
    png(tmp_path / "a_real_class" / "0.png")
    with pytest.raises(ValueError) as error:
        data.info(f"folder:{tmp_path}")
    assert "class folder 'train' has no image files" in str(error.value)
    assert "It holds only sub-folders: the layout is <root>/<class>/<images>" in str(error.value)


def test_symlink_loops_and_broken_links_are_refused(tmp_path):
    root = tmp_path / "data"
    name = class_folder(root)
    os.symlink(root, root / "loop")
    with pytest.raises(ValueError, match=r"data/loop links back to .*symbolic link loop"):
        data.info(name)
    (root / "loop").unlink()
    os.symlink(tmp_path, root / "up")  # a link above the data set's folder loops too
    with pytest.raises(ValueError, match="symbolic link loop"):
        data.info(name)
    (root / "up").unlink()
    os.symlink(root / "nowhere", root / "broken")
    with pytest.raises(ValueError, match="broken is a broken symbolic link"):
        data.info(name)
    (root / "broken").unlink()
    os.symlink(root / "cat", root / "kitty")
    with pytest.raises(ValueError, match="'cat' and 'kitty' are the same folder"):
        data.info(name)
    (root / "kitty").unlink()
    os.symlink(root / "cat" / "missing.png", root / "dog" / "9.png")
    with pytest.raises(ValueError, match="9.png is a broken symbolic link"):
        data.info(name)
    (root / "dog" / "9.png").unlink()
    # A link to a class folder elsewhere is a class like any other.
    png(tmp_path / "elsewhere" / "owls" / "0.png", value=200)
    os.symlink(tmp_path / "elsewhere" / "owls", root / "owl")
    assert data.info(name).class_names == ("cat", "dog", "owl")


def test_folder_channels_option_is_an_int(tmp_path):
    name = class_folder(tmp_path)
    for channels in (True, 3.0, "3", 2):
        with pytest.raises(ValueError, match="option 'channels' must be 1 or 3"):
            data.info(name, channels=channels)
    assert data.info(name, channels=np.int64(3)).input_shape == (4, 4, 3)


# ----------------------------------------------------------------------------------------------
# npz labels: K only from dense ids, names that fit
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stray", [1000, 10 ** 9])
def test_a_stray_label_does_not_make_more_classes(tmp_path, stray):
    labels = np.arange(20) % 10
    labels[7] = stray
    name = npz(tmp_path / "stray.npz", images_train=images(20), labels_train=labels,
               images_test=images(10), labels_test=np.arange(10))
    start = time.perf_counter()
    with pytest.raises(ValueError) as error:
        data.info(name)
    assert time.perf_counter() - start < 5  # 10⁹ class names once hung here
    message = str(error.value)
    assert message.startswith(f"{tmp_path}/stray.npz: cannot infer the number of classes: "
                              f"'labels_train' holds class ids [{stray}]")
    assert f"of the ids 0..{stray} never occur (the first is 10)" in message
    assert "renumber the labels" in message and "'class_names'" in message
    assert "num_classes=K" in message


def test_sparse_ids_are_not_inferred_but_names_state_k(tmp_path):
    arrays = dict(images=images(6), labels=np.array([0, 0, 2, 2, 5, 5]))
    with pytest.raises(ValueError, match=r"'labels' holds class ids \[2, 5\], but 3 of the ids "
                                         r"0..5 never occur \(the first is 1\)"):
        data.info(npz(tmp_path / "sparse.npz", **arrays))
    names = np.array(["a", "b", "c", "d", "e", "f"])
    meta = data.info(npz(tmp_path / "named.npz", class_names=names, **arrays))
    assert meta.num_classes == 6 and meta.class_names == tuple(names)
    meta = data.info(f"npz:{tmp_path}/sparse.npz", num_classes=7)
    assert meta.num_classes == 7 and meta.class_names == tuple(str(i) for i in range(7))
    # Dense ids spread over splits are inferred.
    dense = npz(tmp_path / "dense.npz", images_train=images(3), labels_train=np.array([0, 1, 1]),
                images_test=images(2), labels_test=np.array([2, 3]))
    assert data.info(dense).num_classes == 4


def test_class_names_of_the_wrong_length_or_shape_are_refused(tmp_path):
    arrays = dict(images=images(6), labels=np.arange(6) % 3)
    # K comes from the names: a label 2 is outside 2 names.
    with pytest.raises(ValueError, match=r"field 'labels' has class ids \[2\] outside \[0, 2\) "
                                         r"for 2 classes \(field 'class_names' has 2 names\)"):
        data.info(npz(tmp_path / "short.npz", class_names=np.array(["a", "b"]), **arrays))
    with pytest.raises(ValueError, match="num_classes=3, but field 'class_names' has 4 names"):
        data.info(npz(tmp_path / "long.npz", class_names=np.array(["a", "b", "c", "d"]),
                      **arrays), num_classes=3)
    with pytest.raises(ValueError, match="field 'attribute_names' has 3 names, but the labels "
                                         "have 2 attributes: store one name per attribute"):
        data.info(npz(tmp_path / "attrs.npz", images=images(2), labels=np.array([[0, 1], [1, 1]]),
                      attribute_names=np.array(["a", "b", "c"])))
    with pytest.raises(ValueError, match="num_classes=5, but field 'class_names' has 3 names"):
        data.info(npz(tmp_path / "ok.npz", class_names=np.array(["a", "b", "c"]), **arrays),
                  num_classes=5)
    with pytest.raises(ValueError, match=r"field 'class_names' names \['a'\] more than once"):
        data.info(npz(tmp_path / "twice.npz", class_names=np.array(["a", "b", "a"]), **arrays))
    with pytest.raises(ValueError, match="field 'class_names' must be a non-empty 1-D array"):
        data.info(npz(tmp_path / "flat.npz", class_names=np.array([["a", "b", "c"]]), **arrays))
    assert data.info(npz(tmp_path / "bytes.npz", class_names=np.array([b"a", b"b", b"c"]),
                         **arrays)).class_names == ("a", "b", "c")
    for bad in (True, 3.0, "3", 0, -1, 10 ** 9):
        with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
            data.info(f"npz:{tmp_path}/ok.npz", num_classes=bad)


@pytest.mark.parametrize("labels,text", [
    (np.array([0, 1, -1, 2, -3, 0]), r"field 'labels' has negative class ids \[-3, -1\], "
                                     r"outside \[0, K\)"),
    (np.array([0, 1, 0.5, 2, 1, 0]), r"field 'labels' \(class ids\) has non-integer values "
                                     r"\[0.5\]"),
    (np.array([0, 1, np.nan, 2, 1, 0]), r"field 'labels' has non-finite values \(NaN or inf\) "
                                        r"in 1 examples, the first at index 2"),
    (np.array([0, 1, np.inf, 2, 1, 0]), r"non-finite values"),
])
def test_bad_class_ids_are_refused_by_info(tmp_path, labels, text):
    with pytest.raises(ValueError, match=text) as error:
        data.info(npz(tmp_path / "ids.npz", images=images(6), labels=labels))
    assert str(error.value).startswith(f"{tmp_path}/ids.npz: ")


def test_bad_attribute_labels_are_refused_by_info(tmp_path):
    with pytest.raises(ValueError, match=r"field 'labels_test' \(attributes\) has values other "
                                         r"than 0 and 1: \[2\]"):
        data.info(npz(tmp_path / "attrs.npz", images_train=images(2),
                      labels_train=np.array([[0, 1], [1, 0]]), images_test=images(2),
                      labels_test=np.array([[0, 2], [1, 0]])))
    with pytest.raises(ValueError, match=r"differ in their number of attributes \('labels_test'"
                                         r" 3, 'labels_train' 2\)"):
        data.info(npz(tmp_path / "widths.npz", images_train=images(2),
                      labels_train=np.array([[0, 1], [1, 0]]), images_test=images(2),
                      labels_test=np.array([[0, 1, 1], [1, 0, 0]])))


# ----------------------------------------------------------------------------------------------
# npz splits: one input shape, checked pixels, before anything is written
# ----------------------------------------------------------------------------------------------


def test_splits_of_different_shapes_are_refused_by_info(tmp_path):
    sizes = npz(tmp_path / "sizes.npz", images_train=images(4, size=8), labels_train=np.arange(4),
                images_test=images(4, size=4), labels_test=np.arange(4))
    with pytest.raises(ValueError) as error:
        data.info(sizes)
    assert str(error.value) == (
        f"{tmp_path}/sizes.npz: the splits' images differ in size ('images_test' 4x4, "
        "'images_train' 8x8); a model takes one input shape: store every split at one size or "
        "pass image_size to resize them all")
    # Resizing every split to one size is fine.
    assert data.info(sizes, image_size=6).input_shape == (6, 6, 1)
    assert data.load_arrays(sizes, "test", image_size=6)[0].shape == (4, 6, 6, 1)
    channels = npz(tmp_path / "channels.npz", images_train=images(4, channels=3),
                   labels_train=np.arange(4), images_test=images(4), labels_test=np.arange(4))
    for size in (None, 4):
        with pytest.raises(ValueError, match=r"differ in channels \('images_test' 1 channels, "
                                             r"'images_train' 3 channels\)"):
            data.info(channels, image_size=size)
    # Every split's header is checked, not only the first one's.
    bad_dtype = npz(tmp_path / "dtype.npz", images_a=images(2), labels_a=np.arange(2),
                    images_b=images(2).astype(np.int32), labels_b=np.arange(2))
    with pytest.raises(ValueError, match="field 'images_b' has integer dtype int32"):
        data.info(bad_dtype)
    empty = npz(tmp_path / "empty.npz", images_a=images(2), labels_a=np.arange(2),
                images_b=images(0), labels_b=np.arange(0))
    with pytest.raises(ValueError, match="field 'images_b' is empty"):
        data.info(empty)
    count = npz(tmp_path / "count.npz", images_a=images(2), labels_a=np.arange(2),
                images_b=images(3), labels_b=np.arange(2))
    with pytest.raises(ValueError, match="field 'labels_b' has 2 entries but 'images_b' has 3"):
        data.info(count)


@pytest.mark.parametrize("value,text", [
    (np.nan, "non-finite values (NaN or inf) in 1 examples, the first at index 1"),
    (np.inf, "non-finite values"),
    (255.0, "outside [0, 1] (uint8 data must be divided by 255)"),
])
def test_bad_float_pixels_in_any_split_are_refused_by_prepare(tmp_path, value, text):
    test_images = images(3, dtype=np.float32)
    test_images[1, 2, 2, 0] = value
    name = npz(tmp_path / "pixels.npz", images_train=images(3, dtype=np.float32),
               labels_train=np.arange(3), images_test=test_images, labels_test=np.arange(3))
    assert data.info(name).num_classes == 3  # headers and labels are fine
    for call in (lambda: data.prepare(name), lambda: data.load_arrays(name, "train"),
                 lambda: data.load(name, "train", batch_size=1)):
        with pytest.raises(ValueError) as error:
            call()
        message = str(error.value)
        assert message.startswith(f"{tmp_path}/pixels.npz: field 'images_test' has ")
        assert text in message


def test_training_refuses_a_bad_npz_before_writing_anything(tmp_path):
    from keras_lsvae.training import TrainConfig, train

    train_images = images(8, size=8, dtype=np.float32)
    train_images[3] = np.nan  # the test split, read before the workdir, is fine
    bad = {"sizes": dict(images_train=images(8, size=16), labels_train=np.arange(8) % 2,
                         images_test=images(8, size=8), labels_test=np.arange(8) % 2),
           "nan": dict(images_train=train_images, labels_train=np.arange(8) % 2,
                       images_test=images(8, size=8, dtype=np.float32),
                       labels_test=np.arange(8) % 2),
           "stray": dict(images=images(8, size=8), labels=np.array([0, 1, 0, 1, 0, 1, 0, 1000]))}
    for key, arrays in bad.items():
        workdir = tmp_path / f"run_{key}"
        with pytest.raises(ValueError, match=f"{key}.npz: "):
            train(TrainConfig(workdir=str(workdir), dataset=npz(tmp_path / f"{key}.npz",
                                                                **arrays),
                              epochs=1, batch_size=4, verbose=0))
        assert not workdir.exists()


def test_extra_arrays_are_ignored_and_stay_readable(tmp_path):
    """A CelebA-like file (class labels, 'attributes_*' with their 'attribute_names',
    'filenames_*' strings) and a Yale-B-like one ('azimuth_*' ints)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 6), ("test", 4)):
        arrays.update({f"images_{split}": images(n, channels=3),
                       f"labels_{split}": np.arange(n) % 2,
                       f"attributes_{split}": rng.integers(0, 2, (n, 5)).astype(np.uint8),
                       f"filenames_{split}": np.array([f"{i:06d}.jpg" for i in range(n)]),
                       f"azimuth_{split}": rng.integers(-130, 130, n)})
    name = npz(tmp_path / "faces.npz", class_names=np.array(["no_Eyeglasses", "Eyeglasses"]),
               attribute_names=np.array([f"attribute {i}" for i in range(5)]), **arrays)
    meta = data.info(name)
    assert (meta.num_classes, meta.label_kind, meta.splits) == (2, "class", ("test", "train"))
    assert meta.class_names == ("no_Eyeglasses", "Eyeglasses")  # not the 5 attribute names
    x, y = data.load_arrays(name, "test")
    assert x.shape == (4, 4, 4, 3) and y.tolist() == [0, 1, 0, 1]
    batch_x, batch_y = next(iter(data.load(name, "train", batch_size=3)))
    assert batch_x.shape == (3, 4, 4, 3) and batch_y.shape == (3,)
    with np.load(tmp_path / "faces.npz") as stored:  # what benchmarks read
        assert stored["azimuth_train"].shape == (6,) and stored["attributes_test"].shape == (4, 5)


def test_missing_data_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        data.info("npz:../shared/none.npz")
    message = str(error.value)
    assert message.startswith("npz:../shared/none.npz: file not found (looked for "
                              f"{tmp_path.parent}/shared/none.npz, from the working directory "
                              f"{tmp_path})")
    assert "np.savez(path, images_train=..., labels_train=..." in message
    with pytest.raises(FileNotFoundError, match=r"folder:pics: folder not found \(looked for "
                                                r".*pics.*\); a folder data set is "
                                                r"<root>/<class name>/<image files>"):
        data.prepare("folder:pics")


# ----------------------------------------------------------------------------------------------
# Public arguments: refused, not converted
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("args") / "tiny.npz"
    return npz(path, images=images(12), labels=np.arange(12) % 3)


BAD_CALLS = [
    # (function, keyword arguments, the start of the message)
    ("load", dict(image_size="16"), "image_size must be an integer >= 1 or a (height, width)"),
    ("load", dict(image_size=16.0), "image_size must be an integer"),
    ("load", dict(image_size=True), "image_size must be an integer"),
    ("load", dict(image_size=(16,)), "image_size must be an integer"),
    ("load", dict(image_size=(16, "16")), "image_size must be an integer"),
    ("load", dict(image_size=0), "image_size must be an integer >= 1"),
    ("load", dict(image_size=(8, -8)), "image_size must be an integer >= 1"),
    ("info", dict(image_size="16"), "image_size must be an integer"),
    ("prepare", dict(image_size="16"), "image_size must be an integer"),
    ("load_arrays", dict(image_size="16"), "image_size must be an integer"),
    ("load_arrays", dict(max_examples=-5), "max_examples must be an integer >= 1, got -5"),
    ("load_arrays", dict(max_examples=0), "max_examples must be an integer >= 1"),
    ("load_arrays", dict(max_examples=True), "max_examples must be an integer >= 1"),
    ("load_arrays", dict(max_examples=5.0), "max_examples must be an integer >= 1"),
    ("load_arrays", dict(max_examples="5"), "max_examples must be an integer >= 1"),
    ("load_arrays", dict(download="no"), "download must be True or False"),
    ("load_arrays", dict(split=0), "split must be a non-empty string"),
    ("load", dict(batch_size=True), "batch_size must be an integer >= 1, got True (bool)"),
    ("load", dict(batch_size="4"), "batch_size must be an integer >= 1, got '4' (str)"),
    ("load", dict(batch_size=4.0), "batch_size must be an integer >= 1, got 4.0 (float)"),
    ("load", dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
    ("load", dict(group=True), "group must be an integer >= 1"),
    ("load", dict(group="2"), "group must be an integer >= 1"),
    ("load", dict(group=0), "group must be an integer >= 1"),
    ("load", dict(seed=-1), "seed must be an integer >= 0"),
    ("load", dict(seed=1.5), "seed must be an integer >= 0"),
    ("load", dict(seed="0"), "seed must be an integer >= 0"),
    ("load", dict(seed=True), "seed must be an integer >= 0"),
    ("load", dict(shuffle="yes"), "shuffle must be True or False or None"),
    ("load", dict(flip=1), "flip must be True or False"),
    ("load", dict(repeat="no"), "repeat must be True or False"),
    ("load", dict(drop_remainder=0), "drop_remainder must be True or False or None"),
    ("load", dict(download=1), "download must be True or False"),
    ("load", dict(cache=1), "cache must be True, False or a file path"),
    ("load", dict(cache=""), "cache must be True, False or a file path"),
    ("load", dict(shuffle_buffer=0), "shuffle_buffer must be an integer >= 1"),
    ("load", dict(shuffle_buffer=True), "shuffle_buffer must be an integer >= 1"),
    ("load", dict(data_dir=5), "data_dir must be a non-empty string (a path) or None"),
    ("train_stream", dict(start_step=-1), "start_step must be an integer >= 0"),
    ("train_stream", dict(start_step=1.0), "start_step must be an integer >= 0"),
    ("train_stream", dict(batch_size="4"), "batch_size must be an integer >= 1"),
    ("train_stream", dict(continuous=1), "continuous must be True or False"),
    ("prepare", dict(download="False"), "download must be True or False"),
]


@pytest.mark.parametrize("function,kwargs,text", BAD_CALLS,
                         ids=[f"{f}-{'-'.join(f'{k}={v!r}' for k, v in a.items())}"
                              for f, a, _ in BAD_CALLS])
def test_wrong_argument_types_and_values_are_refused(tiny, function, kwargs, text):
    call = getattr(pipeline, function)
    with pytest.raises(ValueError) as error:
        if function == "train_stream":
            call(tiny, **{"batch_size": 4, **kwargs})
        else:
            call(tiny, **kwargs)
    assert text in str(error.value)


def test_names_and_options_are_checked(tiny):
    for name in (None, 3, ""):
        with pytest.raises(ValueError, match="name .* must be a non-empty string"):
            data.info(name)
    with pytest.raises(ValueError, match="digits: unknown option colour; this data set takes no "
                                         "options"):
        data.load("digits", colour=3)
    with pytest.raises(ValueError, match="npz: unknown options channels, flip_axis; this data "
                                         "set takes attributes, num_classes, path, subset, "
                                         "subset_seed"):
        data.info(tiny, channels=1, flip_axis=2)
    with pytest.raises(ValueError, match="digits: num_classes must be an integer >= 1"):
        data.as_attributes(np.array([0, 1]), data.info("digits"), num_classes="10")


def test_numpy_integers_and_pairs_are_accepted(tiny):
    x, y = data.load_arrays(tiny, "train", max_examples=np.int64(5), image_size=np.int32(6))
    assert x.shape == (5, 6, 6, 1) and y.shape == (5,)
    assert data.info(tiny, image_size=[6, 8]).input_shape == (6, 8, 1)
    assert data.info(tiny, image_size=np.array([6, 8])).input_shape == (6, 8, 1)
    with pytest.raises(ValueError, match="image_size must be an integer"):
        data.info(tiny, image_size=np.array([6.0, 8.0]))
    batch, _ = next(iter(data.load(tiny, "train", batch_size=np.int64(4), group=np.int64(2),
                                   seed=np.int64(3), shuffle=np.bool_(True))))
    assert batch.shape == (4, 2, 4, 4, 1)
    stream, per_pass = pipeline.train_stream(tiny, 4, start_step=np.int64(1), cache=str(
        os.path.join(os.path.dirname(tiny[4:]), "cache")))
    assert per_pass == 3 and next(iter(stream))[0].shape == (4, 4, 4, 1)
