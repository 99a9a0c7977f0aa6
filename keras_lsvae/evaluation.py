"""Evaluate trained models of paper A (and any class-label model) with the papers' protocols.

Three layers (docs/evaluation.md has the protocols and commands):

* **Evaluation classifiers** (:func:`get_eval_classifier`): one per data set, keyed by the data
  set's name and image size (and backbone), trained once on the *real train split*, saved under
  a cache directory (``--classifier_dir``; default ``$KERAS_LSVAE_CLASSIFIER_DIR`` or
  ``~/.cache/keras_lsvae/eval_classifiers``) as ``<key>.keras`` with ``<key>.json`` (settings,
  versions, test accuracy) and reused by every later evaluation. Backbone ``"auto"``: the
  keras-cv ResNetV2 backbone of :func:`keras_lsvae.metrics.build_eval_classifier` where it fits
  (images ≥ 32 px), the small CNN below that. Its test accuracy is measured on every use and
  reported next to every score it produces.
* :func:`evaluate_model`: every metric that applies to one model, found with ``hasattr`` and
  signatures, so it works for ``lrlivae``, ``cvae``, ``cvaegan``, ``cgan`` and later models
  (see :data:`METRICS_ORDER` and docs/evaluation.md).
* :func:`evaluate_workdirs`: what ``scripts/evaluate.py`` runs — several training workdirs,
  grouped by model (mean ± sample std over seeds), written as ``evaluation.json`` and
  ``evaluation.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import re
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from keras_lsvae import data, metrics
from keras_lsvae.masks import make_mask
from keras_lsvae.metrics import inception_v3

ENV_CLASSIFIER_DIR = "KERAS_LSVAE_CLASSIFIER_DIR"
#: Paper A §4.5's three masks, as in ``keras_lsvae.benchmarks.lrlivae.inpainting_report``.
PAPER_MASKS = ("right_half", "eyes_band", "bottom_half")
#: Test images inpainted per mask (the lrlivae benchmark's protocol: the first 200).
INPAINT_EXAMPLES = 200
SAMPLES_PER_CLASS = 100
#: Every per-model number, in table order. Not every model has every number (None / "—").
METRICS_ORDER = ("is_mean", "is_std", "fid", "intra_fid", "diversity", "conditional_accuracy",
                 "recon_mse", "inpaint_mse", "z_leakage", "label_accuracy")
METRIC_HELP = {
    "is_mean": "Inception Score on the evaluation classifier (mean of 10 splits)",
    "is_std": "std of the Inception Score over the 10 splits",
    "fid": "FID on evaluation-classifier features, generated vs real test split",
    "intra_fid": "intra-class FID (per class, averaged)",
    "diversity": "intra-class diversity, 1 - mean MS-SSIM within a class (paper A Eq. 12)",
    "conditional_accuracy": "evaluation classifier finds the requested class",
    "recon_mse": "per-pixel MSE of reconstruct() on the test split",
    "inpaint_mse": "per-pixel MSE on the missing pixels, mean over the 3 paper masks "
                   "(encoder pass)",
    "z_leakage": "best of linear / 15-NN / MLP probes reading the label from the "
                 "label-irrelevant code (z_u, or z), vs chance 1/K",
    "label_accuracy": "accuracy of the model's own predict_labels on the test split",
}
#: Lower is better for these (the rest: higher is better, or no direction).
LOWER_IS_BETTER = ("fid", "intra_fid", "recon_mse", "inpaint_mse", "z_leakage")


def default_classifier_dir() -> str:
    return os.environ.get(ENV_CLASSIFIER_DIR) or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_lsvae", "eval_classifiers")


def versions() -> Dict[str, str]:
    """Library versions of the training loop's record, plus keras-cv and scikit-learn."""
    from importlib import metadata

    from keras_lsvae.training.loop import versions as train_versions

    result = dict(train_versions())
    for package in ("keras-cv", "scikit-learn", "scipy"):
        try:
            result[package.replace("-", "_")] = metadata.version(package)
        except metadata.PackageNotFoundError:
            result[package.replace("-", "_")] = None
    return result


# ------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class EvalData:
    """Real train and test splits of one data set, as the evaluation sees them."""

    dataset: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    image_size: Optional[int] = None
    num_classes: Optional[int] = None

    @property
    def image_shape(self):
        return tuple(int(d) for d in self.test_images.shape[1:])

    def describe(self) -> Dict[str, object]:
        return {"dataset": self.dataset, "image_shape": list(self.image_shape),
                "image_size": self.image_size, "num_train": int(len(self.train_labels)),
                "num_test": int(len(self.test_labels)), "num_classes": self.num_classes}


def load_eval_data(dataset: str, image_size: Optional[int] = None, data_dir=None,
                   classes=None, download: bool = True) -> EvalData:
    """Train and test arrays of ``dataset`` (class labels only).

    Unknown names raise ``ValueError`` listing the known ones; a data set with attribute labels
    (paper B's CelebA subsets) is refused: these metrics need classes.
    """
    try:
        meta = data.info(dataset, data_dir=data_dir)
    except KeyError as error:
        raise ValueError(f"--dataset: {error.args[0]}") from None
    if not meta.is_image:
        raise ValueError(f"--dataset={dataset} holds points, not images: IS, FID and MS-SSIM "
                         "need images")
    if meta.label_kind != "class":
        raise ValueError(f"--dataset={dataset} has attribute labels; these metrics need class "
                         "labels (paper A models)")
    common = dict(data_dir=data_dir, image_size=image_size, classes=classes, download=download)
    train_images, train_labels = data.load_arrays(dataset, "train", **common)
    test_split = "test" if "test" in meta.splits else meta.splits[-1]
    test_images, test_labels = data.load_arrays(dataset, test_split, **common)
    num_classes = len(classes) if classes else meta.num_classes
    return EvalData(dataset, train_images, np.asarray(train_labels).astype(np.int64),
                    test_images, np.asarray(test_labels).astype(np.int64), image_size,
                    num_classes)


# ------------------------------------------------------------------------ eval classifiers
def resolve_backbone(backbone: str, image_shape) -> str:
    """``"auto"`` -> keras-cv ``"resnet_v2"`` for images ≥ 32 px, else the small ``"cnn"``."""
    if backbone == "auto":
        return "resnet_v2" if min(image_shape[:2]) >= 32 else "cnn"
    if backbone not in metrics.classifier.BACKBONES:
        raise ValueError(f"--classifier_backbone: unknown {backbone!r}; expected auto or one of "
                         f"{metrics.classifier.BACKBONES}")
    return backbone


#: Default widths: the CNN of the existing suites; ResNetV2 at 16 (on 7,000 MNIST digits at
#: 32 px: ~18 s/epoch on 2 CPU cores; width 32 is 4× the FLOPs).
DEFAULT_WIDTH = {"cnn": 32, "resnet_v2": 16}


def default_classifier_epochs(num_train: int) -> int:
    """30 epochs for small sets (digits: 1,437 images), 15 from 3,000 images (the suites')."""
    return 30 if num_train < 3000 else 15


def classifier_key(dataset: str, image_shape, backbone: str) -> str:
    """File-name key: data set name (``npz:``/``folder:`` -> file name + a content/path hash),
    image size and backbone, e.g. ``digits_16x16x1_cnn``."""
    name = dataset
    if ":" in dataset:
        kind, path = dataset.split(":", 1)
        path = os.path.abspath(os.path.expanduser(path))
        digest = hashlib.sha1()
        if os.path.isfile(path):
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        else:
            digest.update(path.encode())
        stem = os.path.splitext(os.path.basename(path.rstrip("/")))[0]
        name = f"{kind}_{stem}_{digest.hexdigest()[:10]}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    return f"{name}_{'x'.join(str(int(d)) for d in image_shape)}_{backbone}"


@dataclasses.dataclass
class EvalClassifier:
    """A trained evaluation classifier and what to report with its scores."""

    model: object
    test_accuracy: float
    backbone: str
    key: str
    path: Optional[str]
    trained_now: bool
    info: Dict[str, object]

    def describe(self) -> Dict[str, object]:
        return {"test_accuracy": self.test_accuracy, "backbone": self.backbone,
                "key": self.key, "path": self.path, "trained_now": self.trained_now,
                **{k: v for k, v in self.info.items() if k not in ("test_accuracy",)}}


#: How many classifiers this process has trained (tests check that a cached one is reused).
TRAINING_COUNT = 0


def _accuracy(model, images, labels) -> float:
    predicted = np.argmax(metrics.predict_probs(model, images), axis=-1)
    return float(np.mean(predicted == np.asarray(labels).reshape(-1)))


def get_eval_classifier(eval_data: EvalData, classifier_dir: Optional[str] = None,
                        backbone: str = "auto", epochs: Optional[int] = None,
                        width: Optional[int] = None, seed: int = 0, retrain: bool = False,
                        verbose: int = 0) -> EvalClassifier:
    """The evaluation classifier of ``eval_data``'s data set: loaded from the cache when there
    is one for the key, else trained on the real train split and saved.

    ``epochs``/``width``/``seed`` apply only when training (the cached file records the values it
    was trained with); ``retrain=True`` replaces a cached classifier. Its test accuracy is
    measured again on ``eval_data``'s test split every time.
    """
    global TRAINING_COUNT
    backbone = resolve_backbone(backbone, eval_data.image_shape)
    key = classifier_key(eval_data.dataset, eval_data.image_shape, backbone)
    directory = os.path.expanduser(classifier_dir or default_classifier_dir())
    model_path = os.path.join(directory, f"{key}.keras")
    info_path = os.path.join(directory, f"{key}.json")
    num_classes = int(eval_data.num_classes or int(eval_data.train_labels.max()) + 1)
    if not retrain and os.path.isfile(model_path) and os.path.isfile(info_path):
        model = metrics.load_eval_classifier(model_path)
        with open(info_path) as f:
            info = json.load(f)
        shape_ok = tuple(model.input_shape[1:]) == eval_data.image_shape
        if shape_ok and int(model.output_shape[-1]) == num_classes:
            return EvalClassifier(model, _accuracy(model, eval_data.test_images,
                                                   eval_data.test_labels),
                                  backbone, key, model_path, False, info)
        print(f"evaluation classifier {model_path} does not fit {eval_data.dataset} "
              f"{eval_data.image_shape} with {num_classes} classes: training a new one")
    epochs = int(epochs or default_classifier_epochs(len(eval_data.train_labels)))
    width = int(width or DEFAULT_WIDTH[backbone])
    started = time.time()
    model = metrics.train_eval_classifier(
        eval_data.train_images, eval_data.train_labels, epochs=epochs, seed=seed,
        num_classes=num_classes, width=width, backbone=backbone, verbose=verbose)
    TRAINING_COUNT += 1
    accuracy = _accuracy(model, eval_data.test_images, eval_data.test_labels)
    info = {"dataset": eval_data.dataset, "image_shape": list(eval_data.image_shape),
            "num_classes": num_classes, "backbone": backbone, "width": width, "epochs": epochs,
            "seed": seed, "num_train": int(len(eval_data.train_labels)),
            "num_test": int(len(eval_data.test_labels)), "test_accuracy_when_trained": accuracy,
            "train_seconds": round(time.time() - started, 1),
            "trained_on": "real train split only (paper A §4.2 protocol)",
            "versions": versions()}
    metrics.save_eval_classifier(model, model_path)
    with open(info_path, "w") as f:
        json.dump(info, f, indent=1)
    return EvalClassifier(model, accuracy, backbone, key, model_path, True, info)


# ------------------------------------------------------------------------- one model
def model_name(model) -> str:
    """The registered name of ``model``'s class (e.g. ``"lrlivae"``), else the class name."""
    from keras_lsvae.registry import MODELS

    for name in MODELS.names():
        if MODELS.get(name) is type(model):
            return name
    return type(model).__name__.lower()


def _accepts(method, name: str) -> bool:
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _with_labels(method, images, labels, **kwargs):
    """``method(images, labels=labels)`` if it takes labels (cvae, cvaegan), else without."""
    if _accepts(method, "labels"):
        kwargs["labels"] = labels
    return method(images, **kwargs)


def check_shapes(model, eval_data: EvalData) -> None:
    shape = tuple(getattr(model, "example_shape", ()) or ())
    if shape and shape != eval_data.image_shape:
        raise ValueError(
            f"mismatched image shapes: the model takes {shape}, {eval_data.dataset} gives "
            f"{eval_data.image_shape} (evaluate at the image size the model was trained with: "
            "--image_size)")
    k = getattr(model, "num_classes", None)
    if k is not None and eval_data.num_classes is not None and int(k) != eval_data.num_classes:
        raise ValueError(f"the model has {k} classes, {eval_data.dataset} has "
                         f"{eval_data.num_classes}")


def label_irrelevant_code(codes: Dict[str, object]) -> Optional[str]:
    """Name of the code that should carry no label information: ``z_u`` (Lr-LiVAE), else ``z``
    (cVAE, cVAE-GAN: the label enters the decoder separately), else None."""
    for key in ("z_u", "z"):
        if key in codes:
            return key
    return None


def inpainting_mse(model, images, labels, mean_image, masks=PAPER_MASKS) -> Dict[str, object]:
    """Per paper mask, per-pixel MSE on the missing pixels of ``model.inpaint`` (the encoder
    pass: ``method="encode"`` where the model has methods) and of the mean-image fill, with the
    missing pixels first set to the train split's mean image — the mask protocol of
    ``keras_lsvae.benchmarks.lrlivae.inpainting_report``. Models whose ``inpaint`` takes labels
    get ``labels=None`` if they can predict labels (cVAE-GAN's classifier), else the true labels
    (recorded as ``labels_given``)."""
    height, width = images.shape[1:3]
    kwargs = {"fill_value": mean_image}
    if _accepts(model.inpaint, "method"):
        kwargs["method"] = "encode"
    labels_given = False
    if _accepts(model.inpaint, "labels"):
        labels_given = not hasattr(model, "predict_labels")
        kwargs["labels"] = labels if labels_given else None
    report = {"per_mask": {}, "labels_given": labels_given, "num_images": int(len(images)),
              "fill": "train-split mean image"}
    for kind in masks:
        mask = make_mask(kind, height, width)
        missing = np.broadcast_to(mask, images.shape) > 0
        baseline = np.where(missing, mean_image[None], images)
        inpainted = np.asarray(model.inpaint(images, mask, **kwargs))
        report["per_mask"][kind] = {
            "model": float(np.mean((inpainted[missing] - images[missing]) ** 2)),
            "mean_fill": float(np.mean((baseline[missing] - images[missing]) ** 2))}
    report["mean"] = float(np.mean([v["model"] for v in report["per_mask"].values()]))
    report["mean_fill_mean"] = float(np.mean([v["mean_fill"]
                                              for v in report["per_mask"].values()]))
    return report


def reference_numbers(eval_data: EvalData, classifier: EvalClassifier, seed: int = 0):
    """The same metrics on the real test split (what a perfect generator would score)."""
    probs = metrics.predict_probs(classifier.model, eval_data.test_images)
    is_mean, is_std = metrics.inception_score(probs)
    div = metrics.intra_class_diversity(eval_data.test_images, eval_data.test_labels, seed=seed)
    return {"is_mean": is_mean, "is_std": is_std, "diversity": div["mean"],
            "conditional_accuracy": classifier.test_accuracy,
            "note": "real test split scored like generated images (IS, diversity); "
                    "conditional_accuracy = the classifier's test accuracy"}


def evaluate_model(model, eval_data: EvalData, classifier: EvalClassifier, seed: int = 0,
                   samples_per_class: int = SAMPLES_PER_CLASS, probes: bool = True,
                   inpaint_examples: int = INPAINT_EXAMPLES,
                   inception_v3_weights: Optional[str] = None,
                   use_inception_v3: bool = True) -> Dict[str, object]:
    """Every metric that applies to ``model`` (a trained class-label model) on ``eval_data``.

    Always (``generate``): IS, FID and intra-class FID on the evaluation classifier, intra-class
    MS-SSIM diversity (Eq. 12) and conditional accuracy of ``samples_per_class`` samples per
    class (seed ``seed``) against the real test split. Where the model has them:
    ``predict_labels`` -> label_accuracy; ``encode`` -> leakage probes on the label-irrelevant
    code (:func:`label_irrelevant_code`); ``reconstruct`` -> recon_mse; ``inpaint`` ->
    inpaint_mse (:func:`inpainting_mse`). Standard Inception-v3 IS/FID only if its weights are
    on this machine (:mod:`keras_lsvae.metrics.inception_v3`), else the "not available" message.

    Returns ``{"model", "metrics": {name: float or None}, "details", "settings",
    "eval_classifier", "inception_v3", "versions", "eval_seconds"}``.
    """
    started = time.time()
    check_shapes(model, eval_data)
    k = int(getattr(model, "num_classes", eval_data.num_classes))
    test_images, test_labels = eval_data.test_images, eval_data.test_labels
    values: Dict[str, Optional[float]] = {name: None for name in METRICS_ORDER}
    details: Dict[str, object] = {}

    requested = np.repeat(np.arange(k), samples_per_class).astype(np.int32)
    generated = np.asarray(model.generate(requested, seed=seed), np.float32)
    if generated.shape[1:] != eval_data.image_shape:
        raise ValueError(f"mismatched image shapes: generate() gave {generated.shape[1:]}, the "
                         f"data set has {eval_data.image_shape}")
    gen_probs = metrics.predict_probs(classifier.model, generated)
    values["is_mean"], values["is_std"] = metrics.inception_score(gen_probs)
    gen_feats = metrics.features(classifier.model, generated)
    real_feats = metrics.features(classifier.model, test_images)
    values["fid"] = metrics.frechet_distance(gen_feats, real_feats)
    intra = metrics.intra_class_fid(real_feats, test_labels, gen_feats, requested)
    values["intra_fid"] = intra["mean"]
    details["intra_fid_per_class"] = intra["per_class"]
    div = metrics.intra_class_diversity(generated, requested, seed=seed)
    values["diversity"] = div["mean"]
    details["diversity_per_class"] = div["per_class"]
    cond = metrics.conditional_accuracy_report(classifier.model, generated, requested)
    values["conditional_accuracy"] = cond["accuracy"]
    details["conditional_accuracy_per_class"] = cond["per_class"]

    if hasattr(model, "predict_labels"):
        probs = np.asarray(model.predict_labels(test_images))
        values["label_accuracy"] = float(np.mean(np.argmax(probs, -1) == test_labels))
    if hasattr(model, "encode") and probes:
        codes_train = _with_labels(model.encode, eval_data.train_images, eval_data.train_labels)
        codes_test = _with_labels(model.encode, test_images, test_labels)
        code = label_irrelevant_code(codes_test)
        if code is not None:
            leak = metrics.leakage_report(np.asarray(codes_train[code]), eval_data.train_labels,
                                          np.asarray(codes_test[code]), test_labels, k,
                                          seed=seed)
            leak["code"] = code
            leak["code_is"] = "posterior mean (encode mode='mode')"
            details["z_leakage"] = leak
            values["z_leakage"] = max(leak["linear"], leak["knn"], leak["mlp"])
    if hasattr(model, "reconstruct"):
        recon = np.asarray(_with_labels(model.reconstruct, test_images, test_labels))
        values["recon_mse"] = float(np.mean((recon - test_images) ** 2))
    if hasattr(model, "inpaint"):
        inpaint = inpainting_mse(model, test_images[:inpaint_examples],
                                 test_labels[:inpaint_examples],
                                 eval_data.train_images.mean(axis=0))
        details["inpaint"] = inpaint
        values["inpaint_mse"] = inpaint["mean"]

    if use_inception_v3:
        v3 = inception_v3.inception_v3_scores(generated, test_images, inception_v3_weights)
    else:
        v3 = {"available": False, "message": "inception_v3: not computed (switched off)"}
    extractor = (f"evaluation classifier ({classifier.backbone}, test accuracy "
                 f"{classifier.test_accuracy:.4f}; {gen_feats.shape[1]}-d 'features' layer for "
                 "FID), not Inception-v3")
    return {
        "model": model_name(model),
        "metrics": values,
        "details": details,
        "settings": {
            "seed": seed, "samples_per_class": samples_per_class,
            "num_generated": int(len(requested)), "num_real_test": int(len(test_labels)),
            "num_train_for_probes": int(len(eval_data.train_labels)),
            "is_splits": 10, "is_fid_extractor": extractor,
            "fid_reference": f"real test split of {eval_data.dataset}",
            "diversity": {k: div[k] for k in ("include_self_pairs", "max_pairs", "ms_ssim")},
            "inpaint_examples": int(min(inpaint_examples, len(test_labels))),
            "inpaint_masks": list(PAPER_MASKS), **eval_data.describe()},
        "eval_classifier": classifier.describe(),
        "inception_v3": v3,
        "versions": versions(),
        "eval_seconds": round(time.time() - started, 1),
    }


# ---------------------------------------------------------------------- several runs
def aggregate(results: Sequence[Dict[str, object]]) -> Dict[str, Dict[str, object]]:
    """Group per-run results by model: per metric the mean and the sample std (ddof=1; None for
    a single run) over the runs that have it; metrics no run has stay None."""
    groups: Dict[str, List[Dict[str, object]]] = {}
    for result in results:
        groups.setdefault(result["model"], []).append(result)
    summary = {}
    for name, runs in groups.items():
        mean, std = {}, {}
        for metric in METRICS_ORDER:
            numbers = [r["metrics"].get(metric) for r in runs
                       if r["metrics"].get(metric) is not None]
            mean[metric] = float(np.mean(numbers)) if numbers else None
            std[metric] = float(np.std(numbers, ddof=1)) if len(numbers) > 1 else None
        summary[name] = {"num_runs": len(runs), "seeds": [r.get("seed") for r in runs],
                         "workdirs": [r.get("workdir") for r in runs], "mean": mean,
                         "std": std}
    return summary


def _cell(mean, std, digits=4):
    if mean is None:
        return "—"
    text = f"{mean:.{digits}g}"
    return text if std is None else f"{text} ± {std:.2g}"


def markdown_table(summary: Dict[str, Dict[str, object]], columns=METRICS_ORDER) -> str:
    """One row per model, one column per metric: ``mean ± std`` over runs ("—": none)."""
    lines = ["| model | runs | " + " | ".join(columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for name, entry in summary.items():
        cells = [_cell(entry["mean"][c], entry["std"][c]) for c in columns]
        lines.append(f"| {name} | {entry['num_runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(title: str, summary, classifier: Dict[str, object],
                    settings: Dict[str, object], inception: Dict[str, object],
                    versions_: Dict[str, str], reference: Optional[Dict] = None,
                    extra: Sequence[str] = ()) -> str:
    """A Markdown page: the table, then what produced it (classifier, counts, versions)."""
    lines = [f"# {title}", "", markdown_table(summary), ""]
    lines.append(f"Evaluation classifier: {classifier['backbone']} trained on the real train "
                 f"split of {settings.get('dataset')}, **test accuracy "
                 f"{classifier['test_accuracy']:.4f}** ({classifier.get('path')}). IS, FID and "
                 "intra-class FID are computed on this classifier (its probabilities and "
                 "penultimate features), **not on Inception-v3**.")
    lines.append("")
    lines.append(f"Standard Inception-v3: {inception.get('message')}")
    lines.append("")
    if reference:
        lines.append(f"Real test split for reference: IS {reference['is_mean']:.4g} ± "
                     f"{reference['is_std']:.2g}, diversity {reference['diversity']:.4g}.")
        lines.append("")
    lines.append("Columns: " + "; ".join(f"`{k}` {METRIC_HELP[k]}" for k in METRICS_ORDER)
                 + ". Lower is better for " + ", ".join(LOWER_IS_BETTER)
                 + ". Cells: mean ± sample std (ddof=1) over runs; one run: the value alone.")
    lines.append("")
    for line in extra:
        lines += [line, ""]
    lines.append("Runs: " + "; ".join(
        f"{name}: seeds {entry['seeds']}" for name, entry in summary.items()))
    lines.append("")
    lines.append("Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()
                                          if not isinstance(v, dict)))
    lines.append("")
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions_.items()))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------- workdirs
def read_run(workdir: str) -> Dict[str, object]:
    """model / dataset / seed / image_size / classes / data_dir of a training workdir, from its
    config.json (written by every run) or else its flags.txt."""
    if not os.path.isdir(workdir):
        raise FileNotFoundError(f"--workdirs: no directory {workdir!r}")
    model_path = os.path.join(workdir, "model.keras")
    if not os.path.isfile(model_path):
        raise FileNotFoundError(
            f"--workdirs: {workdir!r} has no model.keras; a training run writes it when it "
            f"finishes: python scripts/train.py --flagfile=configs/<config>.cfg "
            f"--workdir={workdir} (rerunning the same command resumes an unfinished run)")
    config_path = os.path.join(workdir, "config.json")
    flags_path = os.path.join(workdir, "flags.txt")
    if os.path.isfile(config_path):
        with open(config_path) as f:
            config = json.load(f)
    elif os.path.isfile(flags_path):
        config = {}
        with open(flags_path) as f:
            for line in f:
                match = re.match(r"^--(\w+)=(.*)$", line.strip())
                if match:
                    config[match.group(1)] = match.group(2)
        for key in ("seed", "image_size"):
            if key in config and config[key] not in ("", "None"):
                config[key] = int(config[key])
    else:
        raise FileNotFoundError(f"--workdirs: {workdir!r} has neither config.json nor flags.txt "
                                "(written by scripts/train.py): the model name, seed and data "
                                "set are unknown")
    for key in ("model", "dataset"):
        if not config.get(key):
            raise ValueError(f"--workdirs: {workdir!r}: its configuration does not name the "
                             f"{key}")
    return {"workdir": workdir, "model_path": model_path, "model": config["model"],
            "dataset": config["dataset"], "seed": int(config.get("seed") or 0),
            "image_size": config.get("image_size") or None,
            "classes": config.get("classes") or None, "data_dir": config.get("data_dir"),
            "config": config}


def _same_dataset(a: str, b: str) -> bool:
    def norm(name):
        if ":" in name:
            kind, path = name.split(":", 1)
            return f"{kind.lower()}:{os.path.abspath(os.path.expanduser(path))}"
        return name.lower()
    return norm(a) == norm(b)


def load_model(path: str):
    import keras

    import keras_lsvae.models  # noqa: F401  (registers the model classes for deserialisation)
    return keras.models.load_model(path)


def evaluate_workdirs(workdirs: Sequence[str], out_dir: str, dataset: Optional[str] = None,
                      classifier_dir: Optional[str] = None, classifier_backbone: str = "auto",
                      classifier_epochs: Optional[int] = None, retrain_classifier: bool = False,
                      seed: Optional[int] = None, samples_per_class: int = SAMPLES_PER_CLASS,
                      probes: bool = True, inception_v3_weights: Optional[str] = None,
                      use_inception_v3: bool = True, data_dir: Optional[str] = None,
                      download: bool = True) -> Dict[str, object]:
    """Evaluate each workdir's model.keras on one data set; write ``out_dir/evaluation.json``
    and ``out_dir/evaluation.md`` (one row per model: mean ± std over its runs).

    Every run of a model is one seed; each run is evaluated with its own training seed unless
    ``seed`` is given. All workdirs must be on the same data set (``dataset`` defaults to
    theirs) and image size; everything is checked before any model is evaluated.
    """
    workdirs = [w for w in workdirs if w]
    if not workdirs:
        raise ValueError("--workdirs: give at least one training workdir")
    runs = [read_run(w) for w in workdirs]
    if dataset is None:
        dataset = runs[0]["dataset"]
    for run in runs:
        if not _same_dataset(run["dataset"], dataset):
            raise ValueError(f"--workdirs: {run['workdir']!r} was trained on {run['dataset']}, "
                             f"not on --dataset={dataset}; evaluate runs of one data set "
                             "together")
    sizes = {run["image_size"] for run in runs}
    if len(sizes) > 1:
        raise ValueError(f"--workdirs: mismatched image shapes: the runs were trained at image "
                         f"sizes {sorted(sizes, key=str)}; evaluate them separately")
    eval_data = load_eval_data(dataset, image_size=sizes.pop(),
                               data_dir=data_dir or runs[0]["data_dir"],
                               classes=runs[0]["classes"], download=download)
    models = [load_model(run["model_path"]) for run in runs]
    for run, model in zip(runs, models):
        try:
            check_shapes(model, eval_data)
        except ValueError as error:
            raise ValueError(f"--workdirs: {run['workdir']!r}: {error}") from None
    classifier = get_eval_classifier(eval_data, classifier_dir, classifier_backbone,
                                     classifier_epochs, retrain=retrain_classifier)
    print(f"evaluation classifier {classifier.key}: test accuracy "
          f"{classifier.test_accuracy:.4f} ({'trained now' if classifier.trained_now else 'cached'}"
          f", {classifier.path})", flush=True)
    results = []
    for run, model in zip(runs, models):
        result = evaluate_model(model, eval_data, classifier,
                                seed=run["seed"] if seed is None else seed,
                                samples_per_class=samples_per_class, probes=probes,
                                inception_v3_weights=inception_v3_weights,
                                use_inception_v3=use_inception_v3)
        if result["model"] != run["model"]:
            raise ValueError(f"{run['workdir']!r}: config says --model={run['model']} but "
                             f"model.keras holds {result['model']}")
        result.update(workdir=run["workdir"], seed=run["seed"],
                      train_settings=run["config"])
        results.append(result)
        print(f"{run['model']} seed {run['seed']} ({run['workdir']}): " + ", ".join(
            f"{k} {v:.4g}" for k, v in result["metrics"].items() if v is not None), flush=True)
    summary = aggregate(results)
    reference = reference_numbers(eval_data, classifier)
    settings = dict(results[0]["settings"])
    settings.pop("seed", None)
    output = {"models": summary, "runs": results, "eval_classifier": classifier.describe(),
              "inception_v3": results[0]["inception_v3"], "reference_real_test": reference,
              "settings": settings, "versions": versions(), "metrics_order": list(METRICS_ORDER),
              "metric_help": METRIC_HELP}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "evaluation.json"), "w") as f:
        json.dump(_jsonable(output), f, indent=1, sort_keys=True)
    with open(os.path.join(out_dir, "evaluation.md"), "w") as f:
        f.write(markdown_report(f"Evaluation on {dataset}", summary, classifier.describe(),
                                settings, output["inception_v3"], output["versions"],
                                reference))
    return output


def _jsonable(value):
    """JSON-safe copy: numpy scalars -> Python, dict keys -> str."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# -------------------------------------------------------------------------- flags
def define_flags(flag_values=None):
    """The flags of ``scripts/evaluate.py``, each defined once (on ``flag_values``)."""
    from absl import flags

    fv = dict(flag_values=flags.FLAGS if flag_values is None else flag_values)
    flags.DEFINE_list("workdirs", None, "Training workdirs (comma-separated), each with "
                      "model.keras and config.json/flags.txt from scripts/train.py; runs of the "
                      "same model are grouped (mean ± std over their seeds).", **fv)
    flags.DEFINE_string("dataset", None, "Data set to evaluate on (default: the workdirs'; "
                        "they must all be on one data set), e.g. digits, npz:PATH.", **fv)
    flags.DEFINE_string("out", "evaluation", "Output directory: evaluation.json and "
                        "evaluation.md.", **fv)
    flags.DEFINE_string("classifier_dir", None, "Cache of evaluation classifiers (default "
                        f"${ENV_CLASSIFIER_DIR} or ~/.cache/keras_lsvae/eval_classifiers).",
                        **fv)
    flags.DEFINE_enum("classifier_backbone", "auto", ["auto", "cnn", "resnet_v2"],
                      "Evaluation classifier: auto = keras-cv ResNetV2 for images >= 32 px, "
                      "else the small CNN.", **fv)
    flags.DEFINE_integer("classifier_epochs", None, "Epochs when a classifier is trained "
                         "(default 30 below 3,000 training images, else 15).", **fv)
    flags.DEFINE_bool("retrain_classifier", False, "Train the evaluation classifier again and "
                      "replace the cached one.", **fv)
    flags.DEFINE_integer("seed", None, "Seed of generation and probes (default: each run's "
                         "training seed).", **fv)
    flags.DEFINE_integer("samples_per_class", SAMPLES_PER_CLASS, "Generated images per class.",
                         **fv)
    flags.DEFINE_bool("probes", True, "Leakage probes on the label-irrelevant code.", **fv)
    flags.DEFINE_string("inception_v3_weights", None, "Local Inception-v3 weight file (.h5); "
                        "default: the Keras cache ~/.keras/models/inception_v3_weights_tf_dim_"
                        "ordering_tf_kernels*.h5. Never downloaded; absent -> reported as not "
                        "available.", **fv)
    flags.DEFINE_bool("inception_v3", True, "Standard Inception-v3 IS/FID where its weights "
                      "are present (--noinception_v3: skip).", **fv)
    flags.DEFINE_string("data_dir", None, "TFDS data directory (default: the runs').", **fv)


def run_from_flags(values) -> Dict[str, object]:
    """``scripts/evaluate.py`` as a function of parsed flags."""
    if not values.workdirs:
        raise ValueError("--workdirs: give at least one training workdir, e.g. "
                         "--workdirs=runs/digits,runs/cvae_digits")
    return evaluate_workdirs(
        values.workdirs, values.out, dataset=values.dataset, classifier_dir=values.classifier_dir,
        classifier_backbone=values.classifier_backbone,
        classifier_epochs=values.classifier_epochs,
        retrain_classifier=values.retrain_classifier, seed=values.seed,
        samples_per_class=values.samples_per_class, probes=values.probes,
        inception_v3_weights=values.inception_v3_weights,
        use_inception_v3=values.inception_v3, data_dir=values.data_dir)
