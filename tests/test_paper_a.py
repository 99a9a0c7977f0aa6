"""The paper A comparison suites (keras_lsvae/benchmarks/paper_a.py): orderings, flat keys,
configs, and a run with tiny models and data (the real suites are run by scripts/benchmark.py)."""

import json
import os

import numpy as np
import pytest

from keras_lsvae import evaluation
from keras_lsvae.benchmarks import common, paper_a, run_suite
from keras_lsvae.registry import BENCHMARKS
from keras_lsvae.training.config import TrainConfig
from tests.test_evaluate import write_tiny_npz

PAPER_TABLE = {"lrlivae": {"is_mean": 7.04, "diversity": 0.0149},
               "cvaegan": {"is_mean": 6.99, "diversity": 0.0136},
               "cgan": {"is_mean": 6.27}, "cvae": {"is_mean": 3.01}}


def test_paper_a_numbers_satisfy_paper_a_orderings():
    result = paper_a.orderings(PAPER_TABLE)
    assert result["is_mean"]["holds"] is True and result["diversity"]["holds"] is True
    assert result["is_mean"]["claim"] == "lrlivae >= cvaegan > cgan > cvae"
    assert result["is_mean"]["measured_order"] == ["lrlivae", "cvaegan", "cgan", "cvae"]
    assert result["diversity"]["pairs"] == {"lrlivae > cvaegan": True}


def test_orderings_fail_on_each_violated_pair_and_respect_ties():
    table = json.loads(json.dumps(PAPER_TABLE))
    table["cgan"]["is_mean"] = 7.0  # above cVAE-GAN
    result = paper_a.orderings(table)["is_mean"]
    assert result["holds"] is False
    assert result["pairs"] == {"lrlivae >= cvaegan": True, "cvaegan > cgan": False,
                               "cgan > cvae": True}
    tie = json.loads(json.dumps(PAPER_TABLE))
    tie["cvaegan"].update(is_mean=7.04, diversity=0.0149)  # equal to Lr-LiVAE
    tied = paper_a.orderings(tie)
    assert tied["is_mean"]["holds"] is True  # ">=": a tie keeps "ours >= cVAE-GAN"
    assert tied["diversity"]["holds"] is False  # ">": a tie is not "more diverse"
    flipped = json.loads(json.dumps(PAPER_TABLE))
    flipped["cvae"]["is_mean"] = 6.5
    assert paper_a.orderings(flipped)["is_mean"]["pairs"]["cgan > cvae"] is False


def test_orderings_cannot_be_judged_without_a_number():
    table = {k: dict(v) for k, v in PAPER_TABLE.items() if k != "cgan"}
    result = paper_a.orderings(table)["is_mean"]
    assert result["holds"] is None and result["pairs"]["cvaegan > cgan"] is None
    assert result["measured_order"] == ["lrlivae", "cvaegan", "cvae"]


def test_flat_table_has_every_model_metric_key():
    summary = evaluation.aggregate([
        {"model": "cvae", "seed": s, "metrics": {k: float(s + 1) for k in
                                                  evaluation.METRICS_ORDER}} for s in (0, 1)])
    flat = paper_a.flat_table(summary, paper_a.PAPER_A_MODELS)
    expected = {f"{m}.{k}" for m in paper_a.PAPER_A_MODELS for k in paper_a.SUITE_METRICS}
    assert expected <= set(flat)
    assert flat["cvae.fid"] == 1.5 and flat["cvae.fid_std"] == pytest.approx(np.sqrt(0.5))
    assert flat["cgan.fid"] is None and "cgan.fid_std" not in flat


def test_suites_are_registered_and_the_mnist_suite_names_its_missing_file(tmp_path):
    assert "paper_a_digits" in BENCHMARKS and "paper_a_mnist" in BENCHMARKS
    with pytest.raises(FileNotFoundError, match="pass --data=PATH/mnist_dev.npz"):
        run_suite("paper_a_mnist", str(tmp_path), data_path=str(tmp_path / "none.npz"))


def test_digits_suite_trains_each_models_config_under_one_schedule():
    configs = {name: paper_a._config_factory(cfg)("w", 3)
               for name, cfg in paper_a.DIGITS_CONFIGS.items()}
    assert {name: c.model for name, c in configs.items()} == {n: n for n in configs}
    schedule = {(c.dataset, c.epochs, c.steps_per_epoch, c.batch_size, c.learning_rate,
                 c.lr_schedule, c.lr_final_fraction, c.seed, c.model_args.get("width"))
                for c in configs.values()}
    assert schedule == {("digits", 60, 50, 64, 5e-4, "cosine", 0.1, 3, 32)}
    quick = paper_a._config_factory("cvae_digits.cfg", 2)
    assert quick("w", 0).epochs == 2 and quick("w", 0).restart


def test_mnist_suite_trains_every_model_under_mnist_dev_schedule(tmp_path, monkeypatch):
    """The baselines' digits configs take mnist_dev.cfg's data, size and whole schedule (also
    where the digits configs' schedule differs from it: a changed copy of mnist_dev.cfg)."""
    reference, factories = paper_a.paper_a_mnist_configs("npz:/data/mnist_dev.npz")
    configs = {name: make("w", 1) for name, make in factories.items()}
    assert {name: c.model for name, c in configs.items()} == {n: n for n in
                                                              paper_a.PAPER_A_MODELS}
    schedule = {(c.dataset, c.image_size, c.epochs, c.steps_per_epoch, c.batch_size,
                 c.learning_rate, c.lr_schedule, c.lr_final_fraction, c.seed)
                for c in configs.values()}
    assert schedule == {("npz:/data/mnist_dev.npz", reference.image_size, reference.epochs,
                         reference.steps_per_epoch, reference.batch_size,
                         reference.learning_rate, reference.lr_schedule,
                         reference.lr_final_fraction, 1)}
    assert reference.image_size == 32 and reference.lr_schedule == "cosine"
    for name in os.listdir(common.CONFIGS_DIR):
        with open(common.config_path(name)) as f:
            text = f.read()
        if name == "mnist_dev.cfg":
            text = (text.replace("--lr_schedule=cosine", "--lr_schedule=constant")
                    .replace("--learning_rate=5e-4", "--learning_rate=2e-4")
                    + "--lr_final_fraction=0.3\n")
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(common, "CONFIGS_DIR", str(tmp_path))
    _, changed = paper_a.paper_a_mnist_configs("npz:/data/mnist_dev.npz")
    assert {(make("w", 0).learning_rate, make("w", 0).lr_schedule,
             make("w", 0).lr_final_fraction) for make in changed.values()} == {
        (2e-4, "constant", 0.3)}
    _, short = paper_a.paper_a_mnist_configs("npz:/data/mnist_dev.npz", epochs=2,
                                             models=("cgan",))
    assert list(short) == ["cgan"] and short["cgan"]("w", 0).epochs == 2


def _tiny_configs(dataset):
    args = {"lrlivae": {"width": 8, "zs_dim": 3, "zu_dim": 2, "n_gm": 1,
                        "latent_classifier_units": (8,)}}

    def factory(name):
        def make(workdir, seed):
            return TrainConfig(workdir=workdir, model=name, dataset=dataset, epochs=1,
                               steps_per_epoch=2, batch_size=8, samples_per_class=2, verbose=0,
                               seed=seed, restart=True,
                               model_args=args.get(name, {"width": 8, "z_dim": 3}))
        return make
    return {name: factory(name) for name in paper_a.PAPER_A_MODELS}


def test_comparison_writes_every_model_metric_key_and_a_table(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    dataset = write_tiny_npz(tmp_path / "tiny.npz")
    data = evaluation.load_eval_data(dataset)
    result = paper_a.run_comparison("paper_a_tiny", str(tmp_path), _tiny_configs(dataset), data,
                                    seeds=[0], classifier_dir=str(tmp_path / "cls"),
                                    classifier_epochs=1, samples_per_class=4)
    for model in paper_a.PAPER_A_MODELS:
        for metric in paper_a.SUITE_METRICS:
            key = f"{model}.{metric}"
            assert key in result
            if (model, metric) == ("cgan", "inpaint_mse"):
                assert result[key] is None  # no encoder
            else:
                assert isinstance(result[key], float), key
    assert result["eval_classifier_test_accuracy"] == result["eval_classifier"]["test_accuracy"]
    # The orderings are computed from the table's own numbers.
    table = {m: {k: result[f"{m}.{k}"] for k in ("is_mean", "diversity")}
             for m in paper_a.PAPER_A_MODELS}
    assert result["orderings"] == json.loads(json.dumps(paper_a.orderings(table)))
    assert result["inception_v3"]["message"].startswith("inception_v3: not available")
    markdown = (tmp_path / "paper_a_tiny.md").read_text()
    rows = [line.split("|")[1].strip() for line in markdown.splitlines()
            if line.startswith("| ")][1:]
    assert rows == list(paper_a.PAPER_A_MODELS)
    assert "Paper A ordering of is_mean (lrlivae >= cvaegan > cgan > cvae)" in markdown


def test_missing_models_are_skipped_only_when_asked(tmp_path):
    dataset = write_tiny_npz(tmp_path / "tiny.npz")
    data = evaluation.load_eval_data(dataset)
    configs = {"cgan": _tiny_configs(dataset)["cgan"], "cvae": None}
    with pytest.raises(ValueError, match="model 'cvae' or its config is not available"):
        paper_a.run_comparison("t", str(tmp_path), configs, data, [0],
                               str(tmp_path / "cls"), 1, models=("cvae", "cgan"))
    result = paper_a.run_comparison("t", str(tmp_path), configs, data, [0],
                                    str(tmp_path / "cls"), 1, models=("cvae", "cgan"),
                                    skip_missing=True, samples_per_class=4)
    assert "cvae" in result["skipped"] and result["cvae.fid"] is None
    assert isinstance(result["cgan.fid"], float)


@pytest.mark.slow
def test_digits_suite_with_one_epoch_writes_every_key(tmp_path, monkeypatch):
    """The real suite end to end (configs/*digits.cfg at 1 epoch of 50 steps): ~3-4 minutes."""
    monkeypatch.setenv(evaluation.ENV_CLASSIFIER_DIR, str(tmp_path / "cls"))
    run_suite("paper_a_digits", str(tmp_path), epochs=1, num_seeds=1)
    with open(tmp_path / "paper_a_digits.json") as f:
        result = json.load(f)
    keys = {f"{m}.{k}" for m in paper_a.PAPER_A_MODELS for k in paper_a.SUITE_METRICS}
    assert keys <= set(result) and result["cgan.inpaint_mse"] is None
    assert all(result[k] is not None for k in keys - {"cgan.inpaint_mse"})
    assert (tmp_path / "paper_a_digits.md").exists() and not result["skipped"]
    assert result["eval_classifier_test_accuracy"] > 0.9
    assert set(result["orderings"]) == {"is_mean", "diversity"}
    workdirs = {r["workdir"] for r in result["runs"].values()}
    assert {os.path.basename(w) for w in workdirs} == {
        f"paper_a_digits_{m}_seed0" for m in paper_a.PAPER_A_MODELS}
