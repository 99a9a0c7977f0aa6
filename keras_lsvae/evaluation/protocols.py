"""The papers' evaluation protocols, each written once, on a trained model and real arrays.

Which protocol applies to a model follows from the capabilities its class declares
(:mod:`keras_lsvae.models.capabilities`), never from probing its methods. Building blocks:

* :func:`generation_report` (``Generates``): IS, FID, intra-class FID, intra-class MS-SSIM
  diversity (Eq. 12) and conditional accuracy of ``samples_per_class`` samples per class;
* :func:`label_accuracy` (``PredictsLabels``), :func:`code_leakage` (``Encodes``: fresh
  linear / 15-NN / MLP probes on a frozen code), :func:`reconstruction_mse` (``Reconstructs``);
* :func:`masked_errors` (``Inpaints``): paper A §4.5's three masks, the missing pixels first set
  to the train split's mean image, against filling them with it; :func:`inpainting_mse` and
  :func:`inpainting_report` are its two summaries;
* :func:`swap_partners` / :func:`swap_consistency` (``Swaps``);
* :func:`transfer_pairs` / :func:`transfer_report` (``ManipulatesAttributes``): paper B §5.4
  methods 1 and 2;
* :func:`attribute_code_probes`: paper B §5.1's probes of y from w and from z;
  :func:`factor_r2`: known factors from each code.

Composed reports: :func:`evaluate_model` (paper A Tables 1–2, every metric a class model
supports), :func:`disentanglement_report` (the Lr-LiVAE suites' numbers) and
:func:`unseen_swap_report` (§3.6).
"""

from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np

from keras_lsvae import metrics
from keras_lsvae.evaluation.classifiers import EvalClassifier, EvalData, versions
from keras_lsvae.masks import make_mask
from keras_lsvae.metrics import inception_v3
from keras_lsvae.models import capabilities as caps

#: Paper A §4.5's three masks.
PAPER_MASKS = ("right_half", "eyes_band", "bottom_half")
#: Test images inpainted per mask (the first 200).
INPAINT_EXAMPLES = 200
SAMPLES_PER_CLASS = 100
#: Every per-model number of :func:`evaluate_model`, in table order. Not every model has every
#: number (None / "—").
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


def model_name(model) -> str:
    """The registered name of ``model``'s class (e.g. ``"lrlivae"``), else the class name."""
    from keras_lsvae.registry import MODELS

    for name in MODELS.names():
        if MODELS.get(name) is type(model):
            return name
    return type(model).__name__.lower()


def check_shapes(model, eval_data: EvalData) -> None:
    """A ValueError unless ``model`` takes ``eval_data``'s images and has its classes."""
    shape = tuple(model.example_shape)
    if shape != eval_data.image_shape:
        raise ValueError(
            f"mismatched image shapes: the model takes {shape}, {eval_data.dataset} gives "
            f"{eval_data.image_shape} (evaluate at the image size the model was trained with: "
            "--image_size)")
    k = model.num_classes
    if eval_data.num_classes is not None and int(k) != eval_data.num_classes:
        raise ValueError(f"the model has {k} classes, {eval_data.dataset} has "
                         f"{eval_data.num_classes}")


def _max_probe(report) -> float:
    return max(report["linear"], report["knn"], report["mlp"])


# ------------------------------------------------------------------------ building blocks
def generation_report(model, classifier, real_images, real_labels, num_classes: int,
                      samples_per_class: int = SAMPLES_PER_CLASS, seed: int = 0):
    """``samples_per_class`` samples of each of ``num_classes`` classes (``generate`` with
    ``seed``) scored against the real images by ``classifier`` (a Keras evaluation classifier):
    Inception Score (10 splits), FID and intra-class FID on its ``features``, intra-class
    MS-SSIM diversity (Eq. 12, seed ``seed``) and conditional accuracy.

    Returns ``{"requested", "generated", "is_mean", "is_std", "fid", "intra_fid",
    "intra_fid_per_class", "diversity" (the metrics' report), "conditional" (the report),
    "feature_dim"}``."""
    requested = np.repeat(np.arange(num_classes), samples_per_class).astype(np.int32)
    generated = np.asarray(model.generate(requested, seed=seed), np.float32)
    if generated.shape[1:] != tuple(real_images.shape[1:]):
        raise ValueError(f"mismatched image shapes: generate() gave {generated.shape[1:]}, the "
                         f"data set has {tuple(real_images.shape[1:])}")
    is_mean, is_std = metrics.inception_score(metrics.predict_probs(classifier, generated))
    gen_feats = metrics.features(classifier, generated)
    real_feats = metrics.features(classifier, real_images)
    intra = metrics.intra_class_fid(real_feats, real_labels, gen_feats, requested)
    return {"requested": requested, "generated": generated, "is_mean": is_mean,
            "is_std": is_std, "fid": metrics.frechet_distance(gen_feats, real_feats),
            "intra_fid": intra["mean"], "intra_fid_per_class": intra["per_class"],
            "diversity": metrics.intra_class_diversity(generated, requested, seed=seed),
            "conditional": metrics.conditional_accuracy_report(classifier, generated,
                                                               requested),
            "feature_dim": int(gen_feats.shape[1])}


def label_accuracy(model, images, labels) -> float:
    """Accuracy of the argmax of the model's own ``predict_labels`` (``PredictsLabels``)."""
    probs = np.asarray(model.predict_labels(images))
    return float(np.mean(np.argmax(probs, -1) == labels))


def encoded(model, images, labels, mode="mode") -> Dict[str, np.ndarray]:
    """``encode_labeled`` (``Encodes``) as numpy arrays."""
    return {key: np.asarray(value)
            for key, value in model.encode_labeled(images, labels, mode=mode).items()}


def code_leakage(codes_train, train_labels, codes_test, test_labels, code, num_classes,
                 seed=0):
    """Fresh linear, 15-NN and MLP probes trained on the frozen ``code`` of the train split,
    scored on the test split (:func:`keras_lsvae.metrics.leakage_report`, chance 1/K)."""
    return metrics.leakage_report(codes_train[code], train_labels, codes_test[code],
                                  test_labels, num_classes, seed=seed)


def reconstruction_mse(model, images, labels) -> float:
    """Per-pixel MSE of ``reconstruct_labeled`` (``Reconstructs``) against ``images``."""
    recon = np.asarray(model.reconstruct_labeled(images, labels))
    return float(np.mean((recon - images) ** 2))


def masked_errors(model, images, labels, mean_image, methods=("encode",),
                  masks=PAPER_MASKS) -> Dict[str, Dict[str, float]]:
    """Per mask: per-pixel MSE on the missing pixels of ``inpaint_labeled`` (``Inpaints``) for
    each of ``methods``, with the missing pixels first set to ``mean_image``, and
    ``"mean_fill"``: the MSE of filling them with ``mean_image`` alone (the baseline)."""
    height, width = images.shape[1:3]
    errors = {}
    for kind in masks:
        mask = make_mask(kind, height, width)
        missing = np.broadcast_to(mask, images.shape) > 0
        baseline = np.where(missing, mean_image[None], images)
        entry = {"mean_fill": float(np.mean((baseline[missing] - images[missing]) ** 2))}
        for method in methods:
            inpainted = np.asarray(model.inpaint_labeled(images, mask, labels,
                                                         fill_value=mean_image, method=method))
            entry[method] = float(np.mean((inpainted[missing] - images[missing]) ** 2))
        errors[kind] = entry
    return errors


def inpainting_mse(model, images, labels, mean_image, masks=PAPER_MASKS) -> Dict[str, object]:
    """:func:`masked_errors` of the encoder pass, as :func:`evaluate_model` reports it:
    ``{"per_mask": {mask: {"model", "mean_fill"}}, "mean", "mean_fill_mean", "labels_given"
    (the model read the true labels: cVAE), "num_images", "fill"}``."""
    errors = masked_errors(model, images, labels, mean_image, ("encode",), masks)
    per_mask = {kind: {"model": entry["encode"], "mean_fill": entry["mean_fill"]}
                for kind, entry in errors.items()}
    return {"per_mask": per_mask, "labels_given": bool(model.inpaint_uses_labels),
            "num_images": int(len(images)), "fill": "train-split mean image",
            "mean": float(np.mean([v["model"] for v in per_mask.values()])),
            "mean_fill_mean": float(np.mean([v["mean_fill"] for v in per_mask.values()]))}


def inpainting_report(model, images, labels, mean_image) -> Dict[str, Dict[str, object]]:
    """:func:`masked_errors` for every method the model declares (``INPAINT_METHODS``;
    Lr-LiVAE: the paper's encoder pass and MAP code search), each with whether it beats the
    mean fill: ``{mask: {"mean_fill", method, f"{method}_beats_mean_fill", ...}}``."""
    report = masked_errors(model, images, labels, mean_image, tuple(model.INPAINT_METHODS))
    for entry in report.values():
        for method in model.INPAINT_METHODS:
            entry[f"{method}_beats_mean_fill"] = entry[method] < entry["mean_fill"]
    return report


def swap_partners(labels_s, labels_pool, rng):
    """For each i, an index j into ``labels_pool`` with labels_pool[j] != labels_s[i]."""
    return np.asarray([rng.choice(np.flatnonzero(labels_pool != label)) for label in labels_s])


def swap_consistency(model, classifier, images_s, labels_s, images_u, labels_u):
    """Fraction of ``swap(a, b)`` (``Swaps``) the classifier reads as a's class, and as b's."""
    predicted = np.argmax(metrics.predict_probs(classifier, np.asarray(
        model.swap(images_s, images_u))), axis=-1)
    return float(np.mean(predicted == labels_s)), float(np.mean(predicted == labels_u))


def one_hot(class_ids, num_classes):
    return np.eye(num_classes, dtype=np.float32)[np.asarray(class_ids, np.int64)]


def transfer_pairs(class_ids, num_classes):
    """(image index, target class) for every image and every class other than its own."""
    class_ids = np.asarray(class_ids, np.int64)
    index = np.repeat(np.arange(len(class_ids)), num_classes - 1)
    offsets = np.tile(np.arange(1, num_classes), len(class_ids))
    targets = (class_ids[index] + offsets) % num_classes
    return index, targets


def transfer_report(model, images, class_ids, num_classes, classifier=None, true_targets=None,
                    batch_size=500):
    """Paper B §5.4: switch every image to every other class with ``manipulate_attributes``
    (``ManipulatesAttributes``; one-hot attributes, the images' own as the source); score the
    changed images.

    Returns {"accuracy" (if ``classifier``): fraction the classifier assigns to the target
    class (method 1), "target_mse" (if ``true_targets``, a callable (index, target) -> images):
    per-pixel MSE to the true target images (method 2), "change": per-pixel MSE to the
    originals, "num_changed"}.
    """
    index, targets = transfer_pairs(class_ids, num_classes)
    hits, target_sq, change_sq = [], [], []
    for start in range(0, len(index), batch_size):
        rows, goal = index[start:start + batch_size], targets[start:start + batch_size]
        originals = images[rows]
        changed = np.asarray(model.manipulate_attributes(
            originals, one_hot(class_ids[rows], num_classes), one_hot(goal, num_classes)))
        axes = tuple(range(1, changed.ndim))
        change_sq.append(np.mean((changed - originals) ** 2, axis=axes))
        if classifier is not None:
            hits.append(np.argmax(metrics.predict_probs(classifier, changed), -1) == goal)
        if true_targets is not None:
            target_sq.append(np.mean((changed - true_targets(rows, goal)) ** 2, axis=axes))
    report = {"change": float(np.mean(np.concatenate(change_sq))),
              "num_changed": int(len(index))}
    if hits:
        report["accuracy"] = float(np.mean(np.concatenate(hits)))
    if target_sq:
        report["target_mse"] = float(np.mean(np.concatenate(target_sq)))
    return report


def attribute_code_probes(model, train, test, attribute=0, seed=0,
                          kinds=("linear", "knn")) -> Dict[str, object]:
    """Paper B §5.1: fresh probes fit on the train split's posterior means predict binary
    attribute ``attribute`` from the label-relevant code (CSVAE's w) and from the
    label-irrelevant one (z); ``train``/``test`` are (inputs, attribute rows). Returns
    ``{"w_accuracy", "z_accuracy"`` (the larger probe of each: a linear probe alone hides
    leakage, DESIGN.md), ``"probes": {"w": {kind: acc}, "z": {...}}}``."""
    codes = {}
    for split, (inputs, attributes) in (("train", train), ("test", test)):
        values = encoded(model, inputs, attributes)
        codes[split] = {"w": values[f"{model.label_relevant_code}_mean"],
                        "z": values[f"{model.label_irrelevant_code}_mean"],
                        "y": np.asarray(attributes)[:, attribute].astype(np.int64)}
    probes = {code: {kind: metrics.probe_accuracy(
        codes["train"][code], codes["train"]["y"], codes["test"][code], codes["test"]["y"],
        kind=kind, seed=seed) for kind in kinds} for code in ("w", "z")}
    return {"w_accuracy": max(probes["w"].values()), "z_accuracy": max(probes["z"].values()),
            "probes": probes}


def factor_r2(codes_train, train_targets, codes_test, test_targets, names,
              codes) -> Dict[str, object]:
    """R² of fresh linear regressors predicting known factors ``train_targets`` (N, F) from
    each of ``codes`` (names of frozen codes from :func:`encoded`), train → test: the
    label-irrelevant code should carry them, the label-relevant one should not (DESIGN.md
    "Known factors"). Returns ``{"r2_from_<code>": the metrics' report}``."""
    return {f"r2_from_{code}": metrics.regression_r2(
        codes_train[code], train_targets, codes_test[code], test_targets, names=names)
        for code in codes}


# ----------------------------------------------------------------------- composed reports
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
    """Every metric of paper A's Tables 1–2 that applies to ``model`` (a trained class-label
    model) on ``eval_data``.

    Always (``Generates``): :func:`generation_report` of ``samples_per_class`` samples per
    class (seed ``seed``) against the real test split. By declared capability:
    ``PredictsLabels`` -> label_accuracy; ``Encodes`` -> leakage probes on the model's
    ``label_irrelevant_code``; ``Reconstructs`` -> recon_mse; ``Inpaints`` -> inpaint_mse
    (:func:`inpainting_mse` of the first ``inpaint_examples`` test images). Standard
    Inception-v3 IS/FID only if its weights are on this machine
    (:mod:`keras_lsvae.metrics.inception_v3`), else the "not available" message.

    Returns ``{"model", "metrics": {name: float or None}, "details", "settings",
    "eval_classifier", "inception_v3", "versions", "eval_seconds"}``.
    """
    started = time.time()
    check_shapes(model, eval_data)
    k = int(model.num_classes)
    test_images, test_labels = eval_data.test_images, eval_data.test_labels
    values: Dict[str, Optional[float]] = {name: None for name in METRICS_ORDER}
    details: Dict[str, object] = {}

    gen = generation_report(model, classifier.model, test_images, test_labels, k,
                            samples_per_class, seed)
    values.update(is_mean=gen["is_mean"], is_std=gen["is_std"], fid=gen["fid"],
                  intra_fid=gen["intra_fid"], diversity=gen["diversity"]["mean"],
                  conditional_accuracy=gen["conditional"]["accuracy"])
    details.update(intra_fid_per_class=gen["intra_fid_per_class"],
                   diversity_per_class=gen["diversity"]["per_class"],
                   conditional_accuracy_per_class=gen["conditional"]["per_class"])

    if caps.supports(model, caps.PredictsLabels):
        values["label_accuracy"] = label_accuracy(model, test_images, test_labels)
    if caps.supports(model, caps.Encodes) and probes:
        code = model.label_irrelevant_code
        leak = code_leakage(encoded(model, eval_data.train_images, eval_data.train_labels),
                            eval_data.train_labels, encoded(model, test_images, test_labels),
                            test_labels, code, k, seed=seed)
        leak["code"] = code
        leak["code_is"] = "posterior mean (encode mode='mode')"
        details["z_leakage"] = leak
        values["z_leakage"] = _max_probe(leak)
    if caps.supports(model, caps.Reconstructs):
        values["recon_mse"] = reconstruction_mse(model, test_images, test_labels)
    if caps.supports(model, caps.Inpaints):
        inpaint = inpainting_mse(model, test_images[:inpaint_examples],
                                 test_labels[:inpaint_examples],
                                 eval_data.train_images.mean(axis=0))
        details["inpaint"] = inpaint
        values["inpaint_mse"] = inpaint["mean"]

    generated, requested = gen["generated"], gen["requested"]
    if use_inception_v3:
        v3 = inception_v3.inception_v3_scores(generated, test_images, inception_v3_weights)
    else:
        v3 = {"available": False, "message": "inception_v3: not computed (switched off)"}
    extractor = (f"evaluation classifier ({classifier.backbone}, test accuracy "
                 f"{classifier.test_accuracy:.4f}; {gen['feature_dim']}-d 'features' layer for "
                 "FID), not Inception-v3")
    div = gen["diversity"]
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


def disentanglement_report(model, train_images, train_labels, test_images, test_labels,
                           classifier, seed=0, samples_per_class=SAMPLES_PER_CLASS,
                           inpaint_examples=INPAINT_EXAMPLES):
    """The Lr-LiVAE suites' numbers for a trained model that ``PredictsLabels``, ``Encodes``
    (a label-relevant and a label-irrelevant code), ``Generates``, ``Swaps``,
    ``Reconstructs`` and ``Inpaints`` (keras_lsvae/benchmarks/lrlivae.py lists them with
    their targets); ``classifier`` is an independent evaluation CNN trained on the real train
    split. Swap partners are drawn with ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    k = model.num_classes
    irrelevant, relevant = model.label_irrelevant_code, model.label_relevant_code
    result = {"num_test": int(len(test_labels)), "num_train": int(len(train_labels))}
    result["zs_accuracy"] = label_accuracy(model, test_images, test_labels)
    codes_train = encoded(model, train_images, train_labels)
    codes_test = encoded(model, test_images, test_labels)
    zu = code_leakage(codes_train, train_labels, codes_test, test_labels, irrelevant, k, seed)
    zs = code_leakage(codes_train, train_labels, codes_test, test_labels, relevant, k, seed)
    result["zu_leakage"] = zu
    result["zu_leakage_accuracy"] = _max_probe(zu)
    # The decoder sees z_u ~ q(z_u|x), not μ_u: probes of posterior samples measure the class
    # information the decoder can get (bounded by the KL of z_u), probes of μ_u the stricter
    # "any trace in the code" (the headline number above).
    zu_sampled = code_leakage(encoded(model, train_images, train_labels, mode="sample"),
                              train_labels,
                              encoded(model, test_images, test_labels, mode="sample"),
                              test_labels, irrelevant, k, seed)
    result["zu_leakage_posterior_samples"] = zu_sampled
    result["zu_leakage_accuracy_posterior_samples"] = _max_probe(zu_sampled)
    result["zs_probe"] = zs
    gen = generation_report(model, classifier, test_images, test_labels, k, samples_per_class,
                            seed)
    result["conditional_accuracy"] = gen["conditional"]["accuracy"]
    result["conditional_accuracy_per_class"] = gen["conditional"]["per_class"]
    partners = swap_partners(test_labels, test_labels, rng)
    result["swap_consistency"], result["swap_follows_zu"] = swap_consistency(
        model, classifier, test_images, test_labels, test_images[partners],
        test_labels[partners])
    result["recon_mse"] = reconstruction_mse(model, test_images, test_labels)
    result["inpaint_mse"] = inpainting_report(model, test_images[:inpaint_examples],
                                              test_labels[:inpaint_examples],
                                              train_images.mean(axis=0))
    real_div = metrics.intra_class_diversity(test_images, test_labels, seed=seed)
    result["diversity_generated"] = gen["diversity"]["mean"]
    result["diversity_real"] = real_div["mean"]
    result["diversity_settings"] = gen["diversity"]["ms_ssim"]
    real_probs = metrics.predict_probs(classifier, test_images)
    result["inception_score_generated"] = [gen["is_mean"], gen["is_std"]]
    result["inception_score_real_test"] = list(metrics.inception_score(real_probs))
    result["fid_vs_test"] = gen["fid"]
    result["intra_class_fid_vs_test"] = gen["intra_fid"]
    result["metric_notes"] = (
        "IS/FID use the independent evaluation CNN trained on the real train split (its "
        f"probabilities / {gen['feature_dim']}-d penultimate features), not Inception-v3; "
        f"{len(gen['requested'])} generated samples ({samples_per_class} per class, seed "
        f"{seed}) vs {len(test_labels)} real test images; IS over 10 splits.")
    return result


def unseen_swap_report(model, classifier, test_images, test_labels, unseen_index, partners,
                       seen_index):
    """§3.6's numbers: swap consistency of test images of classes never labeled
    (``unseen_index``; z_u from ``partners``, images of other classes), the model's class
    accuracy on the seen classes (``seen_index``) and its reconstruction error on the unseen
    ones."""
    consistency, follows = swap_consistency(
        model, classifier, test_images[unseen_index], test_labels[unseen_index],
        test_images[partners], test_labels[partners])
    return {"unseen_swap_consistency": consistency, "unseen_swap_follows_zu": follows,
            "seen_zs_accuracy": label_accuracy(model, test_images[seen_index],
                                               test_labels[seen_index]),
            "unseen_recon_mse": reconstruction_mse(model, test_images[unseen_index],
                                                   test_labels[unseen_index])}
