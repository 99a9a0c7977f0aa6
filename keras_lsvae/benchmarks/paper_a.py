"""Paper A's comparison (Tables 1 and 2): cVAE, cVAE-GAN, cGAN and Lr-LiVAE under one budget.

``python scripts/benchmark.py --suite=paper_a_digits --out=DIR`` trains the four models on the
embedded digits (16×16) with ``configs/cvae_digits.cfg``, ``configs/cvaegan_digits.cfg``,
``configs/cgan_digits.cfg`` and ``configs/digits.cfg`` — same data, image size, widths, latent
sizes, batch size, learning rate and schedule — for ``num_seeds`` seeds, and measures every model
with :func:`keras_lsvae.evaluation.evaluate_model` against one evaluation classifier (cached,
trained on the real train split; its test accuracy is in the output).
``--suite=paper_a_mnist --data=../shared/data/mnist_dev.npz`` does the same on 8,000 real MNIST
digits at 32×32: Lr-LiVAE with ``configs/mnist_dev.cfg``, the baselines with their digits configs
moved to that data set, image size and schedule (epochs, steps, batch size of mnist_dev.cfg).

Output ``DIR/<suite>.json``: flat keys ``<model>.<metric>`` (mean over seeds; ``...._std`` the
sample std when there are several) for models :data:`PAPER_A_MODELS` and metrics
:data:`SUITE_METRICS` (``inpaint_mse`` is None for the models without an encoder: cGAN), plus
``eval_classifier_test_accuracy``, ``orderings`` (do paper A's orderings hold here, as
measured: IS lrlivae ≥ cvaegan > cgan > cvae; diversity lrlivae > cvaegan), every run's full
evaluation, settings and versions; ``DIR/<suite>.md`` holds the table.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Optional, Sequence

import numpy as np

from keras_lsvae import evaluation, io
from keras_lsvae.benchmarks import common
from keras_lsvae.registry import BENCHMARKS

PAPER_A_MODELS = ("cvae", "cvaegan", "cgan", "lrlivae")
SUITE_METRICS = ("is_mean", "is_std", "fid", "intra_fid", "diversity", "conditional_accuracy",
                 "inpaint_mse")
#: The digits config of each model (the same networks and schedule; headers give the reasons).
DIGITS_CONFIGS = {"cvae": "cvae_digits.cfg", "cvaegan": "cvaegan_digits.cfg",
                  "cgan": "cgan_digits.cfg", "lrlivae": "digits.cfg"}
#: Paper A's claims (Table 1: IS 7.04 / 6.99 / 6.27 / 3.01 on CIFAR-10; Table 2: intra-class
#: diversity 0.0149 vs 0.0136): chains of (model, relation, model), read left to right.
PAPER_A_ORDERINGS = {
    "is_mean": (("lrlivae", ">="), ("cvaegan", ">"), ("cgan", ">"), ("cvae", None)),
    "diversity": (("lrlivae", ">"), ("cvaegan", None)),
}


def _compare(a, relation, b) -> Optional[bool]:
    if a is None or b is None:
        return None
    return bool(a >= b) if relation == ">=" else bool(a > b)


def orderings(table: Dict[str, Dict[str, Optional[float]]],
              claims=PAPER_A_ORDERINGS) -> Dict[str, object]:
    """Whether each of paper A's orderings holds in ``table`` ({model: {metric: value}}).

    Returns per metric ``{"claim": "lrlivae >= cvaegan > cgan > cvae", "holds": bool or None
    (None: a model or number is missing), "pairs": {"lrlivae >= cvaegan": bool, ...},
    "values": {model: value}, "measured_order": models sorted by the measured value}``.
    """
    result = {}
    for metric, chain in claims.items():
        values = {name: (table.get(name) or {}).get(metric) for name, _ in chain}
        pairs = {}
        for (left, relation), (right, _) in zip(chain[:-1], chain[1:]):
            pairs[f"{left} {relation} {right}"] = _compare(values[left], relation, values[right])
        known = [v for v in pairs.values() if v is not None]
        holds = None if len(known) < len(pairs) else all(known)
        present = [name for name in values if values[name] is not None]
        result[metric] = {
            "claim": " ".join(f"{name} {rel}" if rel else name for name, rel in chain),
            "holds": holds, "pairs": pairs, "values": values,
            "measured_order": sorted(present, key=lambda n: -values[n])}
    return result


def flat_table(summary: Dict[str, Dict[str, object]], models: Sequence[str],
               metrics: Sequence[str] = SUITE_METRICS) -> Dict[str, Optional[float]]:
    """``{"<model>.<metric>": mean over seeds}`` (+ ``"<model>.<metric>_std"`` with ≥ 2 seeds);
    None for a metric the model does not have."""
    flat = {}
    for name in models:
        entry = summary.get(name)
        for metric in metrics:
            flat[f"{name}.{metric}"] = entry["mean"][metric] if entry else None
            if entry and entry["num_runs"] > 1:
                flat[f"{name}.{metric}_std"] = entry["std"][metric]
    return flat


def _ordering_lines(result) -> list:
    lines = []
    for metric, entry in result.items():
        verdict = {True: "holds", False: "does NOT hold", None: "cannot be judged"}[entry["holds"]]
        measured = ", ".join(f"{n} {entry['values'][n]:.4g}" for n in entry["measured_order"])
        lines.append(f"Paper A ordering of {metric} ({entry['claim']}): **{verdict}** here "
                     f"(measured: {measured}; pairs: "
                     + ", ".join(f"{p} {v}" for p, v in entry["pairs"].items()) + ").")
    return lines


def run_comparison(suite: str, out_dir: str, configs: Dict[str, object], eval_data,
                   seeds: Sequence[int], classifier_dir: Optional[str] = None,
                   classifier_epochs: Optional[int] = None, models=PAPER_A_MODELS,
                   skip_missing: bool = False, samples_per_class: int = 100,
                   note: str = "") -> Dict[str, object]:
    """Train ``configs[model]`` (a TrainConfig factory ``(workdir, seed) -> TrainConfig``) for
    every model and seed, evaluate each against one evaluation classifier, and return the
    suite's dict (module docstring); also writes ``out_dir/<suite>.md``.

    ``skip_missing``: leave out models whose config/class is not available (tests only; the
    suites themselves train all four)."""
    from keras_lsvae.registry import MODELS

    import keras_lsvae.models  # noqa: F401  (registers the models)

    classifier = evaluation.get_eval_classifier(eval_data, classifier_dir,
                                                epochs=classifier_epochs)
    skipped, runs, train_seconds = {}, [], {}
    for name in models:
        if name not in MODELS or configs.get(name) is None:
            if not skip_missing:
                raise ValueError(f"{suite}: model {name!r} or its config is not available")
            skipped[name] = "model or config not available"
            print(f"{suite}: skipping {name}: model or config not available", flush=True)
            continue
        for seed in seeds:
            config = configs[name](os.path.join(out_dir, f"{suite}_{name}_seed{seed}"), seed)
            model, seconds = common.train_and_load(config)
            train_seconds.setdefault(name, []).append(seconds)
            result = evaluation.evaluate_model(model, eval_data, classifier, seed=seed,
                                               samples_per_class=samples_per_class)
            result.update(workdir=config.workdir, seed=seed, train_seconds=seconds,
                          train_settings=config.to_json())
            runs.append(result)
            print(f"{suite}: {name} seed {seed}: trained in {seconds} s; " + ", ".join(
                f"{k} {v:.4g}" for k, v in result["metrics"].items() if v is not None),
                flush=True)
    summary = evaluation.aggregate(runs)
    table = {name: entry["mean"] for name, entry in summary.items()}
    order = orderings(table)
    output = dict(flat_table(summary, models))
    reference = evaluation.reference_numbers(eval_data, classifier)
    output.update({
        "models": list(models), "metrics": list(SUITE_METRICS), "seeds": list(seeds),
        "orderings": order, "eval_classifier_test_accuracy": classifier.test_accuracy,
        "eval_classifier": classifier.describe(), "summary": summary,
        # keyed "<model>_seed<k>" (a dict: benchmark.py prints only the top-level scalars/lists)
        "runs": {f"{r['model']}_seed{r['seed']}": r for r in runs},
        "skipped": skipped, "train_seconds": train_seconds,
        "inception_v3": runs[0]["inception_v3"] if runs else None,
        "reference_real_test": reference, "data": eval_data.describe(),
        "versions": evaluation.versions(), "note": note})
    settings = dict(runs[0]["settings"]) if runs else {}
    settings.pop("seed", None)
    extra = _ordering_lines(order)
    if skipped:
        extra.append("Skipped: " + ", ".join(f"{k} ({v})" for k, v in skipped.items()))
    if note:
        extra.append(note)
    markdown = evaluation.markdown_report(
        f"{suite}: paper A's comparison", summary, classifier.describe(), settings,
        output["inception_v3"] or {"message": "no run"}, output["versions"], reference, extra)
    os.makedirs(out_dir, exist_ok=True)
    io.atomic_write_text(os.path.join(out_dir, f"{suite}.md"), markdown)
    return json.loads(json.dumps(evaluation.jsonable(output)))


def _config_factory(name, epochs=None, **overrides):
    """``(workdir, seed) -> TrainConfig`` of the package's flagfile ``name``; None if the
    package has no such flagfile."""
    if not os.path.isfile(common.config_path(name)):
        return None

    def make(workdir, seed):
        return common.suite_config(name, workdir, seed, epochs, **overrides)
    return make


@BENCHMARKS.register("paper_a_digits")
def paper_a_digits(out_dir, seed=0, epochs=None, num_seeds=3, classifier_dir=None,
                   models=PAPER_A_MODELS, skip_missing=False):
    """The four models on the embedded digits, seeds seed … seed+num_seeds−1 (module doc).

    ``epochs`` overrides every config's 60 epochs (quick checks). Budget (2 idle CPU cores,
    measured): 523 s per seed (training cVAE 48 s, cVAE-GAN 204 s, cGAN 83 s, Lr-LiVAE 172 s,
    plus evaluation), so 3 seeds ≈ 26 min; the digits classifier 46 s once (cached)."""
    configs = {name: _config_factory(DIGITS_CONFIGS[name], epochs) for name in models}
    eval_data = evaluation.load_eval_data("digits")
    return run_comparison("paper_a_digits", out_dir, configs, eval_data,
                          list(range(seed, seed + num_seeds)), classifier_dir, models=models,
                          skip_missing=skip_missing,
                          note="digits test split (fixed stratified 20%, 360 images, 16x16); "
                               "probes fit on the 1,437 train images")


def paper_a_mnist_configs(dataset, epochs=None, models=PAPER_A_MODELS):
    """(configs/mnist_dev.cfg's config, {model: config factory}) of ``paper_a_mnist`` on
    ``dataset``: Lr-LiVAE's mnist_dev.cfg and each baseline's digits config with mnist_dev.cfg's
    data set, image size, epochs, steps per epoch, batch size and learning-rate schedule."""
    lrlivae = common.suite_config("mnist_dev.cfg", "unused", dataset=dataset)
    shared = dict(dataset=dataset, image_size=lrlivae.image_size,
                  steps_per_epoch=lrlivae.steps_per_epoch, batch_size=lrlivae.batch_size,
                  learning_rate=lrlivae.learning_rate, lr_schedule=lrlivae.lr_schedule,
                  lr_final_fraction=lrlivae.lr_final_fraction)
    epochs = epochs or lrlivae.epochs
    configs = {name: _config_factory(DIGITS_CONFIGS[name], epochs, **shared)
               for name in models if name != "lrlivae"}
    if "lrlivae" in models:
        configs["lrlivae"] = _config_factory("mnist_dev.cfg", epochs, dataset=dataset)
    return lrlivae, configs


@BENCHMARKS.register("paper_a_mnist")
def paper_a_mnist(out_dir, seed=0, epochs=None, num_seeds=1, data_path=None,
                  classifier_dir=None, models=PAPER_A_MODELS, skip_missing=False):
    """The four models on the real MNIST digits of ``data_path`` (mnist_dev.npz) at 32×32.

    Configs: :func:`paper_a_mnist_configs` (all four under mnist_dev.cfg's schedule)."""
    common.require_data_file("paper_a_mnist", data_path)
    dataset = f"npz:{os.path.abspath(data_path)}"
    lrlivae, configs = paper_a_mnist_configs(dataset, epochs, models)
    eval_data = evaluation.load_eval_data(dataset, image_size=lrlivae.image_size)
    result = run_comparison(
        "paper_a_mnist", out_dir, configs, eval_data, list(range(seed, seed + num_seeds)),
        classifier_dir, models=models, skip_missing=skip_missing,
        note=f"test split of {os.path.basename(data_path)} ({len(eval_data.test_labels)} "
             f"images) at {lrlivae.image_size}x{lrlivae.image_size}; probes fit on its "
             f"{len(eval_data.train_labels)} train images")
    result["data_path"] = os.path.abspath(data_path)
    return result
