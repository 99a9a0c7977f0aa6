"""The training loop with attribute models (paper B: label_kind == "attributes"), on tiny
stand-ins written to the model contract (tests/attribute_stubs.py): labels as attribute vectors
(class data one-hot), run artifacts, per-epoch sample and manipulation grids, point files,
fit_attribute_statistics before saving (resumed runs too), and bad input refused before
anything is written."""

import json
import os

import keras
import matplotlib.image
import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_lsvae import data
from keras_lsvae.training import TrainConfig, train
from keras_lsvae.training import loop
from keras_lsvae.training.flags import run_from_argv
from tests.attribute_stubs import registered_stubs

SIZE = 8


@pytest.fixture(autouse=True)
def stubs():
    with registered_stubs():
        yield


def attribute_config(workdir, **overrides):
    values = dict(workdir=str(workdir), model="stub_csvae", dataset="digits", epochs=1,
                  steps_per_epoch=2, batch_size=8, image_size=SIZE, samples_per_class=2,
                  verbose=0)
    values.update(overrides)
    return TrainConfig(**values)


def _png_shape(path):
    return matplotlib.image.imread(str(path)).shape[:2]


def _grid(rows, cols, side=SIZE):
    return (rows * (side + 1) + 1, cols * (side + 1) + 1)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("csvae_digits")
    with registered_stubs():
        metrics = train(attribute_config(workdir, classes=(0, 1, 2)))
    return workdir, metrics


def test_class_data_feeds_one_hot_attributes_and_writes_every_artifact(digits_run):
    workdir, metrics = digits_run
    for name in ("model.keras", "config.json", "metrics.json", "history.json",
                 "checkpoints"):
        assert (workdir / name).exists(), name
    assert list((workdir / "checkpoints").glob("ckpt-*/manifest.json"))  # a complete one
    assert (workdir / "logs" / "train").is_dir()
    saved = json.loads((workdir / "metrics.json").read_text())
    assert saved["test_rec"] == metrics["test_rec"] > 0 and "test_kl" in saved
    # The stub predicts no attributes: no accuracy is reported for it.
    assert not any("accuracy" in key for key in saved)
    model = keras.models.load_model(str(workdir / "model.keras"))
    assert model.num_classes == 3  # --classes=0-2 -> 3 one-hot attributes
    # Sample grid: rows = the 3 one-hot targets, samples_per_class columns.
    assert _png_shape(workdir / "samples" / "epoch_0001.png") == _grid(3, 2)
    # Manipulation grid: 3 test images (one per class; 4 rows wanted), input + 3 targets.
    assert _png_shape(workdir / "samples" / "manipulation_0001.png") == _grid(
        loop.MANIPULATION_ROWS, 1 + 3)
    assert (workdir / "logs" / "manipulation").is_dir()


def test_statistics_are_fitted_on_the_train_split_before_saving(digits_run):
    workdir, _ = digits_run
    model = keras.models.load_model(str(workdir / "model.keras"))
    images, labels = data.load_arrays("digits", "train", image_size=SIZE, classes=(0, 1, 2))
    attributes = np.eye(3, dtype=np.float32)[labels]
    saved_means = model.w_means.numpy().copy()
    # Once per epoch (the manipulation grid) and once after training.
    assert float(model.statistics_calls.numpy()) == 2.0
    model.fit_attribute_statistics(images, attributes)
    np.testing.assert_allclose(saved_means, model.w_means.numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(saved_means).sum() > 0


def test_test_losses_are_the_saved_models_on_the_whole_one_hot_test_split(digits_run):
    # --classes filters the test split (unknown cardinality): every batch counts once.
    workdir, metrics = digits_run
    model = keras.models.load_model(str(workdir / "model.keras"))
    images, labels = data.load_arrays("digits", "test", image_size=SIZE, classes=(0, 1, 2))
    model.compile()
    result = model.evaluate(images, np.eye(3, dtype=np.float32)[labels], batch_size=8,
                            verbose=0, return_dict=True)
    assert result["rec"] == pytest.approx(metrics["test_rec"], rel=1e-4)
    assert result["kl"] == pytest.approx(metrics["test_kl"], rel=1e-4)


def test_predicting_models_report_attribute_accuracy(tmp_path, digits_run):
    # A model that declares PredictsAttributes gets test_attribute_accuracy on the whole test
    # split (it predicts [1, 0, 0] for every image); one that does not gets none.
    assert "test_attribute_accuracy" not in digits_run[1]
    metrics = train(attribute_config(tmp_path, model="stub_csvae_predicting",
                                     classes=(0, 1, 2)))
    _, labels = data.load_arrays("digits", "test", classes=(0, 1, 2))
    expected = np.mean(np.eye(3)[labels] == [[1, 0, 0]])
    assert metrics["test_attribute_accuracy"] == pytest.approx(expected)
    assert metrics["test_examples"] == len(labels)


def test_resumed_run_refits_the_statistics_before_saving(tmp_path):
    train(attribute_config(tmp_path, epochs=1))
    first = keras.models.load_model(str(tmp_path / "model.keras"))
    assert float(first.statistics_calls.numpy()) == 2.0
    second = train(attribute_config(tmp_path, epochs=2))
    assert second["resumed_from_epoch"] == 1
    resumed = keras.models.load_model(str(tmp_path / "model.keras"))
    # Restored checkpoint (1 per-epoch fit) + epoch 2's grid + the final fit.
    assert float(resumed.statistics_calls.numpy()) == 3.0
    # A complete run started again trains nothing but still fits before saving.
    train(attribute_config(tmp_path, epochs=2))
    again = keras.models.load_model(str(tmp_path / "model.keras"))
    assert float(again.statistics_calls.numpy()) == 3.0  # checkpoint (2) + final fit
    assert sorted(os.listdir(tmp_path / "samples")) == [
        "epoch_0001.png", "epoch_0002.png", "manipulation_0001.png", "manipulation_0002.png"]


def test_swiss_roll_points_for_one_attribute(tmp_path):
    train(attribute_config(tmp_path, dataset="swiss_roll", image_size=None, epochs=2))
    model = keras.models.load_model(str(tmp_path / "model.keras"))
    assert model.num_classes == 1
    assert sorted(os.listdir(tmp_path / "points")) == ["epoch_0001.npz", "epoch_0002.npz"]
    with np.load(tmp_path / "points" / "epoch_0002.npz") as saved:
        # The attribute off then on, 300 points each.
        np.testing.assert_array_equal(saved["attributes"][:, 0], np.repeat([0.0, 1.0], 300))
        np.testing.assert_array_equal(saved["labels"], np.repeat([0, 1], 300))
        assert saved["points"].shape == (600, 3)
    assert not (tmp_path / "samples").exists()  # no image grids for points


def test_condvae_shaped_model_and_two_attribute_celeba(tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        metrics = train(attribute_config(tmp_path, model="stub_condvae",
                                         dataset="celeb_a_glasses_facial_hair"))
    model = keras.models.load_model(str(tmp_path / "model.keras"))
    assert model.num_classes == 2 and "test_rec" in metrics
    assert not hasattr(model, "fit_attribute_statistics")
    assert _png_shape(tmp_path / "samples" / "epoch_0001.png") == _grid(2, 2)
    assert _png_shape(tmp_path / "samples" / "manipulation_0001.png") == _grid(
        loop.MANIPULATION_ROWS, 1 + 2)


def _run(argv, workdir):
    points = any(a.startswith("--dataset=swiss_roll") for a in argv)
    return run_from_argv(["train.py", f"--workdir={workdir}", "--model=stub_csvae",
                          "--dataset=digits", *([] if points else ["--image_size=8"]),
                          "--epochs=1",
                          "--steps_per_epoch=1", "--batch_size=8", "--verbose=0", *argv])


@pytest.mark.parametrize("argv, message", [
    (["--dataset=swiss_roll", "--classes=0-1"],
     "--classes: --dataset=swiss_roll has attribute labels"),
    (["--classes=0"], "needs at least 2 classes, got 1 \\(--classes\\)"),
    (["--classes=1-2"], "--classes: must be 0..K-1"),
    (["--unlabeled_dataset=digits", "--finetune_epochs=1"],
     "--finetune_epochs=1: semi-supervised fine-tuning .* not defined for --model=stub_csvae"),
    (["--model_arg=zs_dim=3"], "--model_arg: unknown \\['zs_dim'\\] for model 'stub_csvae'"),
    (["--model_arg=w_dim=two"], "--model_arg=w_dim='two': w_dim must be an integer"),
])
def test_bad_attribute_runs_fail_before_anything_is_written(tmp_path, argv, message):
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        _run(argv, workdir)
    assert not workdir.exists()


@pytest.mark.parametrize("argv, message", [
    (["--model=vae", "--model_arg=zs_dim=3"], "--model_arg: unknown \\['zs_dim'\\] for model 'vae'"),
    (["--model=condvae", "--model_arg=z_dim=abc"], "z_dim must be an integer"),
    (["--model=csvae", "--model_arg=w_dim=2.5"], "w_dim must be an integer"),
])
def test_paper_b_model_args_are_checked_through_their_base_constructors(tmp_path, argv, message):
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        _run(argv, workdir)
    assert not workdir.exists()


def test_train_script_reports_bad_attribute_input_without_a_traceback(tmp_path):
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workdir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, os.path.join(repo, "scripts", "train.py"), "--model=csvae",
         "--dataset=swiss_roll", "--classes=0-1", f"--workdir={workdir}"],
        capture_output=True, text=True, timeout=300, cwd=repo)
    assert result.returncode == 2
    assert "error: --classes: --dataset=swiss_roll has attribute labels" in result.stderr
    assert "Traceback" not in result.stderr and not workdir.exists()
