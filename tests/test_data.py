"""Tests of keras_lsvae.data: every source's shapes, dtypes, exact values, labels, determinism,
the pipeline options (group, classes, flip, repeat), TFDS sources under `tfds.testing.mock_data`,
user-data validation errors and distribution. Small and deterministic (a few seconds of CPU).
TFDS preparation is in test_data_prepare.py, bad inputs in test_data_inputs.py."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_lsvae import data
from keras_lsvae.data import digits as digits_module
from keras_lsvae.data import shapes, toy
from keras_lsvae.data.tfds_sources import CELEB_A_CROP, celeb_a_selection
from keras_lsvae.registry import DATASETS


def first_batch(ds):
    images, labels = next(iter(ds))
    return images.numpy(), labels.numpy()


def all_labels(ds):
    return np.concatenate([labels.numpy() for _, labels in ds])


# ----------------------------------------------------------------------------------------------
# Registry and metadata
# ----------------------------------------------------------------------------------------------


def test_every_documented_name_is_registered():
    for name in ["digits", "shapes", "toy2d", "swiss_roll", "swiss_roll_literal", "mnist",
                 "fashion_mnist", "cifar10",
                 "svhn", "svhn_cropped", "celeb_a", "celeb_a_glasses", "celeb_a_facial_hair",
                 "celeb_a_glasses_facial_hair", "npz", "folder"]:
        assert name in DATASETS


def test_unknown_name_lists_known_names():
    with pytest.raises(KeyError) as error:
        data.load("no_such_data")
    assert "digits" in str(error.value) and "shapes" in str(error.value)
    with pytest.raises(KeyError):
        data.info("no_such_data:/tmp/x")


@pytest.mark.parametrize("name,shape,num_classes,kind,splits", [
    ("digits", (16, 16, 1), 10, "class", ("train", "test")),
    ("shapes", (32, 32, 1), 4, "class", ("train", "test")),
    ("toy2d", (2,), 3, "class", ("train", "test")),
    ("swiss_roll", (3,), 1, "attributes", ("train", "test")),
    ("mnist", (32, 32, 1), 10, "class", ("train", "test")),  # resized from 28x28 by default
    ("fashion_mnist", (32, 32, 1), 10, "class", ("train", "test")),
    ("cifar10", (32, 32, 3), 10, "class", ("train", "test")),
    ("svhn", (32, 32, 3), 10, "class", ("train", "test")),
    ("celeb_a", (64, 64, 3), 1, "attributes", ("train", "validation", "test")),
    ("celeb_a_facial_hair", (64, 64, 3), 1, "attributes", ("train", "validation", "test")),
    ("celeb_a_glasses_facial_hair", (64, 64, 3), 2, "attributes",
     ("train", "validation", "test")),
])
def test_info_is_static(name, shape, num_classes, kind, splits, tmp_path):
    # No data on disk for the TFDS sets: info must still work.
    meta = data.info(name, data_dir=str(tmp_path))
    assert meta.input_shape == shape
    assert meta.num_classes == num_classes == len(meta.class_names)
    assert meta.label_kind == kind
    assert meta.splits == splits
    assert meta.is_image == (len(shape) == 3)
    with pytest.raises(Exception):
        meta.name = "changed"  # frozen


def test_single_attribute_as_class():
    # One binary attribute can feed a class model as 2 classes; class data and several
    # attributes cannot.
    verdicts = {name: data.single_attribute_as_class(data.info(name))
                for name in ("swiss_roll", "celeb_a_glasses", "celeb_a_glasses_facial_hair",
                             "digits", "toy2d")}
    assert verdicts == {"swiss_roll": True, "celeb_a_glasses": True,
                        "celeb_a_glasses_facial_hair": False, "digits": False, "toy2d": False}
    two_classes = dataclasses.replace(data.info("digits"), num_classes=1, class_names=("0",))
    assert not data.single_attribute_as_class(two_classes)  # one class is not one attribute


def test_info_follows_image_size():
    assert data.info("digits", image_size=8).input_shape == (8, 8, 1)
    assert data.info("cifar10", image_size=(16, 24)).input_shape == (16, 24, 3)


# ----------------------------------------------------------------------------------------------
# digits and the pipeline options
# ----------------------------------------------------------------------------------------------


def test_digits_arrays_and_fixed_disjoint_split():
    train_x, train_y = data.load_arrays("digits", "train")
    test_x, test_y = data.load_arrays("digits", "test")
    assert train_x.shape == (1437, 16, 16, 1) and test_x.shape == (360, 16, 16, 1)
    assert train_x.dtype == np.float32 and train_y.dtype == np.int32
    assert set(np.unique(train_y)) == set(range(10)) == set(np.unique(test_y))
    split = digits_module._split_indices()
    assert not set(split["train"]) & set(split["test"])
    assert len(set(split["train"]) | set(split["test"])) == 1797
    # Stratified: each class is ~20% test.
    assert np.all(np.abs(np.bincount(test_y) / (np.bincount(test_y) + np.bincount(train_y)) - 0.2)
                  < 0.03)
    # At native size the examples are exactly sklearn's, / 16, in split-index order.
    from sklearn.datasets import load_digits

    digits = load_digits()
    native_x, native_y = data.load_arrays("digits", "test", image_size=8)
    np.testing.assert_array_equal(native_x[..., 0],
                                  (digits.images[split["test"]] / 16.0).astype(np.float32))
    np.testing.assert_array_equal(native_y, digits.target[split["test"]])
    np.testing.assert_array_equal(test_y, native_y)
    # The default 16x16 images are those, bilinear (antialiased) resized, clipped to [0, 1].
    expected = tf.clip_by_value(tf.image.resize(native_x, (16, 16), antialias=True), 0.0, 1.0)
    np.testing.assert_allclose(test_x, expected.numpy(), atol=1e-6)
    assert test_x.min() == 0.0 and test_x.max() == 1.0  # full range used, nothing clipped away


def test_load_batches_dtypes_and_defaults():
    images, labels = first_batch(data.load("digits", "train", batch_size=32))
    assert images.shape == (32, 16, 16, 1) and images.dtype == np.float32
    assert labels.shape == (32,) and labels.dtype == np.int32
    # Unshuffled, the pipeline hands out exactly the arrays, in order.
    train_x, train_y = data.load_arrays("digits", "train")
    plain_x, plain_y = first_batch(data.load("digits", "train", batch_size=32, shuffle=False))
    np.testing.assert_array_equal(plain_x, train_x[:32])
    np.testing.assert_array_equal(plain_y, train_y[:32])
    # Shuffled, each example keeps its own label: find every image among the arrays.
    rows = [int(np.flatnonzero(np.all(train_x == image, axis=(1, 2, 3)))[0]) for image in images]
    np.testing.assert_array_equal(labels, train_y[rows])
    assert rows != list(range(32))
    # train drops the remainder (1437 = 44 * 32 + 29), test keeps it and is not shuffled.
    assert sum(1 for _ in data.load("digits", "train", batch_size=32)) == 44
    test_ds = data.load("digits", "test", batch_size=100)
    assert [int(x.shape[0]) for x, _ in test_ds] == [100, 100, 100, 60]
    _, test_y = data.load_arrays("digits", "test")
    np.testing.assert_array_equal(all_labels(test_ds), test_y)


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    def epochs(seed, count=2):
        ds = data.load("digits", "train", batch_size=1437, seed=seed)
        return [all_labels(ds) for _ in range(count)]

    first, second = epochs(seed=3), epochs(seed=3)
    np.testing.assert_array_equal(first[0], second[0])      # same seed, same order
    np.testing.assert_array_equal(first[1], second[1])      # ... and the same next epoch
    assert not np.array_equal(first[0], first[1])           # new order each epoch
    assert not np.array_equal(first[0], epochs(seed=4)[0])  # other seed, other order
    # Shuffling permutes: same multiset of labels.
    np.testing.assert_array_equal(np.sort(first[0]), np.sort(data.load_arrays("digits")[1][:1437]))


def test_group_gives_independent_batches_per_element():
    ds = data.load("digits", "train", batch_size=8, group=3, shuffle=False)
    images, labels = first_batch(ds)
    assert images.shape == (8, 3, 16, 16, 1) and labels.shape == (8, 3)
    # Column k of the element is one batch: consecutive examples are grouped per row.
    _, train_y = data.load_arrays("digits", "train")
    np.testing.assert_array_equal(labels.reshape(-1), train_y[:24])
    assert sum(1 for _ in ds) == 1437 // 3 // 8


def test_classes_filter_keeps_only_requested_classes():
    labels = all_labels(data.load("digits", "test", batch_size=64, classes=(1, 7)))
    assert set(np.unique(labels)) == {1, 7}
    _, test_y = data.load_arrays("digits", "test")
    assert labels.size == np.isin(test_y, [1, 7]).sum()
    _, kept = data.load_arrays("digits", "test", classes=[3])
    assert set(kept) == {3}
    with pytest.raises(ValueError, match="classes"):
        data.load("digits", classes=(10,))
    with pytest.raises(ValueError, match="attribute"):
        data.load("swiss_roll", classes=(0,))


def test_flip_mirrors_some_images_and_keeps_labels():
    kwargs = dict(batch_size=256, shuffle=False, cache=False)
    plain_x, plain_y = first_batch(data.load("digits", "train", **kwargs))
    flip_x, flip_y = first_batch(data.load("digits", "train", flip=True, seed=1, **kwargs))
    np.testing.assert_array_equal(plain_y, flip_y)
    mirrored = np.all(flip_x == plain_x[:, :, ::-1], axis=(1, 2, 3))
    unchanged = np.all(flip_x == plain_x, axis=(1, 2, 3))
    assert np.all(mirrored | unchanged)
    assert 0.3 < mirrored.mean() < 0.7
    again_x, _ = first_batch(data.load("digits", "train", flip=True, seed=1, **kwargs))
    np.testing.assert_array_equal(flip_x, again_x)  # seeded
    # Never on evaluation splits, never on points.
    test_x, _ = first_batch(data.load("digits", "test", flip=True, **kwargs))
    np.testing.assert_array_equal(test_x, first_batch(data.load("digits", "test", **kwargs))[0])
    with pytest.raises(ValueError, match="flip"):
        data.load("toy2d", flip=True)


def test_repeat_is_infinite_and_reshuffled():
    ds = data.load("digits", "test", batch_size=360, shuffle=True, repeat=True, seed=0)
    batches = [labels.numpy() for _, labels in ds.take(3)]
    assert len(batches) == 3
    assert not np.array_equal(batches[0], batches[1])
    np.testing.assert_array_equal(np.sort(batches[0]), np.sort(batches[2]))


def test_unknown_split_is_an_error():
    with pytest.raises(ValueError, match="validation"):
        data.load("digits", "validation")


def test_distribute_dataset_with_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    ds = data.load("digits", "train", batch_size=16, group=3)
    dist = strategy.experimental_distribute_dataset(ds)
    images, labels = next(iter(dist))
    images = strategy.experimental_local_results(images)[0]
    labels = strategy.experimental_local_results(labels)[0]
    assert images.shape == (16, 3, 16, 16, 1) and labels.shape == (16, 3)


# ----------------------------------------------------------------------------------------------
# shapes
# ----------------------------------------------------------------------------------------------


def test_shapes_arrays_factors_and_render_ground_truth():
    images, labels = data.load_arrays("shapes", "test")
    factors = shapes.load_factors("test")
    assert images.shape == (3000, 32, 32, 1) and images.dtype == np.float32
    # Black background (corners are never covered), a shape whose brightest pixel is its
    # intensity factor (some pixel is fully covered).
    np.testing.assert_array_equal(images[:, [0, 0, -1, -1], [0, -1, 0, -1], 0], 0.0)
    np.testing.assert_allclose(images.max(axis=(1, 2, 3)), factors["intensity"], atol=1e-6)
    assert np.bincount(labels).tolist() == [750] * 4
    assert set(factors) == set(shapes.FACTOR_NAMES)
    for name, (low, high) in shapes.FACTOR_RANGES.items():
        assert factors[name].shape == (3000,)
        assert low <= factors[name].min() and factors[name].max() <= high
    # load_factors is aligned with load_arrays: re-rendering reproduces the split exactly.
    subset = slice(0, 64)
    rerendered = shapes.render(labels[subset], {k: v[subset] for k, v in factors.items()})
    np.testing.assert_array_equal(rerendered, images[subset])
    # Changing the class (same factors) changes every image; the brightest pixel keeps the
    # intensity factor up to anti-aliasing.
    other = (labels[subset] + 1) % shapes.NUM_CLASSES
    swapped = shapes.render(other, {k: v[subset] for k, v in factors.items()})
    assert np.all(np.abs(swapped - images[subset]).max(axis=(1, 2, 3)) > 0.1)
    np.testing.assert_allclose(swapped.max(axis=(1, 2, 3)), factors["intensity"][subset],
                               atol=1e-6)
    # Different splits differ.
    assert not np.array_equal(shapes.load_factors("train")["scale"][:10], factors["scale"][:10])


def test_shapes_factors_move_the_shape():
    base = {name: np.array([0.0], np.float32) for name in shapes.FACTOR_NAMES}
    base.update(scale=np.array([0.8], np.float32), intensity=np.array([1.0], np.float32))
    moved = dict(base, x_position=np.array([0.2], np.float32))
    centre = lambda image: (image[0, ..., 0].sum(0) * np.arange(32)).sum() / image.sum()  # noqa
    shift = centre(shapes.render([1], moved)) - centre(shapes.render([1], base))
    assert abs(shift - 0.2 * 32) < 0.5
    assert shapes.render([0], base, image_size=64).shape == (1, 64, 64, 1)


def test_shapes_pipeline():
    images, labels = first_batch(data.load("shapes", "test", batch_size=10, image_size=16))
    assert images.shape == (10, 16, 16, 1) and labels.dtype == np.int32
    # The test split is not shuffled: the first examples, rendered at 16x16 from their factors.
    factors = {k: v[:10] for k, v in shapes.load_factors("test").items()}
    np.testing.assert_array_equal(labels, data.load_arrays("shapes", "test")[1][:10])
    np.testing.assert_array_equal(images, shapes.render(labels, factors, image_size=16))


# ----------------------------------------------------------------------------------------------
# toy point data
# ----------------------------------------------------------------------------------------------


def test_toy2d_follows_its_documented_distribution():
    points, labels = data.load_arrays("toy2d", "train")
    assert points.shape == (6000, 2) and points.dtype == np.float32
    assert data.load_arrays("toy2d", "test")[0].shape == (1500, 2)
    for c, mean in enumerate(toy.CLASS_MEANS_X):
        x, y = points[labels == c, 0], points[labels == c, 1]
        assert abs(x.mean() - mean) < 0.05 and abs(x.std() - toy.CLASS_STD_X) < 0.05
        assert abs(y.mean() - toy.Y_MEAN) < 0.1 and abs(y.std() - toy.Y_STD) < 0.1
    np.testing.assert_array_equal(toy.sample(10, seed=5)[0], toy.sample(10, seed=5)[0])
    batch, batch_labels = first_batch(data.load("toy2d", "train", batch_size=5))
    assert batch.shape == (5, 2) and batch_labels.dtype == np.int32


def test_swiss_roll_splits_the_roll_in_half_by_default_and_keeps_the_literal_rule():
    from sklearn.datasets import make_swiss_roll

    train_x, train_y = data.load_arrays("swiss_roll", "train")
    test_x, test_y = data.load_arrays("swiss_roll", "test")
    assert train_x.shape == (8000, 3) and test_x.shape == (2000, 3)
    assert train_y.shape == (8000, 1) and train_y.dtype == np.float32
    points, t = make_swiss_roll(n_samples=10000, noise=0.0, random_state=0)
    np.testing.assert_array_equal(train_x, points[:8000].astype(np.float32))
    # Default: the outer half of the roll along its length (t >= 3 pi), ~50 % positives.
    np.testing.assert_array_equal(train_y[:, 0], (t[:8000] >= 3 * np.pi).astype(np.float32))
    np.testing.assert_array_equal(test_y[:, 0], (t[8000:] >= 3 * np.pi).astype(np.float32))
    assert round(float(np.concatenate([train_y, test_y]).mean()), 3) == 0.494  # docstring
    # The paper's literal rule x >= 10: only ~14 % positives (documented).
    literal_x, literal_y = data.load_arrays("swiss_roll_literal", "train")
    np.testing.assert_array_equal(literal_x, train_x)
    np.testing.assert_array_equal(literal_y[:, 0], (train_x[:, 0] >= 10).astype(np.float32))
    assert round(float(np.concatenate(
        [literal_y, data.load_arrays("swiss_roll_literal", "test")[1]]).mean()), 3) == 0.137
    np.testing.assert_array_equal(data.load_arrays("swiss_roll", "train", rule="literal")[1],
                                  literal_y)
    assert data.info("swiss_roll_literal").class_names == ("x_above_10",)
    # Both rules call the outer part of the roll 1: every literal positive is a default one.
    assert np.all(train_y[literal_y[:, 0] == 1] == 1)
    assert train_x.min() < -5  # raw, not standardised coordinates
    with pytest.raises(ValueError, match="rule must be one of length, literal"):
        data.load_arrays("swiss_roll", "train", rule="half")
    with pytest.raises(ValueError, match="image_size"):
        data.load("swiss_roll", image_size=8)


def test_as_attributes_one_hot_for_class_data_and_identity_for_attributes():
    import tensorflow as tf

    digits = data.info("digits")
    one_hot = data.as_attributes(np.array([0, 3, 9]), digits)
    assert one_hot.dtype == np.float32 and one_hot.shape == (3, 10)
    np.testing.assert_array_equal(one_hot.argmax(-1), [0, 3, 9])
    np.testing.assert_array_equal(one_hot.sum(-1), 1.0)
    kept = data.as_attributes(np.array([2, 0]), digits, num_classes=3)  # --classes=0-2
    np.testing.assert_array_equal(kept, [[0, 0, 1], [1, 0, 0]])
    # In a tf.data map, with a group axis (B, G) -> (B, G, A).
    grouped = data.as_attributes(tf.constant([[1, 2], [0, 1]]), digits, num_classes=3)
    assert grouped.shape == (2, 2, 3) and grouped.dtype == tf.float32
    np.testing.assert_array_equal(grouped.numpy().argmax(-1), [[1, 2], [0, 1]])
    roll = data.info("swiss_roll")
    labels = np.array([[1.0], [0.0]], np.float32)
    np.testing.assert_array_equal(data.as_attributes(labels, roll), labels)
    both = data.info("celeb_a_glasses_facial_hair")
    assert data.attribute_names(both) == ("glasses", "facial_hair")
    np.testing.assert_array_equal(data.as_attributes(np.array([[1, 0], [1, 1]]), both),
                                  [[1, 0], [1, 1]])
    with pytest.raises(ValueError, match="at least 2 classes"):
        data.as_attributes(np.array([0, 0]), digits, num_classes=1)
    with pytest.raises(ValueError, match="2 attributes"):
        data.as_attributes(np.array([[1, 0]]), both, num_classes=3)


def test_shapes_render_targets_keeps_every_factor_but_the_class():
    images, classes = data.load_arrays("shapes", "test")
    indices = np.array([0, 7, 123, 2999])
    # The examples' own classes give back the stored images exactly.
    np.testing.assert_array_equal(shapes.render_targets("test", indices, classes[indices]),
                                  images[indices])
    targets = (classes[indices] + 1) % shapes.NUM_CLASSES
    switched = shapes.render_targets("test", indices, targets)
    assert switched.shape == (4, 32, 32, 1)
    assert not np.any(np.all(switched == images[indices], axis=(1, 2, 3)))
    # Another class keeps position, scale, rotation and intensity: same as rendering by hand.
    factors = shapes.load_factors("test")
    np.testing.assert_array_equal(
        switched, shapes.render(targets, {k: v[indices] for k, v in factors.items()}))
    # The intensity is kept: the brightest pixel of each target is the example's intensity.
    np.testing.assert_allclose(switched.max(axis=(1, 2, 3)), factors["intensity"][indices],
                               atol=1e-6)
    small = shapes.render_targets("test", indices[:2], 1, image_size=16)
    assert small.shape == (2, 16, 16, 1)
    with pytest.raises(ValueError, match="indices must lie in"):
        shapes.render_targets("test", [3000], [0])


# ----------------------------------------------------------------------------------------------
# TFDS sources (mocked: TFDS cannot download here)
# ----------------------------------------------------------------------------------------------


def test_cifar10_under_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=20):
        ds = data.load("cifar10", "train", batch_size=8, data_dir=str(tmp_path), flip=True)
        images, labels = first_batch(ds)
        assert images.shape == (8, 32, 32, 3) and images.dtype == np.float32
        assert labels.dtype == np.int32
        assert sum(1 for _ in ds) == 2
        raw = list(tfds.as_numpy(tfds.load("cifar10", split="train", data_dir=str(tmp_path))))
        arrays_x, arrays_y = data.load_arrays("cifar10", "train", data_dir=str(tmp_path))
        x, y = data.load_arrays("svhn", "test", data_dir=str(tmp_path), image_size=16)
        assert x.shape == (20, 16, 16, 3) and y.shape == (20,)
        grouped = data.load("mnist", "train", batch_size=2, group=3, data_dir=str(tmp_path))
        assert first_batch(grouped)[0].shape == (2, 3, 32, 32, 1)
        faces, attributes = first_batch(data.load("celeb_a_glasses_facial_hair", "test",
                                                  batch_size=4, data_dir=str(tmp_path)))
        assert faces.shape == (4, 64, 64, 3) and attributes.shape == (4, 2)
    # The arrays are TFDS's bytes / 255 and labels, in TFDS order.
    np.testing.assert_array_equal(
        arrays_x, np.stack([r["image"] for r in raw]).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(arrays_y, [r["label"] for r in raw])
    # A shuffled, flipped batch holds those examples, each mirrored or not, with its own label.
    for image, label in zip(images, labels):
        same = np.all(arrays_x == image, axis=(1, 2, 3))
        mirrored = np.all(arrays_x[:, :, ::-1] == image, axis=(1, 2, 3))
        assert label in arrays_y[same | mirrored]


def _fake_celeb_a(num_examples):
    """A mocked celeb_a whose record i has the constant image value i and known attributes."""
    index = np.arange(num_examples)
    attributes = {"Eyeglasses": index % 6 == 0, "No_Beard": index % 4 != 1,
                  "Mustache": index % 10 == 3, "Goatee": np.zeros(num_examples, bool)}

    def as_dataset(self, *args, **kwargs):
        tensor_info = self.info.features.get_tensor_info()

        def generate():
            for i in index:
                # Zeros for every feature (landmarks, identity, other attributes), then ours.
                example = tf.nest.map_structure(
                    lambda info: np.zeros(info.shape, info.np_dtype), tensor_info)
                example["image"] = np.full((218, 178, 3), i, np.uint8)
                for name, values in attributes.items():
                    example["attributes"][name] = np.bool_(values[i])
                yield example

        return tf.data.Dataset.from_generator(
            generate, output_signature=tf.nest.map_structure(
                lambda info: tf.TensorSpec(info.shape, info.tf_dtype), tensor_info))

    return as_dataset, attributes


@pytest.mark.parametrize("name,columns", [
    ("celeb_a", ["glasses"]),
    ("celeb_a_facial_hair", ["facial_hair"]),
    ("celeb_a_glasses_facial_hair", ["glasses", "facial_hair"]),
])
def test_celeb_a_subsets_under_mock_data(name, columns, tmp_path):
    as_dataset, attributes = _fake_celeb_a(60)
    glasses = attributes["Eyeglasses"]
    facial_hair = ~attributes["No_Beard"] | attributes["Mustache"] | attributes["Goatee"]
    truth = {"glasses": glasses, "facial_hair": facial_hair}
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        images, labels = data.load_arrays(name, "validation", data_dir=str(tmp_path))
        batch_x, batch_y = first_batch(data.load(name, "train", batch_size=4,
                                                 data_dir=str(tmp_path)))
    assert images.shape[1:] == (64, 64, 3) and batch_x.shape == (4, 64, 64, 3)
    assert labels.shape == (images.shape[0], len(columns)) and labels.dtype == np.float32
    assert batch_y.shape == (4, len(columns))
    # The constant image value tells which record each example came from.
    records = np.round(images[:, 0, 0, 0] * 255).astype(int)
    assert np.all(images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)) < 1e-6)
    assert np.all(np.diff(records) > 0)  # split order kept
    for k, column in enumerate(columns):
        np.testing.assert_array_equal(labels[:, k], truth[column][records])
    if name == "celeb_a":  # all 10 with glasses and twice as many without
        assert labels.sum() == glasses.sum() == 10 and len(labels) == 30
    if name == "celeb_a_facial_hair":  # every positive and as many negatives
        assert labels.sum() == facial_hair.sum() and len(labels) == 2 * facial_hair.sum()
    if name == "celeb_a_glasses_facial_hair":  # union of the two subsets
        glasses_records = set(data_subset_records("celeb_a", tmp_path, as_dataset))
        hair_records = set(data_subset_records("celeb_a_facial_hair", tmp_path, as_dataset))
        assert set(records) == glasses_records | hair_records


def data_subset_records(name, tmp_path, as_dataset):
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        images, _ = data.load_arrays(name, "validation", data_dir=str(tmp_path))
    return np.round(images[:, 0, 0, 0] * 255).astype(int).tolist()


def test_celeb_a_selection_ratios_and_crop():
    rng = np.random.default_rng(0)
    n = 3000
    attributes = {"Eyeglasses": rng.random(n) < 0.07, "No_Beard": rng.random(n) < 0.85,
                  "Mustache": rng.random(n) < 0.04, "Goatee": rng.random(n) < 0.06}
    index, labels = celeb_a_selection(attributes, "glasses")
    assert labels.sum() == attributes["Eyeglasses"].sum()
    assert len(labels) == 3 * labels.sum() and np.all(np.diff(index) > 0)
    again, _ = celeb_a_selection(attributes, "glasses")
    np.testing.assert_array_equal(index, again)  # fixed choice
    _, labels = celeb_a_selection(attributes, "facial_hair")
    assert len(labels) == 2 * labels.sum()
    top, left, height, width = CELEB_A_CROP
    assert height == width and top + height <= 218 and left + width <= 178
    with pytest.raises(ValueError, match="subset"):
        data.load("celeb_a", subset="hats")


def test_missing_tfds_data_says_how_to_prepare_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        data.load("cifar10", "train", data_dir=str(tmp_path), download=False)
    message = str(error.value)
    assert "download_and_prepare" in message and "--data_dir" in message
    assert "tfds.builder('cifar10'" in message
    with pytest.raises(FileNotFoundError) as error:
        data.load_arrays("celeb_a_glasses", "test", data_dir=str(tmp_path), download=False)
    assert "download_and_prepare" in str(error.value) and "downloads/manual" in str(error.value)


# ----------------------------------------------------------------------------------------------
# validate_arrays and user data
# ----------------------------------------------------------------------------------------------


def good_arrays(n=12, channels=1, size=8):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (n, size, size, channels)).astype(np.uint8),
            np.arange(n) % 3)


@pytest.mark.parametrize("images,labels,field,text", [
    (np.zeros((4, 8, 8, 2), np.float32), np.zeros(4), "images", "channels"),
    (np.zeros((4, 8), np.float32), np.zeros(4), "images", "rank"),
    (np.full((4, 8, 8, 1), np.nan, np.float32), np.zeros(4), "images", "non-finite"),
    (np.full((4, 8, 8, 1), 2.0, np.float32), np.zeros(4), "images", "outside [0, 1]"),
    (np.zeros((4, 8, 8, 1), np.float32), np.array([0, 1, 2, 3]), "labels", "outside"),
    (np.zeros((4, 8, 8, 1), np.float32), np.array([0, 1, -1, 2]), "labels", "outside"),
    (np.zeros((4, 8, 8, 1), np.float32), np.array([0, 0.5, 1, 2]), "labels", "non-integer"),
    (np.zeros((5, 8, 8, 1), np.float32), np.zeros(3), "labels", "3 entries but 'images' has 5"),
    (np.zeros((0, 8, 8, 1), np.float32), np.zeros(0), "images", "empty"),
])
def test_validate_arrays_names_source_and_field(images, labels, field, text):
    with pytest.raises(ValueError) as error:
        data.validate_arrays(images, labels, num_classes=3, label_kind="class", source="src.npz")
    assert str(error.value).startswith(f"src.npz: field '{field}'") and text in str(error.value)


def test_validate_arrays_attributes_and_points():
    images = np.zeros((3, 4, 4, 3), np.float32)
    _, labels = data.validate_arrays(images, np.array([[0, 1], [1, 1], [0, 0]]), num_classes=2,
                                     label_kind="attributes", source="s")
    assert labels.dtype == np.float32
    with pytest.raises(ValueError, match="other than 0 and 1"):
        data.validate_arrays(images, np.full((3, 2), 2), num_classes=2, label_kind="attributes",
                             source="s")
    points, _ = data.validate_arrays(np.full((3, 2), -50.0), np.zeros(3), num_classes=1,
                                     label_kind="class", source="s", is_image=False)
    assert points.dtype == np.float32
    with pytest.raises(ValueError, match="non-finite"):
        data.validate_arrays(np.full((3, 2), np.inf), np.zeros(3), num_classes=1,
                             label_kind="class", source="s", is_image=False)


def test_npz_source_with_and_without_splits(tmp_path):
    images, labels = good_arrays()
    whole = tmp_path / "whole.npz"
    np.savez(whole, images=images[..., 0], labels=labels)  # (N, H, W) gets a channel axis
    meta = data.info(f"npz:{whole}")
    assert meta.input_shape == (8, 8, 1) and meta.num_classes == 3 and meta.label_kind == "class"
    x, y = data.load_arrays(f"npz:{whole}", "test")
    np.testing.assert_allclose(x * 255, images.astype(np.float32), atol=1e-3)
    np.testing.assert_array_equal(y, labels)
    split = tmp_path / "split.npz"
    attrs = (np.arange(24).reshape(12, 2) % 2).astype(np.int64)
    np.savez(split, images_train=images, labels_train=attrs, images_test=images[:4] / 255.0,
             labels_test=attrs[:4], attribute_names=np.array(["a", "b"]))
    meta = data.info(f"npz:{split}")
    assert meta.label_kind == "attributes" and meta.class_names == ("a", "b")
    assert meta.splits == ("test", "train")
    batch_x, batch_y = first_batch(data.load(f"npz:{split}", "test", batch_size=4,
                                             image_size=16))
    assert batch_x.shape == (4, 16, 16, 1) and batch_y.shape == (4, 2)


@pytest.mark.parametrize("arrays,field,text", [
    (dict(images=np.zeros((4, 8, 8, 2), np.uint8), labels=np.zeros(4, int)), "images", "channels"),
    (dict(images=np.zeros((4, 2, 8, 8, 1), np.uint8), labels=np.zeros(4, int)), "images", "rank"),
    (dict(images=np.full((4, 8, 8, 1), np.nan), labels=np.zeros(4, int)), "images", "non-finite"),
    (dict(images=np.full((4, 8, 8, 1), 255.0), labels=np.zeros(4, int)), "images", "[0, 1]"),
    (dict(images=np.zeros((5, 8, 8, 1), np.uint8), labels=np.zeros(3, int)), "labels",
     "has 3 entries but 'images' has 5"),
    (dict(images=np.zeros((0, 8, 8, 1), np.uint8), labels=np.zeros(0, int)), "images", "empty"),
    (dict(images=np.zeros((4, 8, 8, 1), np.uint8), labels=np.array([0, 1, 2, -3])), "labels",
     "outside"),
    (dict(images_train=np.zeros((4, 8, 8, 1), np.uint8), labels_train=np.array([0, 1, 2, 9])),
     "labels_train", "outside [0, 3)"),
    (dict(images=np.zeros((4, 8, 8, 1), np.uint8)), "labels", "missing"),
])
def test_npz_errors_name_file_and_field(tmp_path, arrays, field, text):
    path = tmp_path / "bad_data.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as error:
        options = {"num_classes": 3} if field == "labels_train" else {}
        data.load_arrays(f"npz:{path}", "train", **options)
    message = str(error.value)
    assert "bad_data.npz" in message and f"'{field}'" in message and text in message


def test_npz_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        data.load(f"npz:{tmp_path}/nothing.npz")


def write_image_folder(root, sizes=((8, 8),) * 5, classes=("cat", "dog"), channels=3):
    for class_id, name in enumerate(classes):
        os.makedirs(root / name, exist_ok=True)
        for i, (h, w) in enumerate(sizes):
            pixels = np.full((h, w, channels), 40 * class_id + i, np.uint8)
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png(pixels))


def test_folder_source_split_and_resize(tmp_path):
    write_image_folder(tmp_path, sizes=((8, 8),) * 4 + ((12, 10),))
    meta = data.info(f"folder:{tmp_path}")
    assert meta.class_names == ("cat", "dog") and meta.input_shape == (8, 8, 3)
    train_x, train_y = data.load_arrays(f"folder:{tmp_path}", "train")
    test_x, test_y = data.load_arrays(f"folder:{tmp_path}", "test")
    assert train_x.shape == (8, 8, 8, 3) and test_x.shape == (2, 8, 8, 3)  # 20% per class
    assert np.bincount(test_y).tolist() == [1, 1]
    # Values survive decoding exactly; the class is in the pixel value.
    assert set(np.round(train_x[:, 0, 0, 0] * 255).astype(int) // 40) == {0, 1}
    np.testing.assert_array_equal(np.round(train_x[:, 0, 0, 0] * 255).astype(int) // 40, train_y)
    gray, _ = first_batch(data.load(f"folder:{tmp_path}", "train", batch_size=3, image_size=4,
                                    channels=1))
    assert gray.shape == (3, 4, 4, 1)


def test_folder_with_train_test_subfolders(tmp_path):
    write_image_folder(tmp_path / "train", sizes=((6, 6),) * 3)
    write_image_folder(tmp_path / "test", sizes=((6, 6),) * 2, channels=1)
    x, y = data.load_arrays(f"folder:{tmp_path}", "test")
    assert x.shape == (4, 6, 6, 3) and y.tolist() == [0, 0, 1, 1]  # converted to 3 channels


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        data.load(f"folder:{tmp_path}/missing_dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        data.info(f"folder:{tmp_path}/empty")
    (tmp_path / "empty" / "cat").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        data.info(f"folder:{tmp_path}/empty")
    with pytest.raises(ValueError, match="path"):
        data.load("folder")


def test_lazy_validation_names_source_and_field():
    from keras_lsvae.data.core import validate_example

    meta = data.info("digits")
    ds = tf.data.Dataset.from_tensor_slices((np.full((2, 16, 16, 1), 2.0, np.float32),
                                             np.zeros(2, np.int32)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="lazy_src: field images has values > 1"):
        list(ds.map(lambda x, y: validate_example(x, y, meta, "lazy_src")))
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((2, 16, 16, 1), np.uint8),
                                             np.array([3, 10], np.int32)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="lazy_src: field labels has class ids >= 10"):
        list(ds.map(lambda x, y: validate_example(x, y, meta, "lazy_src")))
