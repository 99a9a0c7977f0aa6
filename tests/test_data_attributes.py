"""Attribute labels from an npz file: ``npz:PATH?attributes=A,B`` (columns of ``attributes_*`` by
name) and ``npz:PATH?subset=glasses|facial_hair|glasses_facial_hair`` (paper B §5.2.2's CelebA
subsets, per split, the rule shared with the TFDS ``celeb_a_*`` sources), option parsing in data
set names, class data as one-hot attributes (FER2013's 7 expressions), one training step of an
attribute model on such files, and the ``*_dev.cfg`` configs that use them. Tiny files in
tmp_path: 8x8 images whose pixel value is the row number, 40 attribute columns."""

import glob
import os

import numpy as np
import pytest

from keras_lsvae import data
from keras_lsvae.data import celeba
from keras_lsvae.data.tfds_sources import celeb_a_selection
from keras_lsvae.training import TrainConfig, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["Eyeglasses", "Goatee", "Male", "Mustache", "No_Beard", "Smiling"] + [
    f"attr_{k}" for k in range(34)]  # 40 columns, as in CelebA
COLUMN = {name: k for k, name in enumerate(NAMES)}


def celeba_attributes(n, seed):
    """(n, 40) uint8 rows with every facial-hair case present: a beard alone (No_Beard = 0), a
    mustache alone and a goatee alone (No_Beard = 1), glasses on some rows."""
    rng = np.random.default_rng(seed)
    rows = (rng.random((n, len(NAMES))) < 0.3).astype(np.uint8)
    rows[:, COLUMN["No_Beard"]] = 1
    rows[:, [COLUMN["Mustache"], COLUMN["Goatee"], COLUMN["Eyeglasses"]]] = 0
    rows[0, COLUMN["No_Beard"]] = 0          # beard only
    rows[1, COLUMN["Mustache"]] = 1          # mustache only
    rows[2, COLUMN["Goatee"]] = 1            # goatee only
    rows[3, [COLUMN["No_Beard"], COLUMN["Mustache"]]] = (0, 1)
    rows[4:4 + n // 8, COLUMN["Eyeglasses"]] = 1
    rows[5, COLUMN["No_Beard"]] = 0          # glasses and a beard: in both subsets
    return rows


def write_celeba(path, sizes=(("train", 48), ("test", 24)), names=NAMES, **extra):
    """An npz in celeba_dev.npz's layout; image i of a split has the constant pixel value i."""
    arrays = {}
    for split, n in sizes:
        attributes = celeba_attributes(n, seed=len(split))
        arrays[f"images_{split}"] = np.broadcast_to(
            np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 8, 8, 3)).copy()
        arrays[f"labels_{split}"] = attributes[:, COLUMN["Eyeglasses"]].astype(np.int64)
        arrays[f"attributes_{split}"] = attributes[:, [NAMES.index(m) for m in names]]
    arrays.update(class_names=np.array(["no_Eyeglasses", "Eyeglasses"]),
                  attribute_names=np.array(names), **extra)
    np.savez(path, **arrays)
    return arrays


def rows_of(images):
    """Row numbers of the split that `load_arrays` returned (the constant pixel value)."""
    return np.round(images[:, 0, 0, 0] * 255).astype(int)


def truth(attributes):
    column = {name: attributes[:, COLUMN[name]].astype(bool) for name in NAMES}
    return {"glasses": column["Eyeglasses"],
            "facial_hair": ~column["No_Beard"] | column["Mustache"] | column["Goatee"]}


@pytest.fixture
def celeba_file(tmp_path):
    path = tmp_path / "celeba_tiny.npz"
    return path, write_celeba(path)


# ----------------------------------------------------------------------------------------------
# Paper B §5.2.2's subsets
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_glasses_subset_is_every_positive_and_twice_as_many_negatives(celeba_file, split):
    path, arrays = celeba_file
    meta = data.info(f"npz:{path}?subset=glasses")
    assert meta.label_kind == "attributes" and meta.class_names == ("glasses",)
    assert meta.name == f"npz:{path}?subset=glasses"
    images, labels = data.load_arrays(f"npz:{path}?subset=glasses", split)
    glasses = truth(arrays[f"attributes_{split}"])["glasses"]
    rows = rows_of(images)
    assert labels.shape == (rows.size, 1) and labels.dtype == np.float32
    assert np.all(np.diff(rows) > 0)  # split order kept
    np.testing.assert_array_equal(labels[:, 0], glasses[rows])
    assert set(rows[labels[:, 0] == 1]) == set(np.flatnonzero(glasses))  # every positive
    assert (labels == 0).sum() == 2 * glasses.sum()  # twice as many without
    assert rows.size < glasses.size  # a real selection, not the whole split


def test_facial_hair_subset_counts_beard_mustache_and_goatee(celeba_file):
    path, arrays = celeba_file
    images, labels = data.load_arrays(f"npz:{path}?subset=facial_hair", "train")
    hair = truth(arrays["attributes_train"])["facial_hair"]
    rows = rows_of(images)
    np.testing.assert_array_equal(labels[:, 0], hair[rows])
    # a beard alone (No_Beard = 0), a mustache alone, a goatee alone: each is facial hair
    assert {0, 1, 2, 3} <= set(rows[labels[:, 0] == 1])
    assert set(rows[labels[:, 0] == 1]) == set(np.flatnonzero(hair))
    assert (labels == 0).sum() == hair.sum()  # as many without
    assert data.info(f"npz:{path}?subset=facial_hair").class_names == ("facial_hair",)


@pytest.mark.parametrize("split", ["train", "test"])
def test_glasses_facial_hair_is_the_union_with_both_labels(celeba_file, split):
    path, arrays = celeba_file
    name = f"npz:{path}?subset=glasses_facial_hair"
    assert data.info(name).class_names == ("glasses", "facial_hair")
    images, labels = data.load_arrays(name, split)
    rows = rows_of(images)
    glasses_rows = rows_of(data.load_arrays(f"npz:{path}?subset=glasses", split)[0])
    hair_rows = rows_of(data.load_arrays(f"npz:{path}?subset=facial_hair", split)[0])
    np.testing.assert_array_equal(rows, np.union1d(glasses_rows, hair_rows))
    expected = truth(arrays[f"attributes_{split}"])
    np.testing.assert_array_equal(labels[:, 0], expected["glasses"][rows])
    np.testing.assert_array_equal(labels[:, 1], expected["facial_hair"][rows])
    assert labels.shape[1] == 2 and np.any(labels.sum(axis=1) == 2)  # not exclusive (row 5)


def test_subsets_are_deterministic_and_seeded(celeba_file, tmp_path):
    path, _ = celeba_file
    first = rows_of(data.load_arrays(f"npz:{path}?subset=glasses", "train")[0])
    again = rows_of(data.get_source(f"npz:{path}", subset="glasses").split_arrays("train")[0])
    np.testing.assert_array_equal(first, again)
    copy = tmp_path / "copy.npz"
    write_celeba(copy)  # another file with the same attributes: the same rows
    np.testing.assert_array_equal(
        first, rows_of(data.load_arrays(f"npz:{copy}?subset=glasses", "train")[0]))
    _, labels = data.load_arrays(f"npz:{path}?subset=glasses", "train")
    other_images, other_labels = data.load_arrays(f"npz:{path}?subset=glasses&subset_seed=1",
                                                  "train")
    other = rows_of(other_images)
    # Another seed: the same images with glasses, another draw of those without.
    np.testing.assert_array_equal(other[other_labels[:, 0] == 1], first[labels[:, 0] == 1])
    assert not np.array_equal(other[other_labels[:, 0] == 0], first[labels[:, 0] == 0])
    assert data.info(f"npz:{path}?subset=glasses&subset_seed=1").name.endswith(
        "?subset=glasses&subset_seed=1")


@pytest.mark.parametrize("subset", celeba.SUBSETS)
def test_npz_and_tfds_subsets_are_one_rule(celeba_file, subset):
    """The npz source selects exactly what the TFDS celeb_a sources select for the same
    attributes (one implementation: `keras_lsvae.data.celeba`)."""
    path, arrays = celeba_file
    images, labels = data.load_arrays(f"npz:{path}?subset={subset}", "test")
    columns = {name: arrays["attributes_test"][:, COLUMN[name]].astype(bool)
               for name in ("Eyeglasses", "No_Beard", "Mustache", "Goatee")}
    index, tfds_labels = celeb_a_selection(columns, subset)
    np.testing.assert_array_equal(rows_of(images), index)
    np.testing.assert_array_equal(labels, tfds_labels)
    assert data.info(f"celeb_a_{subset}").class_names == data.info(
        f"npz:{path}?subset={subset}").class_names


def test_selection_rule_ratios_and_seed():
    rng = np.random.default_rng(3)
    n = 400
    raw = {"Eyeglasses": rng.random(n) < 0.1, "No_Beard": rng.random(n) < 0.8,
           "Mustache": rng.random(n) < 0.05, "Goatee": rng.random(n) < 0.05}
    index, labels = celeba.selection(raw, "glasses")
    assert labels.sum() == raw["Eyeglasses"].sum() and index.size == 3 * labels.sum()
    hair = ~raw["No_Beard"] | raw["Mustache"] | raw["Goatee"]
    index, labels = celeba.selection(raw, "facial_hair")
    assert labels.sum() == hair.sum() and index.size == 2 * hair.sum()
    seeded, _ = celeba.selection(raw, "facial_hair", seed=5)
    assert not np.array_equal(index, seeded)
    # Fewer negatives than asked for: all of them.
    few = {k: np.ones(6, bool) if k == "Eyeglasses" else np.zeros(6, bool) for k in raw}
    few["Eyeglasses"][:2] = False
    index, labels = celeba.selection(few, "glasses")
    np.testing.assert_array_equal(index, np.arange(6))
    with pytest.raises(ValueError, match="missing: Goatee"):
        celeba.selection({k: v for k, v in raw.items() if k != "Goatee"}, "glasses")
    with pytest.raises(ValueError, match="unknown subset 'hats'; known: glasses, facial_hair"):
        celeba.selection(raw, "hats")


def test_tfds_celeb_a_takes_the_subset_seed():
    assert data.get_source("celeb_a_glasses", subset_seed=2).subset_seed == 2
    with pytest.raises(ValueError, match="subset_seed must be an integer >= 0"):
        data.get_source("celeb_a_glasses", subset_seed=-1)


# ----------------------------------------------------------------------------------------------
# Attribute columns by name, errors, the file without options
# ----------------------------------------------------------------------------------------------


def test_attributes_by_name_give_those_columns_in_that_order(celeba_file):
    path, arrays = celeba_file
    meta = data.info(f"npz:{path}?attributes=Smiling,Eyeglasses")
    assert meta.label_kind == "attributes" and meta.num_classes == 2
    assert meta.class_names == ("Smiling", "Eyeglasses")
    images, labels = data.load_arrays(f"npz:{path}?attributes=Smiling,Eyeglasses", "train")
    np.testing.assert_array_equal(rows_of(images), np.arange(48))  # every image
    np.testing.assert_array_equal(
        labels, arrays["attributes_train"][:, [COLUMN["Smiling"], COLUMN["Eyeglasses"]]])
    # The same from Python, as a list.
    _, again = data.load_arrays(f"npz:{path}", "train", attributes=["Smiling", "Eyeglasses"])
    np.testing.assert_array_equal(again, labels)
    single = data.info(f"npz:{path}?attributes=Male")
    assert single.class_names == ("Male",) and data.single_attribute_as_class(single)


def test_unknown_attribute_names_the_available_ones(celeba_file):
    path, _ = celeba_file
    with pytest.raises(ValueError) as error:
        data.info(f"npz:{path}?attributes=Glasses,Male")
    message = str(error.value)
    assert "unknown attribute Glasses (option attributes=)" in message
    assert "celeba_tiny.npz" in message
    assert all(name in message for name in NAMES)  # every available attribute is listed


def test_subset_needs_the_celeba_columns(tmp_path):
    path = tmp_path / "no_goatee.npz"
    write_celeba(path, names=[n for n in NAMES if n != "Goatee"])
    with pytest.raises(ValueError, match=r"subset=facial_hair needs the attributes Eyeglasses, "
                       r"No_Beard, Mustache, Goatee, but Goatee is not among them; the file's "
                       r"attributes \('attribute_names'\) are: Eyeglasses, Male"):
        data.info(f"npz:{path}?subset=facial_hair")


def test_empty_subset_names_the_field(tmp_path):
    path = tmp_path / "no_glasses.npz"
    arrays = write_celeba(path)
    arrays["attributes_test"][:, COLUMN["Eyeglasses"]] = 0
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="subset=glasses of field 'attributes_test' is empty"):
        data.info(f"npz:{path}?subset=glasses")


@pytest.mark.parametrize("suffix,text", [
    ("?subset=hats", "unknown subset 'hats'; known: glasses, facial_hair, glasses_facial_hair"),
    ("?subset=glasses&attributes=Male", "attributes= and subset= exclude each other"),
    ("?subset_seed=1", "subset_seed= needs subset="),
    ("?subset=glasses&subset_seed=x", "subset_seed must be an integer"),
    ("?attributes=Male,Male", "names Male more than once"),
    ("?attributes=Male,", "non-empty attribute names"),
    ("?subsets=glasses", "unknown option subsets; this data set takes attributes, "),
    ("?subset", "bad pair 'subset'"),
    ("?subset=glasses&subset=facial_hair", "option 'subset' is given twice"),
    ("?subset=glasses&", "bad pair ''"),
])
def test_bad_options_are_named(celeba_file, suffix, text):
    path, _ = celeba_file
    with pytest.raises(ValueError) as error:
        data.info(f"npz:{path}{suffix}")
    assert text in str(error.value)


def test_option_in_the_name_and_as_an_argument_is_refused(celeba_file):
    path, _ = celeba_file
    with pytest.raises(ValueError, match="subset given both in the name and as an argument"):
        data.info(f"npz:{path}?subset=glasses", subset="facial_hair")


def test_attribute_options_need_attribute_arrays(tmp_path):
    path = tmp_path / "classes.npz"
    np.savez(path, images_train=np.zeros((4, 8, 8, 1), np.uint8), labels_train=np.arange(4) % 2)
    with pytest.raises(ValueError, match="'attributes_train' is missing.*option attributes="):
        data.info(f"npz:{path}?attributes=Male")
    named = tmp_path / "unnamed.npz"
    np.savez(named, images=np.zeros((4, 8, 8, 1), np.uint8), attributes=np.eye(4, 2))
    with pytest.raises(ValueError, match="needs the field 'attribute_names'"):
        data.info(f"npz:{named}?attributes=Male")


def test_whole_file_layout_reads_attributes(tmp_path):
    path = tmp_path / "whole.npz"
    attributes = celeba_attributes(16, seed=1)
    np.savez(path, images=np.arange(16, dtype=np.uint8)[:, None, None, None].repeat(8, 1)
             .repeat(8, 2), attributes=attributes, attribute_names=np.array(NAMES))
    images, labels = data.load_arrays(f"npz:{path}?subset=glasses", "test")
    glasses = attributes[:, COLUMN["Eyeglasses"]]
    np.testing.assert_array_equal(labels[:, 0], glasses[rows_of(images)])
    assert (labels == 0).sum() == 2 * glasses.sum()


def test_without_options_the_file_stays_class_data(celeba_file):
    path, arrays = celeba_file
    meta = data.info(f"npz:{path}")
    assert meta.label_kind == "class" and meta.class_names == ("no_Eyeglasses", "Eyeglasses")
    assert meta.name == f"npz:{path}"
    images, labels = data.load_arrays(f"npz:{path}", "train")
    assert images.shape == (48, 8, 8, 3)
    np.testing.assert_array_equal(labels, arrays["labels_train"])


def test_split_name():
    assert data.pipeline.split_name("npz:d.npz?subset=glasses&subset_seed=12") == (
        "npz:d.npz", {"subset": "glasses", "subset_seed": 12})
    assert data.pipeline.split_name("npz:d.npz?attributes=5_o_Clock_Shadow,Male") == (
        "npz:d.npz", {"attributes": "5_o_Clock_Shadow,Male"})
    assert data.pipeline.split_name("digits") == ("digits", {})


# ----------------------------------------------------------------------------------------------
# Training on these files
# ----------------------------------------------------------------------------------------------


def tiny_attribute_run(workdir, model, dataset, **overrides):
    values = dict(workdir=str(workdir), model=model, dataset=dataset, epochs=1,
                  steps_per_epoch=1, batch_size=4, samples_per_class=1, verbose=0,
                  model_args={"z_dim": 2, "width": 8})
    values.update(overrides)
    return train(TrainConfig(**values))


def test_csvae_trains_a_step_on_an_npz_subset(celeba_file, tmp_path):
    import keras

    path, _ = celeba_file
    metrics = tiny_attribute_run(tmp_path / "run", "csvae",
                                 f"npz:{path}?subset=glasses_facial_hair",
                                 model_args={"z_dim": 2, "w_dim": 1, "width": 8})
    assert np.isfinite(metrics["test_rec"]) and "test_adversary_accuracy" in metrics
    model = keras.models.load_model(str(tmp_path / "run" / "model.keras"))
    assert model.num_classes == 2  # glasses, facial_hair


def test_class_data_trains_as_one_hot_attributes(tmp_path):
    """FER2013's layout (7 expression ids, class_names): an attribute model takes them as 7
    one-hot attributes in one model (paper B §5.2.1's TFD)."""
    import keras

    path = tmp_path / "fer_tiny.npz"
    expressions = np.array(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])
    rng = np.random.default_rng(0)
    np.savez(path, images_train=rng.integers(0, 256, (21, 12, 12), dtype=np.uint8),
             labels_train=np.arange(21) % 7, images_test=rng.integers(0, 256, (7, 12, 12),
                                                                       dtype=np.uint8),
             labels_test=np.arange(7), class_names=expressions)
    meta = data.info(f"npz:{path}", image_size=8)
    _, labels = data.load_arrays(f"npz:{path}", "test", image_size=8)
    np.testing.assert_array_equal(data.as_attributes(labels, meta), np.eye(7))
    metrics = tiny_attribute_run(tmp_path / "run", "condvae", f"npz:{path}", image_size=8)
    assert np.isfinite(metrics["test_rec"])
    assert keras.models.load_model(str(tmp_path / "run" / "model.keras")).num_classes == 7


# ----------------------------------------------------------------------------------------------
# The *_dev configs on these files
# ----------------------------------------------------------------------------------------------

DEV_DATA = ("celeba_glasses", "celeba_facial_hair", "celeba_glasses_facial_hair", "fer2013")


def _flags(name):
    with open(os.path.join(REPO, "configs", f"{name}.cfg")) as f:
        return [line.strip() for line in f if line.startswith("--")]


@pytest.mark.parametrize("name", DEV_DATA)
def test_dev_configs_differ_only_in_the_model(name):
    """Paper B's comparison: the four models on the same data, networks and schedule; CSVAE
    adds its w_dim."""
    def settings(config):
        return [f for f in _flags(config)
                if not f.startswith(("--model=", "--model_arg=w_dim"))]

    csvae = settings(f"{name}_dev")
    for model in ("vae", "condvae", "condvae_info"):
        assert settings(f"{model}_{name}_dev") == csvae, model
        assert f"--model={model}" in _flags(f"{model}_{name}_dev")
    assert "--model=csvae" in _flags(f"{name}_dev")
    dev = {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "configs", "*_dev.cfg"))}
    assert {f"{m}{name}_dev.cfg" for m in ("", "vae_", "condvae_", "condvae_info_")} <= dev


@pytest.mark.parametrize("name", DEV_DATA)
def test_dev_config_data_sets_read_a_file_in_the_shared_layout(name, tmp_path):
    """Each config's --dataset, on a stand-in of its ../shared/data file: the subset configs
    give that subset's attributes, the FER2013 ones class data (7 one-hot attributes)."""
    [dataset] = [f.split("=", 1)[1] for f in _flags(f"{name}_dev") if f.startswith("--dataset=")]
    base, options = data.pipeline.split_name(dataset)
    stand_in = tmp_path / os.path.basename(base.partition(":")[2])
    if name == "fer2013":
        np.savez(stand_in, images_train=np.zeros((7, 48, 48, 1), np.uint8),
                 labels_train=np.arange(7), class_names=np.array(list("abcdefg")))
        assert data.info(f"npz:{stand_in}").num_classes == 7
        return
    assert stand_in.name == "celeba_dev.npz"
    write_celeba(stand_in)
    meta = data.info(f"npz:{stand_in}", **options)
    assert meta.label_kind == "attributes"
    assert meta.class_names == celeba.SUBSET_ATTRIBUTES[name[len("celeba_"):]]
