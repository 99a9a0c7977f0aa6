"""Finished training runs: the one loader of ``model.keras``, ``scripts/evaluate.py``'s
evaluation of several workdirs, and the tables it writes.

* :func:`load_model`: every ``model.keras`` of this library is loaded here (evaluation, figures,
  benchmark suites), with the model classes registered for deserialisation;
  :func:`load_workdir_model` the same for a workdir.
* :func:`read_run`: model / dataset / seed / image size of a workdir (config.json or flags.txt).
* :func:`evaluate_workdirs`: several workdirs, grouped by model (mean ± sample std over seeds),
  written as ``evaluation.json`` and ``evaluation.md``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from keras_lsvae import io
from keras_lsvae.evaluation.classifiers import (ENV_CLASSIFIER_DIR, get_eval_classifier,
                                                load_eval_data, versions)
from keras_lsvae.evaluation.protocols import (LOWER_IS_BETTER, METRIC_HELP, METRICS_ORDER,
                                              SAMPLES_PER_CLASS, check_shapes, evaluate_model,
                                              reference_numbers)

MODEL_FILE = "model.keras"


def load_model(path: str, compile: bool = True):
    """The trained model saved at ``path`` (a ``.keras`` file written by the training loop).
    ``compile=False`` skips restoring the optimizers (figures and export need none)."""
    import keras

    import keras_lsvae.models  # noqa: F401  (registers the model classes for deserialisation)
    return keras.models.load_model(path, compile=compile)


def load_workdir_model(workdir: str, compile: bool = True):
    """:func:`load_model` of ``workdir/model.keras``."""
    return load_model(os.path.join(workdir, MODEL_FILE), compile=compile)


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
    model_path = os.path.join(workdir, MODEL_FILE)
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
    # The same run named twice (again, through another path or a symlink) is one run: a
    # duplicate would count as another seed and shrink the reported spread.
    unique = {}
    for workdir in workdirs:
        unique.setdefault(os.path.realpath(workdir), workdir)
    if len(unique) < len(workdirs):
        print(f"--workdirs: {len(workdirs) - len(unique)} duplicate(s) of the same run "
              "dropped")
    workdirs = list(unique.values())
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
    io.atomic_write_json(os.path.join(out_dir, "evaluation.json"), jsonable(output), indent=1,
                         sort_keys=True)
    io.atomic_write_text(os.path.join(out_dir, "evaluation.md"),
                         markdown_report(f"Evaluation on {dataset}", summary,
                                         classifier.describe(), settings,
                                         output["inception_v3"], output["versions"], reference))
    return output


def jsonable(value):
    """JSON-safe copy: numpy scalars -> Python, dict keys -> str."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
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
