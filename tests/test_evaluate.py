"""keras_lsvae.evaluation, scripts/evaluate.py and the local-only Inception-v3 metrics.

Tiny shapes throughout: an 8x8 npz data set of 3 classes, runs of 1 epoch x 2 steps, a
classifier of 1 epoch. No network: Inception-v3 is a monkeypatched builder."""

import json
import os

import keras
import numpy as np
import pytest
from absl import flags

from keras_lsvae import evaluation, metrics
from keras_lsvae import models as models_lib
from keras_lsvae.metrics import inception_v3
from keras_lsvae.training import train
from keras_lsvae.training.config import TrainConfig
from tests.helpers import tiny_lrlivae

K = 3


def _blobs(n, seed):
    """8x8 images whose class is where a bright square sits (learnable, non-trivial)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % K
    images = rng.uniform(0, 0.2, size=(n, 8, 8, 1)).astype(np.float32)
    for i, label in enumerate(labels):
        images[i, 1:5, 2 * label:2 * label + 3] += 0.7
    return np.clip(images, 0, 1), labels.astype(np.int64)


def write_tiny_npz(path):
    train_x, train_y = _blobs(48, 0)
    test_x, test_y = _blobs(24, 1)
    np.savez(path, images_train=train_x, labels_train=train_y, images_test=test_x,
             labels_test=test_y)
    return f"npz:{path}"


def tiny_run(workdir, dataset, model="lrlivae", seed=0, image_size=None):
    args = {"lrlivae": {"width": 8, "zs_dim": 3, "zu_dim": 2, "n_gm": 1,
                        "latent_classifier_units": (8,)}}.get(model, {"width": 8, "z_dim": 3})
    train(TrainConfig(workdir=str(workdir), model=model, dataset=dataset, epochs=1,
                      steps_per_epoch=2, batch_size=8, samples_per_class=2, verbose=0,
                      seed=seed, image_size=image_size, model_args=args))
    return str(workdir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny data set and three finished runs on it: lrlivae seeds 0 and 1, cgan seed 0."""
    root = tmp_path_factory.mktemp("evaluate")
    dataset = write_tiny_npz(root / "tiny.npz")
    return {"root": root, "dataset": dataset,
            "lrlivae": [tiny_run(root / f"lr{s}", dataset, seed=s) for s in (0, 1)],
            "cgan": tiny_run(root / "cgan0", dataset, model="cgan")}


@pytest.fixture
def no_inception_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv(inception_v3.ENV_WEIGHTS, raising=False)
    return tmp_path / "keras_home" / "models"


def _evaluate_flags(argv):
    values = flags.FlagValues()
    evaluation.define_flags(values)
    values(["evaluate.py", *argv])
    return values


# ------------------------------------------------------------------ evaluation classifiers
def test_classifier_is_trained_once_per_data_set_and_reused(runs, tmp_path):
    data = evaluation.load_eval_data(runs["dataset"])
    before = evaluation.classifiers.TRAINING_COUNT
    first = evaluation.get_eval_classifier(data, str(tmp_path), epochs=1)
    mtime = os.path.getmtime(first.path)
    second = evaluation.get_eval_classifier(data, str(tmp_path), epochs=1)
    assert evaluation.classifiers.TRAINING_COUNT == before + 1
    assert first.trained_now and not second.trained_now
    assert second.path == first.path and os.path.getmtime(second.path) == mtime
    assert second.backbone == "cnn"  # 8 px: the keras-cv backbone needs >= 32 px
    # Its own test accuracy is measured and reported on reuse too (same weights, same number).
    assert second.test_accuracy == pytest.approx(first.test_accuracy)
    assert second.describe()["test_accuracy"] == second.test_accuracy
    with open(os.path.join(tmp_path, f"{first.key}.json")) as f:
        assert json.load(f)["epochs"] == 1
    # Another image size is another classifier; retrain=True replaces the cached one.
    resized = evaluation.load_eval_data(runs["dataset"], image_size=16)
    other = evaluation.get_eval_classifier(resized, str(tmp_path), epochs=1)
    assert other.trained_now and other.key != first.key and "16x16x1" in other.key
    again = evaluation.get_eval_classifier(data, str(tmp_path), epochs=1, retrain=True)
    assert again.trained_now and evaluation.classifiers.TRAINING_COUNT == before + 3


def test_classifier_key_names_data_image_size_backbone_and_file_content(tmp_path):
    assert evaluation.classifier_key("digits", (16, 16, 1), "cnn") == "digits_16x16x1_cnn"
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((2, 4, 4, 1)), labels=np.array([0, 1]))
    key_a = evaluation.classifier_key(f"npz:{path}", (4, 4, 1), "cnn")
    np.savez(path, images=np.ones((2, 4, 4, 1)), labels=np.array([0, 1]))
    key_b = evaluation.classifier_key(f"npz:{path}", (4, 4, 1), "cnn")
    assert key_a.startswith("npz_d_") and key_a != key_b  # new content: not the old classifier
    assert evaluation.resolve_backbone("auto", (32, 32, 1)) == "resnet_v2"
    assert evaluation.resolve_backbone("auto", (28, 28, 1)) == "cnn"
    with pytest.raises(ValueError, match="unknown 'vgg'"):
        evaluation.resolve_backbone("vgg", (32, 32, 1))


# ----------------------------------------------------------------------- evaluate_model
def _tiny(name):
    keras.utils.set_random_seed(0)
    if name == "lrlivae":
        return tiny_lrlivae()
    return models_lib.get(name, input_shape=(8, 8, 1), num_classes=K, z_dim=3, width=8, seed=0)


@pytest.fixture(scope="module")
def arrays_and_classifier(tmp_path_factory):
    train_x, train_y = _blobs(48, 0)
    test_x, test_y = _blobs(24, 1)
    data = evaluation.EvalData("blobs", train_x, train_y, test_x, test_y, num_classes=K)
    classifier = evaluation.get_eval_classifier(data, str(tmp_path_factory.mktemp("c")), epochs=1)
    return data, classifier


@pytest.mark.parametrize("name, has", [
    ("lrlivae", {"recon_mse", "inpaint_mse", "z_leakage", "label_accuracy"}),
    ("cvae", {"recon_mse", "inpaint_mse", "z_leakage"}),
    ("cvaegan", {"recon_mse", "inpaint_mse", "z_leakage", "label_accuracy"}),
    ("cgan", set()),
])
def test_evaluate_model_computes_what_each_model_supports(name, has, arrays_and_classifier,
                                                          no_inception_weights):
    data, classifier = arrays_and_classifier
    result = evaluation.evaluate_model(_tiny(name), data, classifier, samples_per_class=4)
    values = result["metrics"]
    assert result["model"] == name and set(values) == set(evaluation.METRICS_ORDER)
    always = {"is_mean", "is_std", "fid", "intra_fid", "diversity", "conditional_accuracy"}
    assert {k for k, v in values.items() if v is not None} == always | has
    assert 1.0 <= values["is_mean"] <= K + 1e-6 and 0.0 <= values["conditional_accuracy"] <= 1
    assert result["eval_classifier"]["test_accuracy"] == classifier.test_accuracy
    assert "not Inception-v3" in result["settings"]["is_fid_extractor"]
    assert result["settings"]["num_generated"] == 4 * K and result["versions"]["keras"]
    if "z_leakage" in has:
        leak = result["details"]["z_leakage"]
        assert leak["code"] == ("z_u" if name == "lrlivae" else "z")
        assert values["z_leakage"] == max(leak["linear"], leak["knn"], leak["mlp"])
    if "inpaint_mse" in has:
        # cVAE cannot infer labels: it is given the true ones, and the output says so.
        assert result["details"]["inpaint"]["labels_given"] == (name == "cvae")


def test_tables_and_suites_summarise_one_inpainting_protocol(arrays_and_classifier):
    """evaluate_model's inpaint_mse and the Lr-LiVAE suites' inpaint_mse are two summaries of
    the same masked errors; each number is the MSE on the missing pixels, recomputed here."""
    from keras_lsvae.masks import make_mask

    data, _ = arrays_and_classifier
    model = _tiny("lrlivae")
    images, labels = data.test_images[:5], data.test_labels[:5]
    mean_image = data.train_images.mean(axis=0)
    ours = evaluation.inpainting_mse(model, images, labels, mean_image)
    bench = evaluation.inpainting_report(model, images, labels, mean_image)
    assert set(ours["per_mask"]) == set(bench) == set(evaluation.PAPER_MASKS)
    for kind, entry in ours["per_mask"].items():
        assert entry["model"] == bench[kind]["encode"]
        assert entry["mean_fill"] == bench[kind]["mean_fill"]
        missing = np.broadcast_to(make_mask(kind, 8, 8), images.shape) > 0
        inpainted = np.asarray(model.inpaint(images, make_mask(kind, 8, 8),
                                             fill_value=mean_image))
        assert entry["model"] == pytest.approx(
            np.mean((inpainted[missing] - images[missing]) ** 2), rel=1e-6)
    assert ours["mean"] == pytest.approx(np.mean([bench[k]["encode"] for k in bench]))
    assert set(bench["right_half"]) == {"mean_fill", "encode", "optimize",
                                        "encode_beats_mean_fill", "optimize_beats_mean_fill"}


def test_model_and_data_of_different_image_shapes_are_refused(arrays_and_classifier):
    data, classifier = arrays_and_classifier
    model = models_lib.get("cgan", input_shape=(16, 16, 1), num_classes=K, z_dim=3, width=8)
    with pytest.raises(ValueError, match=r"mismatched image shapes: the model takes "
                                         r"\(16, 16, 1\), blobs gives \(8, 8, 1\)"):
        evaluation.evaluate_model(model, data, classifier)


# ------------------------------------------------------------------ aggregation and tables
def _fake(model, seed, **values):
    return {"model": model, "seed": seed, "workdir": f"w{seed}",
            "metrics": {k: values.get(k) for k in evaluation.METRICS_ORDER}}


def test_aggregate_gives_mean_and_sample_std_over_runs_of_a_model():
    summary = evaluation.aggregate([_fake("a", 0, fid=1.0, is_mean=2.0),
                                    _fake("a", 1, fid=2.0, is_mean=2.5),
                                    _fake("a", 2, fid=6.0, is_mean=3.0),
                                    _fake("b", 0, fid=4.0)])
    assert summary["a"]["mean"]["fid"] == pytest.approx(3.0)
    assert summary["a"]["std"]["fid"] == pytest.approx(np.sqrt(((1 - 3) ** 2 + 1 + 9) / 2))
    assert summary["a"]["num_runs"] == 3 and summary["a"]["seeds"] == [0, 1, 2]
    assert summary["b"]["mean"]["fid"] == 4.0 and summary["b"]["std"]["fid"] is None
    assert summary["b"]["mean"]["is_mean"] is None  # not applicable stays None


def test_markdown_table_has_a_row_per_model_and_a_column_per_metric():
    summary = evaluation.aggregate([_fake("a", 0, fid=1.0), _fake("a", 1, fid=2.0),
                                    _fake("b", 0, fid=4.0)])
    lines = evaluation.markdown_table(summary).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["model", "runs", *evaluation.METRICS_ORDER]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [r[0] for r in rows] == ["a", "b"] and all(len(r) == len(header) for r in rows)
    fid = header.index("fid")
    assert rows[0][fid] == "1.5 ± 0.71" and rows[1][fid] == "4" and rows[1][2] == "—"


# ------------------------------------------------------------------------ evaluate.py
def test_evaluate_script_groups_seeds_and_writes_json_and_markdown(runs, tmp_path,
                                                                    no_inception_weights):
    out = tmp_path / "out"
    values = _evaluate_flags([f"--workdirs={','.join(runs['lrlivae'] + [runs['cgan']])}",
                              f"--out={out}", f"--classifier_dir={tmp_path / 'cls'}",
                              "--classifier_epochs=1", "--samples_per_class=4"])
    evaluation.run_from_flags(values)
    with open(out / "evaluation.json") as f:
        result = json.load(f)
    per_run = [r for r in result["runs"] if r["model"] == "lrlivae"]
    assert sorted(r["seed"] for r in per_run) == [0, 1]
    lrlivae = result["models"]["lrlivae"]
    for metric in evaluation.METRICS_ORDER:
        numbers = [r["metrics"][metric] for r in per_run]
        assert lrlivae["mean"][metric] == pytest.approx(np.mean(numbers), rel=1e-9)
        assert lrlivae["std"][metric] == pytest.approx(np.std(numbers, ddof=1), rel=1e-9)
    assert result["models"]["cgan"]["num_runs"] == 1
    assert result["models"]["cgan"]["mean"]["recon_mse"] is None
    assert result["eval_classifier"]["test_accuracy"] is not None
    assert result["versions"]["tensorflow"] and result["settings"]["num_generated"] == 12
    assert result["inception_v3"]["available"] is False
    markdown = (out / "evaluation.md").read_text()
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in table[1:]] == ["lrlivae", "cgan"]
    assert f"test accuracy {result['eval_classifier']['test_accuracy']:.4f}" in markdown
    assert "not on Inception-v3" in markdown
    assert "inception_v3: not available (weights not found at" in markdown
    mean, std = lrlivae["mean"]["fid"], lrlivae["std"]["fid"]
    assert f"{mean:.4g} ± {std:.2g}" in table[1]


def test_evaluate_explains_missing_workdirs_models_and_bad_data_sets(runs, tmp_path):
    with pytest.raises(FileNotFoundError, match="no directory"):
        evaluation.evaluate_workdirs([str(tmp_path / "nope")], str(tmp_path / "o"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"has no model\.keras.*scripts/train\.py "
                                                r"--flagfile="):
        evaluation.evaluate_workdirs([str(empty)], str(tmp_path / "o"))
    with pytest.raises(ValueError, match="was trained on .*not on --dataset=digits"):
        evaluation.evaluate_workdirs(runs["lrlivae"], str(tmp_path / "o"), dataset="digits")
    with pytest.raises(ValueError, match="unknown dataset 'nonesuch'"):
        evaluation.load_eval_data("nonesuch")
    with pytest.raises(ValueError, match="give at least one"):
        evaluation.run_from_flags(_evaluate_flags([]))


def test_runs_at_different_image_sizes_are_refused(runs, tmp_path):
    other = tiny_run(tmp_path / "lr16", runs["dataset"], image_size=16)
    with pytest.raises(ValueError, match="mismatched image shapes"):
        evaluation.evaluate_workdirs([runs["lrlivae"][0], other], str(tmp_path / "o"))


# ------------------------------------------------------------------------ Inception-v3
def test_inception_v3_is_reported_unavailable_without_local_weights(no_inception_weights):
    info = inception_v3.availability()
    expected = str(no_inception_weights / inception_v3.WEIGHTS_TOP)
    assert not info["available"] and expected in info["message"]
    assert info["message"].startswith("inception_v3: not available (weights not found at ")
    scores = inception_v3.inception_v3_scores(np.zeros((4, 8, 8, 1)), np.zeros((4, 8, 8, 1)))
    assert scores == {"available": False, "message": info["message"], "path": None}
    missing = inception_v3.availability("/nowhere/v3.h5")
    assert missing["message"] == "inception_v3: not available (weights not found at /nowhere/v3.h5)"


def test_inception_v3_uses_only_the_local_file(no_inception_weights, monkeypatch):
    """A (fake) weight file in the Keras cache is found and handed to the builder; nothing is
    downloaded. The builder is replaced by a tiny deterministic network."""
    no_inception_weights.mkdir(parents=True)
    path = no_inception_weights / inception_v3.WEIGHTS_TOP
    path.write_bytes(b"fake h5")
    calls, seen = [], []

    def fake_builder(weights, include_top):
        calls.append((weights, include_top))

        def run(x):
            seen.append(x.shape)
            brightness = x.mean(axis=(1, 2, 3))
            probs = np.stack([(brightness + 1) / 2, (1 - brightness) / 2], axis=1)
            return probs, np.stack([brightness, x[:, 0, 0, 0]], axis=1)
        return run

    monkeypatch.setattr(inception_v3, "BUILDER", fake_builder)
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(20, 8, 8, 1)).astype(np.float32)
    scores = inception_v3.inception_v3_scores(images, images, batch_size=8, size=16)
    assert calls == [(str(path), True)] and scores["available"]
    assert seen[0] == (8, 16, 16, 3)  # resized, grey repeated to RGB
    assert scores["fid"] == pytest.approx(0.0, abs=1e-9)  # same images: FD(x, x) = 0
    brightness = inception_v3.preprocess(images, 16).mean(axis=(1, 2, 3))
    expected = metrics.inception_score(np.stack([(brightness + 1) / 2, (1 - brightness) / 2], 1))
    assert (scores["is_mean"], scores["is_std"]) == pytest.approx(expected)
    path.unlink()
    (no_inception_weights / inception_v3.WEIGHTS_NOTOP).write_bytes(b"fake h5")
    notop = inception_v3.availability()
    assert notop["available"] and notop["include_top"] is False and "FID only" in notop["message"]


def test_inception_v3_preprocessing_range_and_channels():
    images = np.linspace(0, 1, 2 * 4 * 4).reshape(2, 4, 4, 1).astype(np.float32)
    out = inception_v3.preprocess(images, size=8)
    assert out.shape == (2, 8, 8, 3) and out.min() >= -1.0 and out.max() <= 1.0
    assert np.array_equal(out[..., 0], out[..., 2])


def test_the_same_run_named_twice_is_one_run(runs, tmp_path, no_inception_weights):
    # Again, through another path, and through a symlink: one run, not three seeds.
    run = runs["cgan"]
    link = tmp_path / "link"
    os.symlink(run, link)
    again = os.path.join(os.path.dirname(run), ".", os.path.basename(run))
    result = evaluation.evaluate_workdirs([run, again, str(link)], str(tmp_path / "out"),
                                          classifier_dir=str(tmp_path / "cls"),
                                          classifier_epochs=1, samples_per_class=4,
                                          probes=False, use_inception_v3=False)
    assert result["models"]["cgan"]["num_runs"] == 1
    assert len(result["runs"]) == 1
