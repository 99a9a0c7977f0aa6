"""The training CLI and loop: flagfiles, artifacts, resume, bad input."""

import dataclasses
import glob
import json
import os
import subprocess
import sys

import pytest
from absl import flags

from keras_lsvae.training import TrainConfig, train
from keras_lsvae.training.config import default_workdir, parse_classes, parse_model_args
from keras_lsvae.training.flags import (config_from_flags, define_train_flags, flagfile_of,
                                        run_from_argv)

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
def test_every_flagfile_parses_to_a_valid_config(path):
    config = config_from_flags(_parse([f"--flagfile={path}"]), flagfile=path)
    stem = os.path.splitext(os.path.basename(path))[0]
    assert config.workdir == os.path.join("runs", stem)
    with open(path) as f:
        dataset = [line.split("=", 1)[1].strip() for line in f if line.startswith("--dataset=")]
    assert [config.dataset] == dataset


def test_expected_configs_exist():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {"debug.cfg", "digits.cfg", "cifar10.cfg", "mnist.cfg", "fashion_mnist.cfg",
            "toy2d.cfg", "swiss_roll.cfg", "celeba_glasses.cfg", "celeba_facial_hair.cfg",
            "celeba_glasses_facial_hair.cfg", "csvae_digits.cfg", "vae_digits.cfg",
            "condvae_digits.cfg", "condvae_info_digits.cfg"} <= names


def test_paper_b_digits_configs_differ_only_in_the_model():
    """Fair comparisons: same data, networks, epochs, batch size; CSVAE adds its w_dim."""
    def settings(name):
        with open(os.path.join(REPO, "configs", f"{name}_digits.cfg")) as f:
            return [line.strip() for line in f
                    if line.startswith("--") and not line.startswith(("--model=",
                                                                      "--model_arg=w_dim"))]

    assert settings("vae") == settings("condvae") == settings("condvae_info") == settings(
        "csvae")


def test_flag_helpers():
    assert parse_classes("0-2,5") == (0, 1, 2, 5)
    assert parse_classes(" 7 - 9 ") == (7, 8, 9)
    assert parse_classes("") is None
    assert parse_model_args(["zs_dim=4", "gan_loss=hinge", "units=(1, 2)"]) == {
        "zs_dim": 4, "gan_loss": "hinge", "units": (1, 2)}
    with pytest.raises(ValueError, match="key=value"):
        parse_model_args(["zs_dim"])
    # A command line overrides its flagfile: the last value of a key wins.
    assert parse_model_args(["zs_dim=4", "zs_dim=5"]) == {"zs_dim": 5}


@pytest.mark.parametrize("text", ["a", "3-1", "1,1", "-1", "0-", "1,,2", "1.5", "0-2,1"])
def test_bad_class_text_names_the_flag(text):
    with pytest.raises(ValueError, match="--unlabeled_classes: expected class ids"):
        parse_classes(text, "--unlabeled_classes")


def test_default_workdir_follows_the_flagfile_or_model_and_dataset():
    assert flagfile_of(["--epochs=1", "--flagfile=configs/cifar10.cfg"]) == "configs/cifar10.cfg"
    assert flagfile_of(["--flagfile", "a/b.cfg"]) == "a/b.cfg"
    assert flagfile_of(["--epochs=1"]) is None
    assert default_workdir("lrlivae", "cifar10", "configs/cifar10.cfg") == "runs/cifar10"
    assert default_workdir("lrlivae", "digits") == "runs/lrlivae_digits"
    assert default_workdir("lrlivae", "npz:/data/my set.npz") == "runs/lrlivae_npz_my_set"
    assert default_workdir("csvae", "npz:/d/celeba_dev.npz?subset=facial_hair") == (
        "runs/csvae_npz_celeba_dev_subset_facial_hair")
    assert config_from_flags(_parse(["--model=lrlivae"])).workdir == "runs/lrlivae_digits"
    assert config_from_flags(_parse(["--workdir=w"]), flagfile="x.cfg").workdir == "w"


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
                 "checkpoints"):
        assert (workdir / name).exists(), name
    assert list((workdir / "checkpoints").glob("ckpt-*/manifest.json"))  # a complete one
    assert sorted(os.listdir(workdir / "samples")) == ["epoch_0001.png", "epoch_0002.png"]
    assert glob.glob(str(workdir / "logs" / "train" / "events.*"))
    assert "--model=lrlivae" in (workdir / "flags.txt").read_text()
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["versions"]["keras"]
    # The reported accuracy is the saved model's, on the whole digits test split (360 images).
    import keras
    import numpy as np

    from keras_lsvae import data

    model = keras.models.load_model(str(workdir / "model.keras"))
    images, labels = data.load_arrays("digits", "test", image_size=8)
    predicted = np.argmax(np.asarray(model.predict_labels(images)), -1)
    assert metrics["test_examples"] == len(labels) == 360
    assert metrics["test_class_accuracy"] == pytest.approx(np.mean(predicted == labels))


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    first = train(tiny_config(tmp_path, epochs=1))
    assert first["resumed_from_epoch"] == 0
    from keras_lsvae.training.callbacks import checkpoint_state

    state = checkpoint_state(str(tmp_path))
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
    # the only checkpoint (no previous one to fall back to)
    [weights] = (tmp_path / "checkpoints").glob("ckpt-*/ckpt.weights.h5")
    weights.write_bytes(b"not an h5 file")
    with pytest.raises(RuntimeError, match="cannot be read.*--restart"):
        train(tiny_config(tmp_path, epochs=2))
    # --restart starts over and succeeds
    assert train(tiny_config(tmp_path, epochs=1, restart=True))["resumed_from_epoch"] == 0


def test_resuming_with_another_model_config_is_refused(tmp_path):
    train(tiny_config(tmp_path, epochs=1))
    with pytest.raises(ValueError, match="different batch_size"):
        train(tiny_config(tmp_path, epochs=2, batch_size=4))


def test_bad_run_settings_fail_with_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="--model_arg: unknown.*known"):
        train(tiny_config(tmp_path / "a", model_args={"zs_dimension": 3}))
    with pytest.raises(KeyError, match="unknown model"):
        train(tiny_config(tmp_path / "b", model="nope"))
    with pytest.raises(KeyError, match="known"):
        train(tiny_config(tmp_path / "c", dataset="nope"))
    with pytest.raises(ValueError, match="0..K-1"):
        train(tiny_config(tmp_path / "d", classes=(3, 4)))


def test_learning_rate_factor_closed_form():
    from keras_lsvae.training.callbacks import learning_rate_factor as factor

    assert [factor("constant", e, 5, 0.1) for e in (0, 4, 7)] == [1.0, 1.0, 1.0]
    # half cosine from 1 to a over epochs 0 .. E-1: f(e) = a + (1 - a)(1 + cos(pi e / (E - 1))) / 2
    assert factor("cosine", 0, 5, 0.2) == pytest.approx(1.0)
    assert factor("cosine", 2, 5, 0.2) == pytest.approx(0.6)  # midway: (1 + a) / 2
    assert factor("cosine", 1, 5, 0.2) == pytest.approx(0.2 + 0.8 * (1 + 2 ** -0.5) / 2)
    assert factor("cosine", 4, 5, 0.2) == pytest.approx(0.2)
    assert factor("cosine", 0, 1, 0.2) == pytest.approx(0.2)  # one epoch: the final rate
    assert factor("cosine", 5, 5, 0.2) == 1.0  # fine-tuning epochs: the base rate
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        factor("step", 0, 5, 0.2)
    with pytest.raises(ValueError, match="--lr_schedule: must be one of constant, cosine"):
        tiny_config("/tmp/unused", lr_schedule="step").validate()


def test_cosine_schedule_sets_every_optimizer_per_epoch_and_survives_resume(tmp_path):
    # 3 epochs, a = 0.25: epoch 2 (the last) trains at a x each optimizer's own base rate,
    # including the rates set by multipliers (Lr-LiVAE's latent classifier, GM variances).
    import keras

    from keras_lsvae.training.callbacks import LearningRateSchedule, learning_rate_factor

    config = tiny_config(tmp_path, epochs=3, lr_schedule="cosine", lr_final_fraction=0.25,
                         extensions={"adversary_boost": {"lr_multiplier": 10.0}})
    train(config)
    model = keras.models.load_model(str(tmp_path / "model.keras"))
    rates = {n: float(o.learning_rate) for n, o in model.objective_optimizers.items()}
    assert rates["latent_classifier"] == pytest.approx(0.25 * 10 * config.learning_rate)
    assert rates["decoder"] == pytest.approx(0.25 * config.learning_rate)
    # A restored optimizer holds a decayed rate; the schedule keeps the base rates it was made
    # with and sets the rate from the epoch alone (what a resumed fit calls first).
    fresh = keras.models.load_model(str(tmp_path / "model.keras"))
    fresh.compile(learning_rate=config.learning_rate)
    schedule = LearningRateSchedule(fresh, "cosine", 3, 0.25)
    for optimizer in fresh.objective_optimizers.values():
        optimizer.learning_rate = 1e-9  # as restored from a late checkpoint
    schedule.set_model(fresh)
    schedule.on_epoch_begin(1)
    factor = learning_rate_factor("cosine", 1, 3, 0.25)
    assert float(fresh.objective_optimizers["decoder"].learning_rate) == pytest.approx(
        factor * config.learning_rate)
    # A run resumed from an epoch-2 checkpoint (written at the constant rate: the checkpoint
    # holds the base rates) trains its last epoch at the schedule's rates.
    resumed = tmp_path / "resumed"
    train(tiny_config(resumed, epochs=2, extensions=config.extensions))
    train(dataclasses.replace(config, workdir=str(resumed)))
    again = keras.models.load_model(str(resumed / "model.keras"))
    for name, rate in rates.items():
        assert float(again.objective_optimizers[name].learning_rate) == pytest.approx(rate)


def test_refit_prior_variances_after_training(tmp_path):
    # model.keras holds the ML variances of the training codes (labeled classes only); the
    # checkpoint keeps the learned ones for resuming.
    import keras
    import numpy as np

    from keras_lsvae import data, distributions
    from keras_lsvae.training import build_model
    from keras_lsvae.training.callbacks import Checkpointer

    config = tiny_config(tmp_path, classes=(0, 1, 2), extensions={"prior_refit": {}})
    train(config)
    saved = keras.models.load_model(str(tmp_path / "model.keras"))
    learned = build_model(config, data.info("digits", image_size=8))
    learned.compile()
    Checkpointer(str(tmp_path)).restore(learned)
    images, labels = data.load_arrays("digits", "train", image_size=8, classes=(0, 1, 2))
    expected = distributions.max_likelihood_variances(
        saved.encode(images)["z_s"], labels, saved.prior.means.numpy(),
        learned.prior.variances().numpy())
    np.testing.assert_allclose(saved.prior.variances().numpy(), expected, rtol=1e-4)
    assert not np.allclose(learned.prior.variances().numpy(), expected, rtol=1e-2)


def test_semi_supervised_finetuning_phase(tmp_path):
    metrics = train(tiny_config(tmp_path, classes=(0, 1, 2), unlabeled_dataset="digits",
                                unlabeled_classes=(7, 8, 9), finetune_epochs=1))
    history = json.loads((tmp_path / "history.json").read_text())
    assert metrics["epochs"] == 2 and "u_rec" in history[-1] and "gm_cls" in history[-1]


def test_single_attribute_data_trains_as_two_classes(tmp_path):
    # swiss_roll's one binary attribute (outer half of the roll) becomes classes {0, 1}: the model has 2
    # classes and the reported accuracy is against the attribute column of the test split.
    import keras
    import numpy as np

    from keras_lsvae import data

    metrics = train(tiny_config(tmp_path, dataset="swiss_roll", image_size=None,
                                model_args={"zs_dim": 2, "zu_dim": 2, "n_gm": 1}))
    model = keras.models.load_model(str(tmp_path / "model.keras"))
    assert model.num_classes == 2
    points, attributes = data.load_arrays("swiss_roll", "test")
    predicted = np.argmax(np.asarray(model.predict_labels(points)), -1)
    assert metrics["test_examples"] == len(points) == 2000
    assert metrics["test_class_accuracy"] == pytest.approx(
        np.mean(predicted == attributes[:, 0].astype(int)))


def test_flagfiles_may_include_other_flagfiles(tmp_path):
    child = tmp_path / "child.cfg"
    child.write_text(f"--flagfile={os.path.join(REPO, 'configs', 'debug.cfg')}\n--epochs=7\n")
    config = config_from_flags(_parse([f"--flagfile={child}", "--workdir=/tmp/x"]))
    assert config.epochs == 7 and config.model_args["zs_dim"] == 4


def _run(argv, workdir):
    """train.py in-process with a tiny model on digits (at 8x8 unless argv sets a size or
    point data)."""
    sized = any(a.startswith(("--image_size", "--dataset=toy2d", "--unlabeled_dataset=shapes"))
                for a in argv)
    return run_from_argv(["train.py", f"--workdir={workdir}", "--dataset=digits",
                          *([] if sized else ["--image_size=8"]), "--epochs=1",
                          "--steps_per_epoch=1", "--batch_size=8", "--verbose=0",
                          "--model_arg=width=8", "--model_arg=n_gm=1", *argv])


def test_command_line_model_args_override_the_flagfile(tmp_path):
    config = config_from_flags(_parse([f"--flagfile={os.path.join(REPO, 'configs', 'debug.cfg')}",
                                       "--model_arg=zs_dim=6"]))
    assert config.model_args["zs_dim"] == 6 and config.model_args["width"] == 8


@pytest.mark.parametrize("argv, message", [
    (["--finetune_epochs=2"], "--finetune_epochs=2 needs --unlabeled_dataset"),
    (["--unlabeled_dataset=digits"], "--unlabeled_dataset=digits is used only by"),
    (["--unlabeled_dataset=shapes", "--finetune_epochs=1"],
     r"--unlabeled_dataset=shapes has examples of shape \(32, 32, 1\)"),
    (["--unlabeled_classes=7-9"], "--unlabeled_classes needs --unlabeled_dataset"),
    (["--classes=a"], "--classes: expected class ids"),
    (["--classes=1-3"], "--classes: must be 0..K-1"),
    (["--unlabeled_dataset=digits", "--finetune_epochs=1", "--unlabeled_classes=x"],
     "--unlabeled_classes: expected class ids"),
    (["--model_arg=zs_dim=abc"], "--model_arg=zs_dim='abc': zs_dim must be an integer"),
    (["--model_arg=mlp_units=64"], "mlp_units must be a tuple"),
    (["--model_arg=kl_weight=high"], "unknown|kl_weight"),
    (["--model_arg=lkd_weight=True"], "lkd_weight must be a number"),
    (["--model_arg=input_shape=(8, 8, 1)"], "input_shape is set by the data set.*--image_size"),
    (["--model_arg=num_classes=3"], "num_classes is set by the data set.*--classes"),
    (["--model_arg=seed=3"], "seed is set by --seed"),
    (["--model_arg=zs_dimension=3"], "--model_arg: unknown \\['zs_dimension'\\]"),
    (["--model_arg=gan_loss=wasserstein"], "--model=lrlivae with --model_arg.*gan_loss"),
    (["--num_cpu_replicas=2"], "--num_cpu_replicas=2 needs --strategy=mirrored"),
    (["--strategy=mirrored", "--num_cpu_replicas=2", "--jit_compile"],
     "--jit_compile does not work with --num_cpu_replicas=2"),
    (["--batch_size=0"], "--batch_size: must be >= 1"),
    (["--steps_per_epoch=0"], "--steps_per_epoch: must be >= 1"),
    (["--checkpoint_every_steps=0"], "--checkpoint_every_steps: must be >= 1"),
    (["--learning_rate=0"], "--learning_rate: must be > 0"),
    (["--lr_schedule=cosine", "--lr_final_fraction=1.5"], r"--lr_final_fraction: must be in \[0, 1\]"),
    (["--dataset=toy2d", "--image_size=8"], "--image_size: .*points"),
    (["--dataset=toy2d", "--flip"], "--flip: .*points"),
])
def test_impossible_flag_combinations_fail_before_anything_is_written(tmp_path, argv, message):
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        _run(argv, workdir)
    assert not workdir.exists()


def test_tpu_strategy_without_a_tpu_fails_at_once_saying_what_was_tried(tmp_path, monkeypatch):
    """No TPU here: TF's own error was an obscure "No OpKernel ... 'ConfigureDistributedTPU'"
    traceback. $TPU_NAME unset: only the local machine is tried, no network."""
    monkeypatch.delenv("TPU_NAME", raising=False)
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"--strategy=tpu: no TPU found: tried a TPU attached "
                                         r"to this machine .*\$TPU_NAME is not set.*set "
                                         r"\$TPU_NAME to its name or address"):
        _run(["--strategy=tpu"], workdir)
    assert not workdir.exists()


def test_missing_tfds_data_with_nodownload_fails_before_anything_is_written(tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="download_and_prepare"):
        _run(["--dataset=mnist", "--nodownload", f"--data_dir={tmp_path / 'tfds'}"], workdir)
    assert not workdir.exists()


def test_failed_resume_check_keeps_the_old_flags_and_config(tmp_path):
    workdir = tmp_path / "run"
    _run([], workdir)
    flags_before = (workdir / "flags.txt").read_text()
    config_before = (workdir / "config.json").read_text()
    with pytest.raises(ValueError, match="different batch_size.*--restart"):
        _run(["--batch_size=4"], workdir)
    assert (workdir / "flags.txt").read_text() == flags_before
    assert (workdir / "config.json").read_text() == config_before
    assert "--batch_size=8" in flags_before


def test_restart_clears_every_old_output(tmp_path):
    workdir = tmp_path / "run"
    _run(["--epochs=2"], workdir)
    for name in ("points", "figures"):  # written by toy runs and visualize.py
        (workdir / name).mkdir()
        (workdir / name / "old.png").write_bytes(b"old")
    assert (workdir / "samples" / "epoch_0002.png").exists()
    metrics = _run(["--restart"], workdir)
    assert metrics["resumed_from_epoch"] == 0
    assert not (workdir / "points").exists() and not (workdir / "figures").exists()
    assert sorted(os.listdir(workdir / "samples")) == ["epoch_0001.png"]
    history = json.loads((workdir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1]
    assert "--restart" in (workdir / "flags.txt").read_text()


def test_old_model_arg_names_become_extensions(tmp_path):
    # Flagfiles written before the extensions existed keep working: the old --model_arg names
    # (keras_lsvae.models.extensions.LEGACY_ARGUMENTS) are translated, a weight of 0 is "off".
    config = tiny_config(tmp_path, model_args={**tiny_config(tmp_path).model_args,
                                               "hsic_weight": 2.0, "mmd_weight": 0.0,
                                               "adversary_steps": 3,
                                               "refit_prior_variances": True}).validate()
    assert config.extensions == {"hsic": {"weight": 2.0}, "adversary_boost": {"steps": 3},
                                 "prior_refit": {}}
    assert not {"hsic_weight", "mmd_weight", "adversary_steps"} & set(config.model_args)


def test_extension_flag_parses_names_and_parameters():
    from keras_lsvae.models.extensions import parse_flag

    assert parse_flag(["prior_refit", "hsic.weight=600", "hsic.bandwidth_scales=(0.05,1.0)",
                       "adversary_input.code=mean"]) == {
        "prior_refit": {}, "hsic": {"weight": 600, "bandwidth_scales": (0.05, 1.0)},
        "adversary_input": {"code": "mean"}}
    with pytest.raises(ValueError, match="NAME.PARAM=VALUE"):
        parse_flag(["weight=3"])


def test_an_extension_the_model_does_not_offer_fails_before_anything_is_written(tmp_path):
    from keras_lsvae import data
    from keras_lsvae.training import build_model

    config = tiny_config(tmp_path / "run", extensions={"prior_refit": {}}, model="cvae",
                         model_args={"width": 8, "z_dim": 3})
    with pytest.raises(ValueError, match="--extension: extension 'prior_refit' does not apply "
                                         "to CVAE"):
        build_model(config, data.info("digits", image_size=8))
