"""Capabilities are declared by the model classes (keras_lsvae/models/capabilities.py): the
exact set of every registered model, and each declared capability's uniform call on a tiny
model (8x8 images, 3 classes or 2 attributes)."""

import os
import re

import keras
import numpy as np
import pytest

from keras_lsvae import models
from keras_lsvae.models import capabilities as caps
from keras_lsvae.registry import MODELS
from tests.helpers import attribute_batch, image_batch, tiny_attribute_model, tiny_lrlivae

SHAPE = (8, 8, 1)

DECLARED = {
    "lrlivae": {"Generates", "Encodes", "Reconstructs", "PredictsLabels", "Swaps", "Inpaints",
                "Interpolates", "Traverses"},
    "cvae": {"Generates", "Encodes", "Reconstructs", "Inpaints"},
    "cvaegan": {"Generates", "Encodes", "Reconstructs", "Inpaints", "PredictsLabels"},
    "cgan": {"Generates"},
    "vae": {"Generates", "Encodes", "Reconstructs", "ManipulatesAttributes",
            "FitsAttributeStatistics"},
    "condvae": {"Generates", "Encodes", "Reconstructs", "ManipulatesAttributes",
                "ScalesManipulation"},
    "condvae_info": {"Generates", "Encodes", "Reconstructs", "ManipulatesAttributes",
                     "ScalesManipulation"},
    "csvae": {"Generates", "Encodes", "Reconstructs", "ManipulatesAttributes",
              "FitsAttributeStatistics", "WGrids"},
}


def test_every_registered_model_declares_exactly_its_capabilities():
    assert set(MODELS.names()) == set(DECLARED)
    for name in MODELS.names():
        assert caps.declared(MODELS.get(name)) == DECLARED[name], name
    assert caps.supports(models.LrLiVAE, caps.Swaps, caps.Inpaints)
    assert not caps.supports(models.CVAE, caps.Swaps, caps.Inpaints)


def _tiny(name):
    if name == "lrlivae":
        return tiny_lrlivae()
    if name in ("cvae", "cvaegan", "cgan"):
        keras.utils.set_random_seed(0)
        return models.get(name, input_shape=SHAPE, num_classes=3, z_dim=3, width=8, seed=0)
    return tiny_attribute_model(name)


def _check(model, capability, images, labels):
    n = len(images)
    if capability == "Generates":
        first, again = (np.asarray(model.generate(labels, seed=3)) for _ in range(2))
        assert first.shape == images.shape and np.array_equal(first, again)
    elif capability == "Encodes":
        for mode in ("mode", "sample"):
            codes = model.encode_labeled(images, labels, mode=mode)
            for code in (model.label_irrelevant_code, model.label_relevant_code):
                if code is not None:
                    assert np.asarray(codes[code]).shape[0] == n, code
    elif capability == "Reconstructs":
        assert np.asarray(model.reconstruct_labeled(images, labels)).shape == images.shape
    elif capability == "PredictsLabels":
        probs = np.asarray(model.predict_labels(images))
        assert probs.shape == (n, model.num_classes)
        np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    elif capability == "Swaps":
        assert np.asarray(model.swap(images, images[::-1])).shape == images.shape
    elif capability == "Inpaints":
        for method in model.INPAINT_METHODS:
            out = np.asarray(model.inpaint_labeled(images, "right_half", labels,
                                                   fill_value=0.5, method=method))
            assert out.shape == images.shape, method
            np.testing.assert_array_equal(out[:, :, :4], images[:, :, :4])  # kept pixels
    elif capability == "Interpolates":
        assert np.asarray(model.interpolate(images[:2], images[2:4], num_steps=3)).shape == (
            2, 3, *SHAPE)
        for interpolate in (model.interpolate_zs, model.interpolate_zu):
            assert np.asarray(interpolate(0, num_steps=3, seed=0)).shape == (3, *SHAPE)
    elif capability == "Traverses":
        z_s, z_u = model.sample_latents(labels[:2], seed=0)
        assert np.asarray(model.decode(z_s, z_u)).shape == (2, *SHAPE)
        assert np.asarray(model.traverse(0, [0, 1], values=(-1.0, 1.0))).shape == (
            2, 2, *SHAPE)
    elif capability == "FitsAttributeStatistics":
        model.fit_attribute_statistics(images, labels)
    elif capability == "ManipulatesAttributes":
        targets = labels[::-1].copy()
        assert np.asarray(model.manipulate_attributes(images, labels, targets)).shape == (
            images.shape)
    elif capability == "ScalesManipulation":
        targets = labels[::-1].copy()
        low, high = (np.asarray(model.manipulate(images, labels, targets, scale=p))
                     for p in (0.0, 3.0))
        assert low.shape == images.shape and not np.array_equal(low, high)
    elif capability == "WGrids":
        points = np.asarray(model.w_grid(0, num=2))
        assert points.shape == (4, model.w_dim)
        assert np.asarray(model.manipulate_grid(images[:1], 0, points)).shape == (
            1, 4, *SHAPE)
        assert np.asarray(model.w_principal_directions(images, labels, 0, num=2)).shape == (
            4, model.w_dim)
        assert "w_mean" in model.encode_labeled(images, labels)
    else:
        raise AssertionError(f"no check for capability {capability}")


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_each_declared_uniform_call_works(name):
    model = _tiny(name)
    if model.label_kind == "attributes":
        images, labels = attribute_batch(6, num_attributes=model.num_classes)
    else:
        images, labels = image_batch(6, num_classes=model.num_classes)
    # Statistics first: manipulate needs them where the model fits them.
    order = sorted(caps.declared(model), key=lambda c: c != "FitsAttributeStatistics")
    for capability in order:
        _check(model, capability, images, labels)


def test_after_training_fits_what_the_model_needs_from_the_lazy_examples():
    images, attributes = attribute_batch(6)
    calls = []

    def examples():
        calls.append(1)
        return images, attributes

    vae = tiny_attribute_model("vae")
    assert not np.asarray(vae.attribute_counts).any()
    vae.after_training(examples)
    np.testing.assert_array_equal(np.asarray(vae.attribute_counts)[1], attributes.sum(0))
    tiny_attribute_model("condvae").after_training(examples)  # needs nothing: never loads
    class_images, class_labels = image_batch(6)
    tiny_lrlivae().after_training(lambda: calls.append("lrlivae") or (class_images,
                                                                      class_labels))
    assert calls == [1]  # refit_prior_variances is off by default
    refit = tiny_lrlivae(refit_prior_variances=True)
    before = np.asarray(refit.prior_variances())
    refit.after_training(lambda: (class_images, class_labels))
    assert not np.allclose(np.asarray(refit.prior_variances()), before)


#: Modules that must ask the model's declared capabilities, never probe its methods.
CALLERS = ("keras_lsvae/evaluation", "keras_lsvae/viz", "keras_lsvae/training/loop.py",
           "keras_lsvae/training/callbacks.py", "keras_lsvae/export", "keras_lsvae/benchmarks")
PROBES = re.compile(r"hasattr\((self\.)?model\b|getattr\((self\.)?model, [\"']|"
                    r"inspect\.signature\((self\.)?model\b|type\(model\)\.__name__ ==")


def test_no_caller_probes_a_model_for_methods():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = []
    for entry in CALLERS:
        path = os.path.join(repo, entry)
        files = ([os.path.join(root, f) for root, _, names in os.walk(path) for f in names
                  if f.endswith(".py")] if os.path.isdir(path) else [path])
        for file in files:
            with open(file) as f:
                for number, line in enumerate(f, 1):
                    if PROBES.search(line):
                        found.append(f"{os.path.relpath(file, repo)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
