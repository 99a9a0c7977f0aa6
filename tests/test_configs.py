"""Every config's own first-line command runs as typed (with only --epochs/--steps_per_epoch
shrunk), from a directory laid out like the repository, on embedded or TFDS mock data."""

import contextlib
import glob
import json
import os
import shlex
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from keras_lsvae import data
from keras_lsvae.data import tfds_sources
from keras_lsvae.training.flags import run_from_argv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "*.cfg")))
SHRINK = ["--epochs=1", "--steps_per_epoch=1"]
# Mock examples per TFDS split: enough for one grouped batch of 64 x (n_gm + 1) = 256.
MOCK_EXAMPLES = 300


def header_command(path):
    with open(path) as f:
        first = f.readline().rstrip("\n")
    assert first.startswith("# "), f"{path}: the first line must be '# <command>'"
    return shlex.split(first[2:])


def dataset_of(path):
    with open(path) as f:
        for line in f:
            if line.startswith("--dataset="):
                return line.strip().split("=", 1)[1]
    return "digits"


@pytest.fixture
def repo_layout(tmp_path, monkeypatch):
    """A working directory with the repository's configs/ and scripts/ (runs/ lands here), and
    beside it small stand-ins for ../shared/data/{mnist,celeba,fer2013}_dev.npz (random uint8
    images in their layouts), which configs may name but tests must not need."""
    import numpy as np

    root = tmp_path / "repo"
    root.mkdir()
    for name in ("configs", "scripts"):
        os.symlink(os.path.join(REPO, name), root / name)
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", MOCK_EXAMPLES), ("test", 40)):
        arrays[f"images_{split}"] = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
        arrays[f"labels_{split}"] = np.arange(n) % 10
    np.savez(shared / "mnist_dev.npz", **arrays)
    # celeba_dev.npz (64x64x3, Eyeglasses classes, 40 attribute columns) and fer2013_dev.npz
    # (48x48x1, 7 expressions): every subset of the configs has at least one batch of 64.
    names = ["Eyeglasses", "Goatee", "Mustache", "No_Beard"] + [f"a{k}" for k in range(36)]
    celeba, fer = {}, {}
    for split, n in (("train", MOCK_EXAMPLES), ("test", 40)):
        attributes = rng.integers(0, 2, (n, len(names)), dtype=np.uint8)
        celeba[f"images_{split}"] = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
        celeba[f"labels_{split}"] = attributes[:, 0].astype(np.int64)
        celeba[f"attributes_{split}"] = attributes
        fer[f"images_{split}"] = rng.integers(0, 256, (n, 48, 48, 1), dtype=np.uint8)
        fer[f"labels_{split}"] = np.arange(n) % 7
    np.savez(shared / "celeba_dev.npz", class_names=np.array(["no_Eyeglasses", "Eyeglasses"]),
             attribute_names=np.array(names), **celeba)
    np.savez(shared / "fer2013_dev.npz", class_names=np.array(
        ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]), **fer)
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_header_is_the_command_that_runs_this_config(path):
    argv = header_command(path)
    name = os.path.basename(path)
    assert argv == ["python", "scripts/train.py", f"--flagfile=configs/{name}"], argv


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_config_header_command_runs_as_typed(path, repo_layout, capsys):
    argv = header_command(path)[1:] + SHRINK
    source = data.get_source(dataset_of(path))
    is_tfds = isinstance(source, (tfds_sources.TfdsClassSource, tfds_sources.CelebASubsetSource))
    mock = (tfds.testing.mock_data(num_examples=MOCK_EXAMPLES) if is_tfds
            else contextlib.nullcontext())
    with mock:
        metrics = run_from_argv(argv)
    stem = os.path.splitext(os.path.basename(path))[0]
    workdir = repo_layout / "runs" / stem
    assert f"workdir: {os.path.join('runs', stem)}" in capsys.readouterr().out
    for artifact in ("model.keras", "flags.txt", "metrics.json", "config.json"):
        assert (workdir / artifact).exists(), artifact
    assert json.loads((workdir / "metrics.json").read_text())["epochs"] == metrics["epochs"] == 1
    assert "--flagfile" not in (workdir / "flags.txt").read_text()  # flags are resolved


def test_train_script_runs_as_typed_in_a_subprocess(repo_layout):
    """The real entry point (absl app.run) with the debug config's header command."""
    argv = header_command(os.path.join(REPO, "configs", "debug.cfg"))
    argv[0] = sys.executable
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                            cwd=repo_layout, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "workdir: runs/debug" in result.stdout
    workdir = repo_layout / "runs" / "debug"
    assert sorted(os.listdir(workdir / "samples")) == ["epoch_0001.png", "epoch_0002.png"]
    for name in ("model.keras", "flags.txt", "metrics.json", "config.json", "history.json",
                 "checkpoints"):
        assert (workdir / name).exists(), name
    assert list((workdir / "checkpoints").glob("ckpt-*/manifest.json"))  # a complete one
    assert glob.glob(str(workdir / "logs" / "train" / "events.*"))


def test_train_script_reports_bad_settings_without_a_traceback(repo_layout):
    result = subprocess.run(
        [sys.executable, "scripts/train.py", "--flagfile=configs/debug.cfg",
         "--finetune_epochs=2"], capture_output=True, text=True, timeout=300,
        cwd=repo_layout, env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 2
    assert "error: --finetune_epochs=2 needs --unlabeled_dataset" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (repo_layout / "runs").exists()
    unknown = subprocess.run(
        [sys.executable, "scripts/train.py", "--flagfile=configs/debug.cfg", "--model=nope"],
        capture_output=True, text=True, timeout=300, cwd=repo_layout,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert unknown.returncode == 2 and "error: unknown model 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def _settings(path):
    with open(path) as f:
        return [line.strip() for line in f
                if line.startswith("--") and not line.startswith("--dataset=")]


def test_mnist_dev_config_has_exactly_the_mnist_settings():
    """The benchmark measures configs/mnist_dev.cfg; users train configs/mnist.cfg."""
    assert _settings(os.path.join(REPO, "configs", "mnist_dev.cfg")) == _settings(
        os.path.join(REPO, "configs", "mnist.cfg"))


def _flag_values(path):
    values = {}
    with open(path) as f:
        for line in f:
            if line.startswith("--"):
                key, _, value = line.strip()[2:].partition("=")
                if key == "model_arg":
                    key, _, value = value.partition("=")
                values[key] = value
    return values


@pytest.mark.parametrize("model", ["cvae", "cvaegan", "cgan"])
def test_paper_a_baseline_configs_share_lrlivae_settings(model):
    """Fair comparisons (paper A's baselines vs configs/digits.cfg, and CIFAR-10 likewise):
    same data, image size, schedule, batch size, learning rate and network width; z is
    Lr-LiVAE's z_u (the N(0, I) part; the one-hot label takes z_s's place); the VAE-based
    cVAE uses Lr-LiVAE's KL weight, the cVAE-GAN its authors' loss weights (Bao et al.)."""
    for suffix, reference in (("digits", "digits.cfg"), ("cifar10", "cifar10.cfg")):
        ours = _flag_values(os.path.join(REPO, "configs", f"{model}_{suffix}.cfg"))
        lrlivae = _flag_values(os.path.join(REPO, "configs", reference))
        for key in ("dataset", "epochs", "steps_per_epoch", "batch_size", "learning_rate",
                    "lr_schedule", "lr_final_fraction", "image_size", "flip", "width",
                    "strategy"):
            assert ours.get(key) == lrlivae.get(key), (model, suffix, key)
        assert ours["model"] == model
        assert ours["z_dim"] == lrlivae["zu_dim"]
        if model == "cvae":
            assert ours.get("kl_weight") == lrlivae.get("kl_weight"), (model, suffix)
        if model == "cvaegan":
            assert ours["loss_weighting"] == '"bao"' and "kl_weight" not in ours
        if model != "cvae" and suffix == "cifar10":
            assert ours["gan_loss"] == lrlivae["gan_loss"]
            assert ours["spectral_norm"] == lrlivae["spectral_norm"]
    with open(os.path.join(REPO, "configs", f"{model}_cifar10.cfg")) as f:
        header = f.read().split("\n--", 1)[0]
    for target in ("7.04", "6.99", "6.27", "3.01"):
        assert target in header
