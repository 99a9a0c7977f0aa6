"""The training loop refuses what would lose a run or train it silently wrong, before anything
is written: settings that differ from the run in the workdir (started or finished, with or
without checkpoints, mixed precision included), a batch the replicas cannot split, unlabeled
classes that do not exist, a diverging loss (stopped, last checkpoint kept, no model.keras),
and a failing resume leaves the previous run's settings untouched."""

import json
import os

import numpy as np
import pytest

from keras_lsvae.training import loop
from keras_lsvae.training.guards import NonFiniteLossError
from keras_lsvae.training.loop import train
from tests.test_training import tiny_config


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("finished") / "run"
    train(tiny_config(workdir))
    return workdir


def _snapshot(workdir):
    return {name: (workdir / name).read_bytes() for name in ("config.json", "model.keras")}


@pytest.mark.parametrize("change", [dict(seed=1), dict(mixed_precision="mixed_bfloat16"),
                                    dict(extensions={"mmd": {"weight": 1.0}})])
def test_other_settings_are_refused_with_or_without_checkpoints(finished, tmp_path, change):
    import shutil

    for keep_checkpoints in (True, False):
        workdir = tmp_path / f"copy_{keep_checkpoints}"
        shutil.copytree(finished, workdir)
        if not keep_checkpoints:  # a finished run whose checkpoints were cleaned up
            shutil.rmtree(workdir / "checkpoints")
        before = _snapshot(workdir)
        with pytest.raises(ValueError, match="holds a run with different"):
            train(tiny_config(workdir, **change))
        assert _snapshot(workdir) == before


def test_a_model_without_its_config_is_not_overwritten(finished, tmp_path):
    import shutil

    workdir = tmp_path / "orphan"
    shutil.copytree(finished, workdir)
    os.remove(workdir / "config.json")
    model = (workdir / "model.keras").read_bytes()
    with pytest.raises(ValueError, match="without its config.json"):
        train(tiny_config(workdir))
    assert (workdir / "model.keras").read_bytes() == model


def test_a_failing_resume_leaves_the_settings_as_they_were(finished, tmp_path, monkeypatch):
    import shutil

    from keras_lsvae.training import callbacks

    workdir = tmp_path / "resume"
    shutil.copytree(finished, workdir)
    before = {name: (workdir / name).read_bytes() for name in ("config.json", "flags.txt")
              if (workdir / name).exists()}

    def broken(self, model):
        raise OSError("truncated checkpoint")

    monkeypatch.setattr(callbacks.Checkpointer, "restore", broken)
    with pytest.raises(OSError):
        loop.train(tiny_config(workdir, epochs=2), flags_text="--epochs=2\n")
    assert {name: (workdir / name).read_bytes() for name in before} == before


def test_a_diverging_loss_stops_before_model_keras_and_keeps_the_checkpoint(tmp_path):
    workdir = tmp_path / "nan"
    train(tiny_config(workdir))  # one good epoch, checkpointed
    os.remove(workdir / "model.keras")
    with pytest.raises(NonFiniteLossError, match=r"training diverged at epoch 2, step \d+: "):
        train(tiny_config(workdir, epochs=3, learning_rate=float("inf")))
    assert not (workdir / "model.keras").exists()
    assert json.loads((workdir / "metrics.json").read_text())["epochs"] == 1  # the good run's
    # The kept checkpoint is the good one: the same run resumed at a sane rate finishes with
    # finite weights.
    import keras

    train(tiny_config(workdir, epochs=2))
    model = keras.models.load_model(str(workdir / "model.keras"))
    assert all(np.all(np.isfinite(np.asarray(v))) for v in model.weights)


def test_non_finite_weights_stop_before_a_checkpoint(tmp_path):
    import keras

    from keras_lsvae.training.guards import StopOnNonFinite

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    guard = StopOnNonFinite(every_steps=1)
    guard.set_model(model)
    guard.on_train_batch_end(0, {"loss": 1.0})  # finite: passes
    model.layers[0].kernel.assign(np.full((2, 1), np.nan, np.float32))
    with pytest.raises(NonFiniteLossError, match="non-finite weights"):
        guard.on_train_batch_end(1, {"loss": 1.0})
    with pytest.raises(NonFiniteLossError, match="loss loss = nan"):
        StopOnNonFinite().on_train_batch_end(0, {"loss": float("nan")})


def test_a_batch_the_replicas_cannot_split_fails_before_anything_is_written(tmp_path,
                                                                            monkeypatch):
    class ThreeReplicas:
        num_replicas_in_sync = 3

    monkeypatch.setattr(loop, "get_strategy", lambda *args: ThreeReplicas())
    with pytest.raises(ValueError, match="--batch_size=8 must be a multiple of the 3 replicas"):
        train(tiny_config(tmp_path / "replicas"))
    assert not (tmp_path / "replicas").exists()


def test_unlabeled_classes_that_do_not_exist_fail_before_training(tmp_path):
    config = tiny_config(tmp_path / "semi", classes=(0, 1, 2, 3, 4, 5, 6),
                         unlabeled_dataset="digits", unlabeled_classes=(20, 21),
                         finetune_epochs=1)
    with pytest.raises(ValueError, match="--unlabeled_classes: .*classes 0-9, got \\[20, 21\\]"):
        train(config)
    assert not (tmp_path / "semi").exists()


def test_benchmark_counts_are_checked_before_anything_runs(tmp_path):
    from keras_lsvae.benchmarks import run_suite

    for options in ({"num_seeds": -1}, {"num_seeds": 0}, {"epochs": 2.5}, {"seed": -3}):
        with pytest.raises(ValueError, match="must be a"):
            run_suite("lrlivae_digits_seeds", str(tmp_path / "bench"), **options)
    assert not (tmp_path / "bench").exists()


@pytest.mark.parametrize("error,expected", [
    (IsADirectoryError(21, "Is a directory", "runs/x/model.keras"),
     "error: IsADirectoryError: [Errno 21] Is a directory: 'runs/x/model.keras'"),
    (PermissionError(13, "Permission denied"), "error: PermissionError: [Errno 13]"),
    (RuntimeError("corrupt file"), "error: RuntimeError: corrupt file"),
    (FileNotFoundError("no run in runs/x"), "error: no run in runs/x"),
])
def test_scripts_print_file_and_runtime_errors_as_one_line(error, expected, capsys):
    from keras_lsvae.cli import run_or_exit

    def fail():
        raise error

    with pytest.raises(SystemExit) as exit_info:
        run_or_exit(fail)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(expected)
