"""Backward once: the models take each shared backward pass once, derived from their declared
terms (``LabelSplitModel.apply_terms``), and must apply exactly the updates of the per-objective
gradients derived from the same declaration (``backward_once = False``: each objective differentiated separately from the
persistent tape, the reference). Two identical models (same weights and seed generators, SGD so
that the first update does not hide a gradient error) take one ``train_step`` on the same batch;
every optimizer call of one must match the other's: same optimizers, same calls in the same
order, same variables, gradients within 1e-5 (per variable, max |Δg| / max |g|).
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import attribute_batch, image_batch, tiny_attribute_model, tiny_lrlivae

TOLERANCE = 1e-5


def _record(model):
    """Every ``apply_gradients`` call: [(objective, {variable index: gradient})] in order (the
    index in ``model.trainable_variables``: two models built in one process name their layers
    differently)."""
    calls = []
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    for name, optimizer in model.objective_optimizers.items():
        def record(pairs, name=name, apply=optimizer.apply_gradients):
            pairs = list(pairs)
            calls.append((name, {index[id(v)]: np.array(g, np.float64) for g, v in pairs}))
            return apply(pairs)
        optimizer.apply_gradients = record
    return calls


def _steps(build, batch, steps=1):
    """The recorded optimizer calls of ``steps`` train steps, backward once and per objective."""
    recorded = {}
    for once in (True, False):
        model = build()
        model.backward_once = once
        model.compile(learning_rate=1e-2, optimizer="sgd")
        calls = _record(model)
        for _ in range(steps):
            model.train_step(batch)
        recorded[once] = calls
    return recorded[True], recorded[False]


def _assert_same_updates(new, reference):
    assert [name for name, _ in new] == [name for name, _ in reference]
    worst = 0.0
    for (name, got), (_, expected) in zip(new, reference):
        assert set(got) == set(expected), name
        for path, grad in expected.items():
            scale = np.max(np.abs(grad))
            difference = np.max(np.abs(got[path] - grad))
            assert difference <= TOLERANCE * scale, (name, path, difference / max(scale, 1e-30))
            worst = max(worst, difference / scale if scale > 0 else 0.0)
    return worst


# Distinct weights everywhere, so that a term reaching an objective at another objective's
# weight (e.g. L_rec at λ_rec instead of λ_rec^u in φ's) shows.
WEIGHTS = dict(rec_weight=0.3, zu_rec_weight=0.7, kl_weight=0.2, adv_weight=0.5, gan_weight=0.8,
               lkd_weight=0.4)
LRLIVAE_OPTIONS = {
    "default": {},
    "weights": WEIGHTS,
    "everything": dict(WEIGHTS, extensions={
        "hsic": {"weight": 0.6, "all_groups": True}, "mmd": {"weight": 0.9},
        "consistency": {"weight": 0.35}, "adversary_boost": {"steps": 3},
        "gm_margin": {"margin": 0.5}}),
    "mean_codes_hinge": dict(WEIGHTS, gan_loss="hinge", spectral_norm=True, extensions={
        "adversary_input": {"code": "mean", "standardize": True}, "mmd": {"weight": 0.9}}),
    "no_gan": dict(WEIGHTS, gan_weight=0.0, extensions={"hsic": {"weight": 0.6}}),
}


def _lrlivae_batch(kind):
    images, labels = image_batch(8, groups=3, seed=1)
    unlabeled, _ = image_batch(8, seed=2)
    labeled = (tf.constant(images), tf.constant(labels))
    if kind == "labeled":
        return labeled
    if kind == "unlabeled":
        return {"unlabeled": tf.constant(unlabeled)}
    return {"labeled": labeled, "unlabeled": tf.constant(unlabeled)}


CASES = [(options, "labeled") for options in sorted(LRLIVAE_OPTIONS)] + [
    ("everything", "mixed"), ("mean_codes_hinge", "mixed"), ("everything", "unlabeled")]


@pytest.mark.parametrize("options,batch", CASES)
def test_lrlivae_backward_once_applies_the_per_objective_updates(options, batch):
    kwargs = LRLIVAE_OPTIONS[options]
    new, reference = _steps(lambda: tiny_lrlivae(**kwargs), _lrlivae_batch(batch), steps=2)
    names = [name for name, _ in reference]
    if batch != "unlabeled":  # Algorithm 1's schedule: n_gm GM steps, the joint step, ω again
        assert names[:4] == ["gm", "gm_variance", "gm", "gm_variance"]
        steps = kwargs.get("extensions", {}).get("adversary_boost", {}).get("steps", 1)
        assert names.count("latent_classifier") == 2 * steps
    _assert_same_updates(new, reference)


@pytest.mark.parametrize("name", ["vae", "condvae", "condvae_info", "csvae"])
def test_attribute_models_backward_once_apply_the_per_objective_updates(name):
    extensions = {"csvae": {"hsic": {"weight": 0.5}, "mmd": {"weight": 0.7},
                            "adversary_boost": {"steps": 2}},
                  "condvae_info": {"hsic": {"weight": 0.5}, "mmd": {"weight": 0.7},
                                   "adversary_boost": {"steps": 2}},
                  "condvae": {"hsic": {"weight": 0.5}}}
    kwargs = {"extensions": extensions[name]} if name in extensions else {}
    images, attributes = attribute_batch(8)
    new, reference = _steps(lambda: tiny_attribute_model(name, **kwargs),
                            (tf.constant(images), tf.constant(attributes)))
    _assert_same_updates(new, reference)


@pytest.mark.parametrize("name,options", [
    ("cvae", {}), ("cvae", {"extensions": {"hsic": {"weight": 0.5}, "mmd": {"weight": 0.3}}}),
    ("cgan", {}), ("cgan", dict(gan_loss="hinge", spectral_norm=True)), ("cvaegan", {}),
    ("cvaegan", dict(kl_weight=0.3, rec_weight=0.7, gd_weight=0.2, gc_weight=0.4,
                     gan_loss="hinge", spectral_norm=True))])
def test_paper_a_baselines_backward_once_apply_the_per_objective_updates(name, options):
    from keras import utils

    from keras_lsvae import models

    def build():
        utils.set_random_seed(0)
        return models.get(name, input_shape=(8, 8, 1), num_classes=3, z_dim=3, width=8,
                          **options)

    images, labels = image_batch(8)
    new, reference = _steps(build, (tf.constant(images), tf.constant(labels)))
    _assert_same_updates(new, reference)


def test_the_comparison_sees_a_term_at_the_wrong_weight():
    # The check itself: φ's objective with λ_rec in place of λ_rec^u must fail it.
    model_kwargs = dict(WEIGHTS)
    batch = _lrlivae_batch("labeled")
    new, _ = _steps(lambda: tiny_lrlivae(**model_kwargs), batch)
    model_kwargs["zu_rec_weight"] = WEIGHTS["rec_weight"]
    _, reference = _steps(lambda: tiny_lrlivae(**model_kwargs), batch)
    with pytest.raises(AssertionError):
        _assert_same_updates(new, reference)


def test_a_term_reaching_objectives_directly_at_different_weights_is_refused():
    from keras_lsvae.models.base import Term

    term = Term("rec", tf.constant(1.0), {"encoder": 0.3, "decoder": 0.7})
    with pytest.raises(ValueError, match="different weights"):
        term.direct_weight()
    cut = Term("rec", tf.constant(1.0), {"encoder": 0.3, "decoder": 0.7},
               via={"encoder": [tf.constant(0.0)]})
    assert cut.direct_weight() == 0.7
    with pytest.raises(ValueError, match="without a weight"):
        Term("rec", tf.constant(1.0), {"decoder": 1.0}, via={"encoder": []})
