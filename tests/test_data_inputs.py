"""Bad data input: each case is a `ValueError` / `FileNotFoundError` that names the argument or
file and says what was expected. Also the (N, 1) label rule of npz files."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import data


def write_npz(path, n=10, labels=None, **arrays):
    images = np.arange(n * 4 * 4, dtype=np.uint8).reshape(n, 4, 4, 1)
    fields = dict(images=images, labels=np.arange(n) % 3 if labels is None else labels)
    fields.update(arrays)
    np.savez(path, **fields)
    return f"npz:{path}"


# ----------------------------------------------------------------------------------------------
# npz files
# ----------------------------------------------------------------------------------------------


def test_npy_file_is_not_an_npz(tmp_path):
    np.save(tmp_path / "images.npy", np.zeros((4, 8, 8, 1), np.uint8))
    with pytest.raises(ValueError) as error:
        data.prepare(f"npz:{tmp_path}/images.npy")
    message = str(error.value)
    assert message.startswith(f"npz:{tmp_path}/images.npy: ")
    assert "is a .npy file (one array, from np.save)" in message
    assert "np.savez(path, images=images, labels=labels)" in message
    (tmp_path / "notes.npz").write_text("not numpy at all")
    with pytest.raises(ValueError, match=r"notes\.npz is not an \.npz archive"):
        data.load(f"npz:{tmp_path}/notes.npz")


def test_string_labels_in_npz(tmp_path):
    name = write_npz(tmp_path / "named.npz", n=4, labels=np.array(["cat", "dog", "cat", "owl"]))
    with pytest.raises(ValueError) as error:
        data.info(name)
    message = str(error.value)
    assert "named.npz: field 'labels' has string dtype <U3" in message
    assert "store the names as 'class_names'" in message
    split = tmp_path / "split.npz"
    np.savez(split, images_train=np.zeros((2, 4, 4, 1), np.uint8), labels_train=np.array([0, 1]),
             images_test=np.zeros((2, 4, 4, 1), np.uint8), labels_test=np.array([b"a", b"b"]))
    with pytest.raises(ValueError, match="field 'labels_test' has string dtype"):
        data.load_arrays(f"npz:{split}", "train")


def test_n_by_1_class_ids_are_squeezed(tmp_path):
    ids = np.array([0, 2, 1, 5, 2, 0, 4, 3])
    name = write_npz(tmp_path / "column.npz", n=8, labels=ids[:, None])
    meta = data.info(name)
    assert (meta.label_kind, meta.num_classes, meta.label_shape) == ("class", 6, ())
    images, labels = data.load_arrays(name, "test")
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, ids)
    _, batch = next(iter(data.load(name, "test", batch_size=8)))
    np.testing.assert_array_equal(batch.numpy(), ids)


def test_n_by_1_binary_labels_are_one_attribute(tmp_path):
    bits = np.array([[0], [1], [1], [0]])
    name = write_npz(tmp_path / "bits.npz", n=4, labels=bits)
    meta = data.info(name)
    assert (meta.label_kind, meta.num_classes) == ("attributes", 1)
    assert data.single_attribute_as_class(meta)  # a class model takes it as 2 classes
    _, labels = data.load_arrays(name, "train")
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(labels, bits.astype(np.float32))
    # ... unless another split of the file holds (N,) class ids: then they are class ids too.
    split = tmp_path / "mixed.npz"
    np.savez(split, images_train=np.zeros((3, 4, 4, 1), np.uint8), labels_train=np.array([0, 2, 1]),
             images_test=np.zeros((4, 4, 4, 1), np.uint8), labels_test=bits)
    assert data.info(f"npz:{split}").label_kind == "class"
    np.testing.assert_array_equal(data.load_arrays(f"npz:{split}", "test")[1], [0, 1, 1, 0])


def test_n_by_1_non_integer_labels_are_an_error(tmp_path):
    name = write_npz(tmp_path / "half.npz", n=4, labels=np.array([[0.0], [0.5], [1.0], [2.0]]))
    with pytest.raises(ValueError, match="half.npz: field 'labels' .*non-integer"):
        data.load_arrays(name)


# ----------------------------------------------------------------------------------------------
# folder: a corrupt image names its file
# ----------------------------------------------------------------------------------------------


def write_folder(root, corrupt=None):
    for class_id, name in enumerate(("cat", "dog")):
        os.makedirs(root / name, exist_ok=True)
        for i in range(5):
            pixels = np.full((8, 8, 3), 40 * class_id + i, np.uint8)
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png(pixels))
    if corrupt:
        (root / corrupt).write_bytes(b"\x89PNG\r\n\x1a\n this is not the rest of a png")
    return f"folder:{root}"


def test_corrupt_image_in_a_class_folder_names_the_file(tmp_path):
    name = write_folder(tmp_path, corrupt="dog/3.png")
    bad = os.path.join(str(tmp_path), "dog", "3.png")
    split = "test" if bad in data.get_source(name).files["test"][0] else "train"
    with pytest.raises(ValueError) as error:
        data.load_arrays(name, split)
    assert f"field 'images': cannot decode image file {bad}" in str(error.value)
    # In a pipeline the error reaches the consumer as TF's error, with the same text.
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"cannot decode image file {bad}"):
        list(data.load(name, split, batch_size=1, shuffle=False))
    # The other split reads normally.
    other = "train" if split == "test" else "test"
    images, labels = data.load_arrays(name, other)
    np.testing.assert_array_equal(np.round(images[:, 0, 0, 0] * 255).astype(int) // 40, labels)


def test_corrupt_first_image_names_the_file(tmp_path):
    name = write_folder(tmp_path)
    (tmp_path / "cat" / "0.png").write_bytes(b"GIF89a broken")
    with pytest.raises(ValueError, match=f"cannot decode image file {tmp_path}/cat/0.png"):
        data.info(name)


# ----------------------------------------------------------------------------------------------
# Too small for one batch
# ----------------------------------------------------------------------------------------------


def test_too_small_for_one_batch(tmp_path):
    name = write_npz(tmp_path / "ten.npz", n=10)
    with pytest.raises(ValueError) as error:
        data.load(name, "train", batch_size=16)  # train drops the remainder
    assert str(error.value).startswith(
        f"npz:{tmp_path}/ten.npz: split 'train' has 10 examples, but one batch needs 16 "
        "(batch_size=16) (drop_remainder=True drops an incomplete batch)")
    with pytest.raises(ValueError, match=r"has 10 examples, but one batch needs 12 "
                                         r"\(batch_size=4 x group=3\)"):
        data.load(name, "train", batch_size=4, group=3)
    with pytest.raises(ValueError, match=r"has 10 examples, but one batch needs 11 \(group=11\)"):
        data.load(name, "test", batch_size=4, group=11)
    with pytest.raises(ValueError, match=r"has 4 examples of classes \[0\], but one batch needs 8"):
        data.load(name, "train", batch_size=8, classes=[0])
    # Exactly enough, a partial test batch, and repetitions that fill a batch are all fine.
    assert [int(x.shape[0]) for x, _ in data.load(name, "train", batch_size=10)] == [10]
    assert [int(x.shape[0]) for x, _ in data.load(name, "test", batch_size=16)] == [10]
    repeated = data.load(name, "train", batch_size=16, repeat=True)
    assert next(iter(repeated))[0].shape == (16, 4, 4, 1)


def test_classes_without_examples(tmp_path):
    # Class 2 has no example: K = 4 is stated by the names (sparse ids are not inferred).
    name = write_npz(tmp_path / "few.npz", n=6, labels=np.array([0, 0, 1, 1, 3, 3]),
                     class_names=np.array(["a", "b", "c", "d"]))
    with pytest.raises(ValueError, match=r"has 0 examples of classes \[2\]"):
        data.load(name, "test", batch_size=1, repeat=True, classes=[2])
    with pytest.raises(ValueError, match=r"no examples of classes \[2\] \(classes=\)"):
        data.load_arrays(name, "test", classes=[2])


def test_too_small_folder(tmp_path):
    name = write_folder(tmp_path)  # 4 train images per class
    with pytest.raises(ValueError, match=r"split 'train' has 4 examples of classes \[1\], but "
                                         r"one batch needs 5"):
        data.load(name, "train", batch_size=5, classes=[1])


# ----------------------------------------------------------------------------------------------
# classes=
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("classes,problem", [
    (["a"], r"\['a'\] are not integers"),
    ([1.5, 2], r"\[1.5\] are not integers"),
    ([1.0], r"\[1.0\] are not integers"),
    ([True], r"\[True\] are not integers"),
    ([1, 1, 2], r"\[1\] appear more than once"),
    ([3, 10, -1], r"\[10, -1\] are outside \(the data set has 10 classes\)"),
    ([], r"classes=\[\] is empty"),
    ("12", r"classes='12' must be a non-empty list"),
    (3, r"classes=3 must be a non-empty list"),
])
def test_bad_classes_name_the_argument(classes, problem):
    for call in (lambda: data.load("digits", classes=classes),
                 lambda: data.load_arrays("digits", classes=classes)):
        with pytest.raises(ValueError, match=problem) as error:
            call()
        assert str(error.value).startswith("digits: classes=")
        assert "distinct integer class ids in [0, 10)" in str(error.value)


def test_good_classes_spellings():
    _, labels = data.load_arrays("digits", "test", classes=np.array([7, 1]))
    assert set(labels) == {1, 7} and labels.size == 72
    _, labels = data.load_arrays("digits", "test", classes=(np.int64(3),))
    assert set(labels) == {3}
