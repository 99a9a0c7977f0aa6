"""Quality benchmarks of Lr-LiVAE (paper A) on the offline data sets.

``lrlivae_digits`` (targets in brackets), on the digits test split:
  * zs_accuracy: argmax of ``predict_labels`` (q(c|z_s), Eq. 8) [>= 0.97];
  * zu_leakage: fresh linear, 15-NN and MLP classifiers trained on frozen z_u (posterior mean)
    of the train split, test accuracy vs chance 0.1; ``zu_leakage_accuracy`` is the highest of
    the three (a linear probe alone hides leakage, DESIGN.md) [<= 0.20]; the same on posterior
    samples (what the decoder receives) as ``zu_leakage_accuracy_posterior_samples``;
  * conditional_accuracy: an independent CNN trained on the real train split classifies
    ``generate(c)`` (100 per class) [>= 0.90];
  * swap_consistency: the independent classifier's class of swap(a, b) (z_s of a, z_u of b, b of
    another class) equals a's class [>= 0.90]; ``swap_follows_zu`` how often it is b's instead;
  * recon_mse (per pixel); inpaint_mse per paper mask on the missing pixels, for the paper's
    encoder pass and for MAP code search, against filling them with the train split's mean image
    (must beat it);
  * intra-class diversity (Eq. 12, 1 − MS-SSIM) of generated vs real test images; IS and FID on
    the independent classifier (its probabilities and penultimate features; not Inception-v3);
  * semi-supervised (§3.6/§4.4): labels for classes 0–6 only, then fine-tuning on unlabeled
    images of 7–9: swap consistency of unseen classes before and after fine-tuning. Its
    supervised phase trains at a constant rate (:data:`SEMI_LR_SCHEDULE`), not the configs'
    cosine decay, which was measured to leave less to fine-tune.
``lrlivae_semi``: the semi-supervised case alone, over seeds, on digits or mnist_dev.npz.
``lrlivae_shapes``: on ``shapes`` (class = shape; position, scale, rotation, intensity known),
R² of linear probes predicting each non-class factor from z_u and from z_s, plus leakage.

The numbers come from :func:`keras_lsvae.evaluation.disentanglement_report` and the other
protocols of :mod:`keras_lsvae.evaluation`; this module chooses the configs (package data:
:mod:`keras_lsvae.benchmarks.common`), data, seeds and targets.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from keras_lsvae import data, evaluation
from keras_lsvae.benchmarks.common import (require_data_file, suite_config, train_and_load)
from keras_lsvae.registry import BENCHMARKS
from keras_lsvae.training import train
from keras_lsvae.training.loop import versions


def digits_config(workdir, seed=0, epochs=None, **overrides):
    """configs/digits.cfg (the main job) as a TrainConfig, so the benchmark measures exactly
    what the README's first command trains."""
    return suite_config("digits.cfg", workdir, seed, epochs, **overrides)


#: The issue's targets on the digits test split: (direction, threshold).
DIGITS_TARGETS = {"zs_accuracy": (">=", 0.97), "zu_leakage_accuracy": ("<=", 0.20),
                  "conditional_accuracy": (">=", 0.90), "swap_consistency": (">=", 0.90)}


def targets_met(result, targets=DIGITS_TARGETS):
    """{name: bool} for each target (and inpainting: MAP codes beat the mean fill on every mask)."""
    met = {name: (result[name] >= bound if sign == ">=" else result[name] <= bound)
           for name, (sign, bound) in targets.items()}
    if "inpaint_mse" in result:
        met["inpaint_beats_mean_fill"] = all(entry["optimize_beats_mean_fill"]
                                             for entry in result["inpaint_mse"].values())
    return met


def _train_and_evaluate(config, classifier, classifier_accuracy, split_note,
                        targets=DIGITS_TARGETS):
    """Train ``config`` (restarting its workdir) and measure the trained model on the config's
    data set: train split for the probes, test split for every number."""
    model, train_seconds = train_and_load(config)
    arrays = dict(data_dir=config.data_dir, image_size=config.image_size)
    train_images, train_labels = data.load_arrays(config.dataset, "train", **arrays)
    test_images, test_labels = data.load_arrays(config.dataset, "test", **arrays)
    result = {"settings": config.to_json(), "versions": versions(), "seed": config.seed,
              "split": split_note, "train_seconds": train_seconds,
              "eval_classifier_test_accuracy": classifier_accuracy}
    result.update(evaluation.disentanglement_report(model, train_images, train_labels,
                                                    test_images, test_labels, classifier,
                                                    seed=config.seed))
    result["targets_met"] = targets_met(result, targets)
    return result


def _train_and_evaluate_digits(out_dir, seed, epochs, classifier, classifier_accuracy):
    config = digits_config(os.path.join(out_dir, f"lrlivae_digits_run_seed{seed}"), seed, epochs)
    return config, _train_and_evaluate(config, classifier, classifier_accuracy,
                                       "digits test (fixed stratified 20% split, 360 images)")


def _digits_classifier(seed, classifier_epochs):
    train_images, train_labels = data.load_arrays("digits", "train")
    test_images, test_labels = data.load_arrays("digits", "test")
    return evaluation.fresh_classifier(train_images, train_labels, test_images, test_labels,
                                       seed, classifier_epochs)


def _spread(values):
    """{"median", "min", "max"} of one number over seeds."""
    return {"median": float(np.median(values)), "min": float(np.min(values)),
            "max": float(np.max(values))}


def _seed_summary(runs, targets, extra_keys):
    """Every target for every seed, and the median / min / max of each number over seeds."""
    keys = list(targets) + list(extra_keys)
    summary = {key: _spread([r[key] for r in runs]) for key in keys}
    met = {name: all(r["targets_met"][name] for r in runs) for name in runs[0]["targets_met"]}
    return {"seeds": [r["seed"] for r in runs], "targets": {k: list(v) for k, v in
                                                              targets.items()},
            "targets_met_for_every_seed": met, "summary": summary, "runs": runs,
            "settings": runs[0]["settings"], "versions": versions()}


@BENCHMARKS.register("lrlivae_digits")
def lrlivae_digits(out_dir, seed=0, epochs=None, semi_supervised=True, classifier_epochs=30):
    """Train Lr-LiVAE on digits (configs/digits.cfg settings) and measure it (module doc)."""
    classifier, classifier_accuracy = _digits_classifier(seed, classifier_epochs)
    config, result = _train_and_evaluate_digits(out_dir, seed, epochs, classifier,
                                                classifier_accuracy)
    if semi_supervised:
        test_images, test_labels = data.load_arrays("digits", "test")
        result["semi_supervised"] = _semi_supervised(out_dir, config, classifier, test_images,
                                                     test_labels, seed)
    return result


@BENCHMARKS.register("lrlivae_digits_seeds")
def lrlivae_digits_seeds(out_dir, seed=0, epochs=None, num_seeds=3, classifier_epochs=30):
    """``lrlivae_digits`` without the semi-supervised case, for seeds seed … seed+num_seeds−1:
    whether every target holds for every seed, and the median / min / max of each number (one
    evaluation classifier, trained with ``seed``, judges all runs)."""
    classifier, classifier_accuracy = _digits_classifier(seed, classifier_epochs)
    runs = [_train_and_evaluate_digits(out_dir, s, epochs, classifier, classifier_accuracy)[1]
            for s in range(seed, seed + num_seeds)]
    result = _seed_summary(runs, DIGITS_TARGETS, SUMMARY_KEYS)
    result["eval_classifier_test_accuracy"] = classifier_accuracy
    return result


SUMMARY_KEYS = ("recon_mse", "diversity_generated", "fid_vs_test",
                "zu_leakage_accuracy_posterior_samples", "train_seconds")

#: The MNIST targets on the test split of mnist_dev.npz (real 28x28 MNIST shown at 32x32).
MNIST_TARGETS = {"zs_accuracy": (">=", 0.98), "zu_leakage_accuracy": ("<=", 0.20),
                 "conditional_accuracy": (">=", 0.95), "swap_consistency": (">=", 0.95),
                 "recon_mse": ("<=", 0.025)}


def _mnist_setup(suite, data_path, epochs, seed, classifier_epochs):
    """configs/mnist_dev.cfg on the npz at ``data_path`` (a FileNotFoundError saying what to
    pass if it is missing), its test split, and the evaluation CNN trained on its train split:
    (config, (test images, test labels), classifier, classifier's test accuracy)."""
    require_data_file(suite, data_path)
    dataset = f"npz:{os.path.abspath(data_path)}"
    base = suite_config("mnist_dev.cfg", "unused", epochs=epochs, dataset=dataset)
    arrays = dict(image_size=base.image_size)
    train_images, train_labels = data.load_arrays(dataset, "train", **arrays)
    test_images, test_labels = data.load_arrays(dataset, "test", **arrays)
    classifier, classifier_accuracy = evaluation.fresh_classifier(
        train_images, train_labels, test_images, test_labels, seed, classifier_epochs)
    return base, (test_images, test_labels), classifier, classifier_accuracy


@BENCHMARKS.register("lrlivae_mnist")
def lrlivae_mnist(out_dir, seed=0, epochs=None, num_seeds=1, data_path=None,
                  classifier_epochs=15, semi_supervised=True):
    """``configs/mnist_dev.cfg`` (the settings of ``configs/mnist.cfg``) trained on the train
    split of ``data_path`` (an ``npz:`` file such as mnist_dev.npz: 7,000 real MNIST digits)
    for seeds seed … seed+num_seeds−1, measured on its test split (1,000 digits) against
    ``MNIST_TARGETS``; one evaluation CNN, trained on the real train split, judges every run.
    With ``semi_supervised``, the §3.6 case (labels for 0–6, unlabeled 7–9) once, with ``seed``
    (a second training run of the same length plus a third of it for fine-tuning)."""
    base, (test_images, test_labels), classifier, classifier_accuracy = _mnist_setup(
        "lrlivae_mnist", data_path, epochs, seed, classifier_epochs)
    note = (f"test split of {os.path.basename(data_path)} ({len(test_labels)} images) at "
            f"{base.image_size}x{base.image_size}; probes fit on its train split")
    runs = [_train_and_evaluate(
        dataclasses.replace(base, seed=s,
                            workdir=os.path.join(out_dir, f"lrlivae_mnist_run_seed{s}")),
        classifier, classifier_accuracy, note, MNIST_TARGETS)
        for s in range(seed, seed + num_seeds)]
    result = _seed_summary(runs, MNIST_TARGETS, [k for k in SUMMARY_KEYS if k != "recon_mse"])
    result["eval_classifier_test_accuracy"] = classifier_accuracy
    result["data"] = os.path.abspath(data_path)
    if semi_supervised:
        result["semi_supervised"] = _semi_supervised(
            out_dir, dataclasses.replace(base, seed=seed), classifier, test_images, test_labels,
            seed, name="lrlivae_mnist_semi")
    return result


#: Learning-rate schedule of the §3.6 runs: constant, as the paper trains. Fine-tuning after
#: the configs' cosine decay was measured worse (MNIST seeds 0 / 1, unseen swap consistency
#: after fine-tuning 0.69 / 0.55 vs 0.82 / 0.77 at a constant rate; docs/lrlivae.md),
#: whichever rate the fine-tuning epochs ran at.
SEMI_LR_SCHEDULE = "constant"


def _semi_supervised(out_dir, config, classifier, test_images, test_labels, seed,
                     seen=tuple(range(7)), unseen=(7, 8, 9), name="lrlivae_digits_semi",
                     lr_schedule=SEMI_LR_SCHEDULE):
    """Labels for ``seen`` only, trained at ``lr_schedule``; then fine-tuning on unlabeled
    ``unseen`` images of the config's own data set (§3.6).

    Swap consistency of unseen classes: z_s from a test image of an unseen class, z_u from a
    test image of another class; the independent 10-class classifier should see a's class.
    """
    workdir = os.path.join(out_dir, name)
    phase1 = dataclasses.replace(config, workdir=workdir, classes=tuple(seen),
                                 lr_schedule=lr_schedule)
    train(phase1)
    rng = np.random.default_rng(seed)
    unseen_idx = np.flatnonzero(np.isin(test_labels, unseen))
    partners = evaluation.swap_partners(test_labels[unseen_idx], test_labels, rng)
    seen_idx = np.flatnonzero(np.isin(test_labels, seen))

    def measure():
        return evaluation.unseen_swap_report(evaluation.load_workdir_model(workdir),
                                             classifier, test_images, test_labels, unseen_idx,
                                             partners, seen_idx)

    before = measure()
    finetune_epochs = max(1, config.epochs // 3)
    phase2 = dataclasses.replace(phase1, restart=False, unlabeled_dataset=config.dataset,
                                 unlabeled_classes=tuple(unseen),
                                 finetune_epochs=finetune_epochs)
    train(phase2)
    after = measure()
    return {"labeled_classes": list(seen), "unlabeled_classes": list(unseen),
            "lr_schedule": lr_schedule, "seed": config.seed,
            "finetune_epochs": finetune_epochs, "num_unseen_test": int(len(unseen_idx)),
            "before_finetuning": before, "after_finetuning": after}


@BENCHMARKS.register("lrlivae_semi")
def lrlivae_semi(out_dir, seed=0, epochs=None, num_seeds=2, data_path=None,
                 lr_schedule=SEMI_LR_SCHEDULE, classifier_epochs=None):
    """The §3.6 case alone (labels for 0–6, then fine-tuning with unlabeled 7–9; swap
    consistency of the unseen classes before and after) for seeds seed … seed+num_seeds−1:
    on digits with configs/digits.cfg's settings, or with ``data_path`` (mnist_dev.npz) on
    that file with configs/mnist_dev.cfg's. ``lr_schedule`` is the supervised phase's
    (:data:`SEMI_LR_SCHEDULE`; "cosine" is the configs' own). One evaluation CNN, trained with
    ``seed``, judges every run; the median / min / max over seeds of each number."""
    if data_path:
        base, (test_images, test_labels), classifier, accuracy = _mnist_setup(
            "lrlivae_semi", data_path, epochs, seed, classifier_epochs or 15)
        prefix = "lrlivae_mnist_semi"
    else:
        classifier, accuracy = _digits_classifier(seed, classifier_epochs or 30)
        base = digits_config("unused", seed, epochs)
        test_images, test_labels = data.load_arrays("digits", "test")
        prefix = "lrlivae_digits_semi"
    runs = [_semi_supervised(out_dir, dataclasses.replace(base, seed=s), classifier,
                             test_images, test_labels, s, name=f"{prefix}_seed{s}",
                             lr_schedule=lr_schedule)
            for s in range(seed, seed + num_seeds)]
    summary = {f"{stage}.{key}": _spread([run[stage][key] for run in runs])
               for stage in ("before_finetuning", "after_finetuning") for key in runs[0][stage]}
    return {"seeds": list(range(seed, seed + num_seeds)), "lr_schedule": lr_schedule,
            "dataset": base.dataset, "eval_classifier_test_accuracy": accuracy,
            "summary": summary, "runs": runs, "settings": base.to_json(),
            "versions": versions()}


@BENCHMARKS.register("lrlivae_shapes")
def lrlivae_shapes(out_dir, seed=0, epochs=None):
    """Lr-LiVAE on ``shapes``: is the non-class information in z_u and not in z_s?"""
    from keras_lsvae.data import shapes

    digits = digits_config(os.path.join(out_dir, "lrlivae_shapes_run"), seed)
    # The HSIC weight of digits.cfg is tuned for 10 classes and 16-d codes; on shapes (4 classes,
    # 8-d codes) it over-constrains z_u (position R² from z_u fell from ~0.96 to ~0.6), so this
    # suite measures the paper's objectives plus the digits config's other settings.
    config = dataclasses.replace(digits, dataset="shapes", epochs=int(epochs or 12),
                                 model_args=dict(digits.model_args, zs_dim=8, zu_dim=8),
                                 extensions={name: params for name, params
                                             in digits.extensions.items() if name != "hsic"})
    model, train_seconds = train_and_load(config)
    train_images, train_labels = data.load_arrays("shapes", "train", max_examples=4000)
    test_images, test_labels = data.load_arrays("shapes", "test")
    train_factors = {k: v[:4000] for k, v in shapes.load_factors("train").items()}
    test_factors = shapes.load_factors("test")
    names = [n for n in shapes.FACTOR_NAMES if n != "rotation"]  # rotation aliases by symmetry
    targets = lambda f: np.stack([f[n] for n in names], axis=1)  # noqa: E731
    codes_train = evaluation.encoded(model, train_images, train_labels)
    codes_test = evaluation.encoded(model, test_images, test_labels)
    result = {"settings": config.to_json(), "versions": versions(), "seed": seed,
              "train_seconds": train_seconds,
              "split": "shapes test (3000 images, seed 1); probes fit on 4000 train images",
              "zs_accuracy": evaluation.label_accuracy(model, test_images, test_labels)}
    result.update(evaluation.factor_r2(
        codes_train, targets(train_factors), codes_test, targets(test_factors), names,
        (model.label_irrelevant_code, model.label_relevant_code)))
    result["zu_leakage"] = evaluation.code_leakage(
        codes_train, train_labels, codes_test, test_labels, model.label_irrelevant_code,
        model.num_classes, seed=seed)
    result["recon_mse"] = evaluation.reconstruction_mse(model, test_images, test_labels)
    result["probe_notes"] = ("rotation is left out: square, cross and triangle rotations alias "
                             "under their symmetries, so no code can predict it linearly")
    return result
