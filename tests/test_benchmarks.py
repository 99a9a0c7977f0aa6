"""The benchmark suites' protocols (keras_lsvae.evaluation) on a tiny untrained model (numbers
meaningless, structure and invariants real), their configs and data checks; the suites
themselves run in scripts/benchmark.py, not here."""

import filecmp
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_lsvae import evaluation, metrics
from keras_lsvae.benchmarks import common
from keras_lsvae.benchmarks import lrlivae as bench
from keras_lsvae.models import capabilities as caps
from keras_lsvae.registry import BENCHMARKS
from tests.helpers import image_batch, tiny_lrlivae

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_suite_configs_ship_with_the_package_and_are_the_repositorys():
    """Every flagfile a suite reads is package data (an installed package runs its suites) and
    the same file as configs/<name> (they cannot drift)."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO, "setup.cfg"))
    assert "configs/*.cfg" in setup["options.package_data"]["keras_lsvae"]
    import keras_lsvae

    assert os.path.dirname(common.CONFIGS_DIR) == os.path.dirname(keras_lsvae.__file__)
    repo_configs = sorted(n for n in os.listdir(os.path.join(REPO, "configs"))
                          if n.endswith(".cfg"))
    assert sorted(n for n in os.listdir(common.CONFIGS_DIR)
                  if n.endswith(".cfg")) == repo_configs
    for name in repo_configs:
        assert filecmp.cmp(common.config_path(name), os.path.join(REPO, "configs", name),
                           shallow=False), name


def test_suites_read_no_data_path_they_were_not_given(tmp_path):
    for suite in ("lrlivae_mnist", "csvae", "paper_a_mnist"):
        with pytest.raises(FileNotFoundError, match=f"{suite}: no data file given; pass "
                                                    "--data=PATH/mnist_dev.npz"):
            BENCHMARKS.get(suite)(str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_swap_partners_always_have_another_label():
    rng = np.random.default_rng(0)
    labels_s = np.array([0, 1, 2, 2, 1])
    pool = np.array([0, 0, 1, 2, 1, 2])
    partners = evaluation.swap_partners(labels_s, pool, rng)
    assert np.all(pool[partners] != labels_s)


def test_inpainting_report_compares_with_mean_fill():
    model = tiny_lrlivae()
    images, labels = image_batch(6)
    report = evaluation.inpainting_report(model, images, labels, images.mean(axis=0))
    assert set(report) == set(evaluation.PAPER_MASKS)
    for entry in report.values():
        assert entry["mean_fill"] >= 0
        for method in ("encode", "optimize"):
            assert entry[method] >= 0
            assert entry[f"{method}_beats_mean_fill"] == (entry[method] < entry["mean_fill"])


def test_disentanglement_report_has_every_number_of_the_lrlivae_suites():
    model = tiny_lrlivae()
    train_x, train_y = image_batch(60, seed=1)
    test_x, test_y = image_batch(30, seed=2)
    classifier = metrics.train_eval_classifier(train_x, train_y, epochs=1, num_classes=3)
    result = evaluation.disentanglement_report(model, train_x, train_y, test_x, test_y,
                                               classifier, samples_per_class=4)
    for key in ("zs_accuracy", "zu_leakage_accuracy", "conditional_accuracy",
                "swap_consistency", "swap_follows_zu", "recon_mse", "diversity_generated",
                "diversity_real", "fid_vs_test"):
        assert np.isfinite(result[key]), key
    # Each headline number is what its definition gives when recomputed from the model's API.
    predicted = np.argmax(np.asarray(model.predict_labels(test_x)), -1)
    assert result["zs_accuracy"] == np.mean(predicted == test_y)
    requested = np.repeat(np.arange(3), 4)
    generated = np.asarray(model.generate(requested, seed=0))
    judged = np.argmax(metrics.predict_probs(classifier, generated), -1)
    assert result["conditional_accuracy"] == np.mean(judged == requested)
    partners = evaluation.swap_partners(test_y, test_y, np.random.default_rng(0))
    swapped = np.asarray(model.swap(test_x, test_x[partners]))
    judged = np.argmax(metrics.predict_probs(classifier, swapped), -1)
    assert result["swap_consistency"] == np.mean(judged == test_y)
    assert result["swap_follows_zu"] == np.mean(judged == test_y[partners])
    recon = np.asarray(model.reconstruct(test_x))
    assert result["recon_mse"] == pytest.approx(np.mean((recon - test_x) ** 2), rel=1e-6)
    assert result["zu_leakage_accuracy"] == max(result["zu_leakage"][k]
                                                for k in ("linear", "knn", "mlp"))


def test_suites_are_registered():
    assert {"lrlivae_digits", "lrlivae_digits_seeds", "lrlivae_shapes",
            "lrlivae_mnist", "lrlivae_semi"} <= set(BENCHMARKS.names())


def test_mnist_suite_says_which_file_to_pass_when_its_data_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz.*pass --data=PATH/mnist_dev.npz"):
        bench.lrlivae_mnist(str(tmp_path), data_path=str(tmp_path / "missing.npz"))
    assert not any(tmp_path.iterdir())  # nothing trained or written


def test_benchmark_script_reports_a_missing_data_file_in_one_line(tmp_path):
    # scripts/benchmark.py as typed: an "error:" line saying what to pass, exit code 2, no
    # traceback, nothing written (as scripts/train.py does for bad settings)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, os.path.join(repo, "scripts", "benchmark.py"), "--suite=lrlivae_mnist",
         f"--data={tmp_path / 'missing.npz'}", f"--out={tmp_path / 'out'}"],
        capture_output=True, text=True, timeout=300, cwd=repo)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: lrlivae_mnist: no data file at" in result.stderr
    assert "pass --data=PATH/mnist_dev.npz" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_mnist_targets_are_the_issue_targets():
    good = {"zs_accuracy": 0.98, "zu_leakage_accuracy": 0.2, "conditional_accuracy": 0.95,
            "swap_consistency": 0.95, "recon_mse": 0.025}
    assert all(bench.targets_met(good, bench.MNIST_TARGETS).values())
    for key, worse in (("zs_accuracy", 0.979), ("zu_leakage_accuracy", 0.201),
                       ("conditional_accuracy", 0.949), ("swap_consistency", 0.949),
                       ("recon_mse", 0.0251)):
        assert not bench.targets_met(dict(good, **{key: worse}), bench.MNIST_TARGETS)[key]


def test_targets_met_checks_each_bound_in_its_direction():
    inpaint = {"right_half": {"optimize_beats_mean_fill": True},
               "bottom_half": {"optimize_beats_mean_fill": False}}
    result = {"zs_accuracy": 0.97, "zu_leakage_accuracy": 0.2, "conditional_accuracy": 0.899,
              "swap_consistency": 0.95, "inpaint_mse": inpaint}
    met = bench.targets_met(result)
    assert met == {"zs_accuracy": True, "zu_leakage_accuracy": True,
                   "conditional_accuracy": False, "swap_consistency": True,
                   "inpaint_beats_mean_fill": False}
    assert not bench.targets_met(dict(result, zu_leakage_accuracy=0.21))["zu_leakage_accuracy"]


def test_digits_benchmark_trains_exactly_the_main_config():
    config = bench.digits_config("/tmp/unused", seed=3)
    assert config.dataset == "digits" and config.model == "lrlivae" and config.seed == 3
    from keras_lsvae.training.flags import config_from_flagfile
    main_job = config_from_flagfile(os.path.join(REPO, "configs", "digits.cfg"),
                                    workdir="/tmp/unused")
    assert config.model_args == main_job.model_args and config.epochs == main_job.epochs
    assert config.model_args["n_gm"] == 3
    assert bench.digits_config("/tmp/unused", epochs=2).epochs == 2


@pytest.fixture
def semi_stubs(monkeypatch):
    """The §3.6 case without training: ``train`` records its configs, every model loaded is
    one tiny untrained Lr-LiVAE; a 3-class test batch and a classifier for it.
    Returns (recorded configs, images, labels, classifier)."""
    trained = []
    monkeypatch.setattr(bench, "train", trained.append)
    model = tiny_lrlivae()
    monkeypatch.setattr(evaluation, "load_workdir_model", lambda workdir: model)
    images, labels = image_batch(12, seed=3)
    classifier = metrics.train_eval_classifier(images, labels, epochs=1, num_classes=3)
    return trained, images, labels, classifier


def test_semi_supervised_fine_tunes_on_the_configs_own_data(tmp_path, semi_stubs):
    """§3.6 on MNIST must fine-tune on unlabeled MNIST images of the unseen classes (it once
    hard-coded the digits data set), after a first run on the seen classes only."""
    trained, images, labels, classifier = semi_stubs
    config = bench.digits_config(str(tmp_path), epochs=3, dataset="npz:/data/mnist_dev.npz")
    report = bench._semi_supervised(str(tmp_path), config, classifier, images, labels, 0,
                                    seen=(0,), unseen=(1, 2), name="semi")
    first, second = trained
    assert first.classes == (0,) and first.unlabeled_dataset is None
    assert second.unlabeled_dataset == "npz:/data/mnist_dev.npz"
    assert second.unlabeled_classes == (1, 2) and second.finetune_epochs == 1
    assert first.workdir == second.workdir == str(tmp_path / "semi") and not second.restart
    assert report["num_unseen_test"] == int(np.isin(labels, (1, 2)).sum())
    # The supervised phase at a constant rate (digits.cfg's own is cosine), kept when resumed.
    assert config.lr_schedule == "cosine"
    assert first.lr_schedule == second.lr_schedule == report["lr_schedule"] == "constant"


def test_semi_suite_runs_every_seed_and_summarises(tmp_path, monkeypatch, semi_stubs):
    trained, images, labels, classifier = semi_stubs
    monkeypatch.setattr(bench, "_digits_classifier", lambda seed, epochs: (classifier, 0.5))
    monkeypatch.setattr(bench.data, "load_arrays", lambda *args, **kwargs: (images, labels))
    monkeypatch.setattr(bench, "_semi_supervised", _recording_semi(bench._semi_supervised))
    result = bench.lrlivae_semi(str(tmp_path), seed=4, epochs=3, num_seeds=2,
                                lr_schedule="cosine")
    assert [run["seed"] for run in result["runs"]] == result["seeds"] == [4, 5]
    assert [config.seed for config in trained] == [4, 4, 5, 5]
    assert {config.workdir for config in trained} == {
        str(tmp_path / "lrlivae_digits_semi_seed4"), str(tmp_path / "lrlivae_digits_semi_seed5")}
    assert all(config.lr_schedule == "cosine" for config in trained)
    assert all(config.epochs == 3 for config in trained)
    values = [run["after_finetuning"]["unseen_swap_consistency"] for run in result["runs"]]
    assert result["summary"]["after_finetuning.unseen_swap_consistency"] == {
        "median": float(np.median(values)), "min": min(values), "max": max(values)}


def _recording_semi(semi):
    """_semi_supervised with seen (0,) and unseen (1, 2), for 3-class test batches."""
    def run(*args, **kwargs):
        return semi(*args, seen=(0,), unseen=(1, 2), **kwargs)
    return run


def test_semi_suite_says_which_data_file_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="lrlivae_semi: no data file at"):
        bench.lrlivae_semi(str(tmp_path), data_path=str(tmp_path / "missing.npz"))


def test_run_suite_names_options_a_suite_does_not_take(tmp_path):
    from keras_lsvae.benchmarks import run_suite

    with pytest.raises(ValueError, match="'lrlivae_digits' does not take data_path"):
        run_suite("lrlivae_digits", str(tmp_path), data_path="x.npz")


# ----------------------------------------------------------------------------- paper B (csvae)


def test_transfer_pairs_cover_every_other_class_once():
    index, targets = evaluation.transfer_pairs(np.array([0, 2, 1]), 3)
    pairs = sorted(zip(index.tolist(), targets.tolist()))
    assert pairs == [(0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (2, 2)]


class _PaintsTarget(caps.ManipulatesAttributes):
    """Stand-in baseline: G_ij paints the image with the target class id / 10, except that
    it gets class 2 wrong (paints 0); records the source labels it was given."""

    def __init__(self):
        self.sources = []

    def manipulate(self, images, source, target):
        self.sources.append(np.asarray(source))
        value = np.argmax(target, -1).astype(np.float32)
        value[value == 2] = 0
        return np.broadcast_to(value[:, None, None, None] / 10, images.shape).copy()


def _reads_value(images):
    classes = np.rint(np.asarray(images).mean(axis=(1, 2, 3)) * 10).astype(int)
    return np.eye(3, dtype=np.float32)[classes]


def test_transfer_report_scores_the_switched_images():
    images = np.full((4, 2, 2, 1), 0.5, np.float32)
    labels = np.array([0, 1, 2, 0])
    model = _PaintsTarget()
    report = evaluation.transfer_report(model, images, labels, 3, classifier=_reads_value,
                                     true_targets=lambda rows, goal: np.broadcast_to(
                                         (goal / 10)[:, None, None, None], (len(rows), 2, 2, 1)),
                                     batch_size=3)
    index, targets = evaluation.transfer_pairs(labels, 3)
    assert report["num_changed"] == 8
    # Every switch to class 2 is painted 0 and misread: accuracy = share of targets != 2.
    assert report["accuracy"] == pytest.approx(np.mean(targets != 2))
    painted = np.where(targets == 2, 0, targets) / 10
    assert report["change"] == pytest.approx(np.mean((painted - 0.5) ** 2))
    assert report["target_mse"] == pytest.approx(np.mean((painted - targets / 10) ** 2))
    # The source labels handed to G_ij are the images' own classes, one-hot.
    np.testing.assert_array_equal(np.concatenate(model.sources),
                                  np.eye(3)[labels[index]])


def test_csvae_suite_is_registered_and_requires_its_data(tmp_path):
    assert "csvae" in BENCHMARKS.names()
    with pytest.raises(FileNotFoundError, match="--data="):
        BENCHMARKS.get("csvae")(str(tmp_path), data_path=str(tmp_path / "missing.npz"))


def test_blur_spreads_an_impulse_within_each_image_and_keeps_its_mass():
    images = np.zeros((2, 9, 9, 1), np.float32)
    images[0, 4, 4, 0] = 1.0
    blurred = evaluation.blur(images, 1.0)
    assert blurred[0].sum() == pytest.approx(1.0, rel=1e-3)
    assert blurred[0, 4, 4, 0] < 0.2 and blurred[0, 4, 5, 0] > 0.05
    np.testing.assert_array_equal(blurred[1], 0.0)  # no mixing across the batch axis
