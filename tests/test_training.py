"""The training CLI and loop: flagfiles, artifacts, resume, bad input."""

import glob
import json
import os
import subprocess
import sys

import pytest
from absl import flags

from keras_lsvae.training import TrainConfig, train
from keras_lsvae.training.config import parse_classes, parse_model_args
from keras_lsvae.training.flags import config_from_flags, define_train_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "*.cfg")))


def _parse(argv):
    values = flags.FlagValues()
    define_train_flags(values)
    values(["train.py", *argv])
    return values


def tiny_config(workdir, **overrides):
    values = dict(workdir=str(workdir), model="lrlivae", dataset="digits", epochs=1,
                  steps_per_epoch=2, batch_size=8, image_size=8, samples_per_class=2, verbose=0,
                  model_args={"width": 8, "zs_dim": 3, "zu_dim": 2, "n_gm": 1,
                              "latent_classifier_units": (8,)})
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_every_flagfile_parses_and_opens_with_its_command(path):
    with open(path) as f:
        first = f.readline()
    assert first.startswith("# python scripts/train.py --flagfile=configs/")
    config = config_from_flags(_parse([f"--flagfile={path}", "--workdir=/tmp/x"]))
    assert config.epochs > 0 and config.model


def test_expected_configs_exist():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {"debug.cfg", "digits.cfg", "cifar10.cfg", "mnist.cfg", "toy2d.cfg",
            "swiss_roll.cfg", "celeba_glasses.cfg"} <= names


def test_flag_helpers():
    assert parse_classes("0-2,5") == (0, 1, 2, 5)
    assert parse_classes("") is None
    assert parse_model_args(["zs_dim=4", "gan_loss=hinge", "units=(1, 2)"]) == {
        "zs_dim": 4, "gan_loss": "hinge", "units": (1, 2)}
    with pytest.raises(ValueError, match="key=value"):
        parse_model_args(["zs_dim"])


def test_unknown_flag_fails_loudly():
    with pytest.raises(flags.UnrecognizedFlagError):
        _parse(["--no_such_flag=1"])


def test_train_script_debug_run_writes_every_artifact(tmp_path):
    workdir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "train.py"),
         f"--flagfile={os.path.join(REPO, 'configs', 'debug.cfg')}", f"--workdir={workdir}",
         "--image_size=8", "--batch_size=8"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("model.keras", "flags.txt", "metrics.json", "config.json", "history.json",
                 "checkpoints/ckpt.weights.h5", "checkpoints/state.json"):
        assert (workdir / name).exists(), name
    assert sorted(os.listdir(workdir / "samples")) == ["epoch_0001.png", "epoch_0002.png"]
    assert glob.glob(str(workdir / "logs" / "train" / "events.*"))
    assert "--model=lrlivae" in (workdir / "flags.txt").read_text()
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert 0.0 <= metrics["test_class_accuracy"] <= 1.0 and metrics["epochs"] == 2
    assert metrics["versions"]["keras"]


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    first = train(tiny_config(tmp_path, epochs=1))
    assert first["resumed_from_epoch"] == 0
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1 and state["seed_states"]
    # The same command with more epochs (as after an interruption) continues at epoch 1.
    second = train(tiny_config(tmp_path, epochs=2))
    assert second["resumed_from_epoch"] == 1
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    # Running it once more trains nothing: the run is complete.
    third = train(tiny_config(tmp_path, epochs=2))
    assert third["resumed_from_epoch"] == 2


def test_resume_restores_weights_and_optimizer_state(tmp_path):
    import keras
    import numpy as np

    from keras_lsvae import data
    from keras_lsvae.training import build_model
    from keras_lsvae.training.callbacks import Checkpointer

    config = tiny_config(tmp_path, epochs=1)
    train(config)
    saved = keras.models.load_model(str(tmp_path / "model.keras"))
    model = build_model(config, data.info("digits", image_size=8))
    model.compile()
    Checkpointer(str(tmp_path)).restore(model)
    for a, b in zip(saved.weights, model.weights):  # .keras files keep no SeedGenerator state
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(model.optimizer_list[0].iterations) == 2  # n_gm=1 x 2 steps


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    train(tiny_config(tmp_path, epochs=1))
    (tmp_path / "checkpoints" / "ckpt.weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(RuntimeError, match="cannot be read.*--restart"):
        train(tiny_config(tmp_path, epochs=2))
    # --restart starts over and succeeds
    assert train(tiny_config(tmp_path, epochs=1, restart=True))["resumed_from_epoch"] == 0


def test_resuming_with_another_model_config_is_refused(tmp_path):
    train(tiny_config(tmp_path, epochs=1))
    with pytest.raises(ValueError, match="different batch_size"):
        train(tiny_config(tmp_path, epochs=2, batch_size=4))


def test_bad_run_settings_fail_with_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown --model_arg.*known"):
        train(tiny_config(tmp_path / "a", model_args={"zs_dimension": 3}))
    with pytest.raises(KeyError, match="unknown model"):
        train(tiny_config(tmp_path / "b", model="nope"))
    with pytest.raises(KeyError, match="known"):
        train(tiny_config(tmp_path / "c", dataset="nope"))
    with pytest.raises(ValueError, match="0..K-1"):
        train(tiny_config(tmp_path / "d", classes=(3, 4)))


def test_semi_supervised_finetuning_phase(tmp_path):
    metrics = train(tiny_config(tmp_path, classes=(0, 1, 2), unlabeled_dataset="digits",
                                unlabeled_classes=(7, 8, 9), finetune_epochs=1))
    history = json.loads((tmp_path / "history.json").read_text())
    assert metrics["epochs"] == 2 and "u_rec" in history[-1] and "gm_cls" in history[-1]


def test_single_attribute_data_trains_as_two_classes(tmp_path):
    metrics = train(tiny_config(tmp_path, dataset="swiss_roll", image_size=None,
                                model_args={"zs_dim": 2, "zu_dim": 2, "n_gm": 1}))
    assert 0.0 <= metrics["test_class_accuracy"] <= 1.0


def test_flagfiles_may_include_other_flagfiles(tmp_path):
    child = tmp_path / "child.cfg"
    child.write_text(f"--flagfile={os.path.join(REPO, 'configs', 'debug.cfg')}\n--epochs=7\n")
    config = config_from_flags(_parse([f"--flagfile={child}", "--workdir=/tmp/x"]))
    assert config.epochs == 7 and config.model_args["zs_dim"] == 4
