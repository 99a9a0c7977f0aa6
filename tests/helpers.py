"""Small shared builders for the tests (tiny shapes, fixed seeds)."""

import builtins
import os
import shutil

import keras
import numpy as np

from keras_lsvae.models import LrLiVAE
from keras_lsvae.models import extensions as extensions_lib


def extension_options(overrides):
    """Test shorthand: the extensions' parameters may be given under their flat names
    (``hsic_weight=1.0``; keras_lsvae.models.extensions.LEGACY_ARGUMENTS), merged into
    ``extensions``."""
    rest, spec = extensions_lib.from_legacy(dict(overrides), warn=False)
    if spec:
        rest["extensions"] = {**spec, **rest.get("extensions", {})}
    return rest


def tiny_lrlivae(**overrides):
    kwargs = dict(input_shape=(8, 8, 1), num_classes=3, zs_dim=4, zu_dim=3, width=8,
                  latent_classifier_units=(16,), n_gm=2, seed=0)
    kwargs.update(extension_options(overrides))
    # Initialisers draw from Keras' global seed: reset it so equal arguments give equal weights.
    keras.utils.set_random_seed(kwargs["seed"])
    return LrLiVAE(**kwargs)


def image_batch(n=12, shape=(8, 8, 1), num_classes=3, seed=0, groups=None):
    rng = np.random.default_rng(seed)
    lead = (n,) if groups is None else (n, groups)
    images = rng.uniform(size=lead + tuple(shape)).astype("float32")
    labels = rng.integers(0, num_classes, size=lead).astype("int32")
    return images, labels


def attribute_batch(n=12, shape=(8, 8, 1), num_attributes=2, seed=0):
    """Images in [0, 1] and {0, 1} float32 attribute vectors (n, A) with both values present
    in every column (rows alternate so that small batches still see each value)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(n,) + tuple(shape)).astype("float32")
    attributes = rng.integers(0, 2, size=(n, num_attributes)).astype("float32")
    attributes[0], attributes[1] = 0.0, 1.0
    return images, attributes


def labels_for(model, n=8, shape=(8, 8, 1), seed=0, groups=None):
    """(images, labels) of the model's label kind: class ids or attribute vectors."""
    if getattr(model, "label_kind", "class") == "attributes":
        return attribute_batch(n, shape=shape, num_attributes=model.num_classes, seed=seed)
    return image_batch(n, shape=shape, num_classes=model.num_classes, seed=seed, groups=groups)


def tiny_attribute_model(name, **overrides):
    """A paper-B model (vae, condvae, condvae_info, csvae) on 8×8×1 images with A = 2."""
    from keras_lsvae import models

    kwargs = dict(input_shape=(8, 8, 1), num_classes=2, z_dim=3, width=8, mlp_units=(16,),
                  condition_units=16, seed=0)
    if name in ("csvae", "condvae_info"):
        kwargs["adversary_units"] = (16,)
    kwargs.update(extension_options(overrides))
    keras.utils.set_random_seed(kwargs["seed"])
    return models.get(name, **kwargs)


def count_write_points(patch, on_point):
    """Calls ``on_point()`` before every top-level write (folder creation, open for writing,
    fsync, rename, removal) made while the returned flag is set. ``patch(object, name,
    value)`` installs the counting wrappers: ``monkeypatch.setattr`` in a test, plain
    ``setattr`` in a child process that is killed at a write point."""
    active, depth = [False], [0]

    def point():
        if active[0] and not depth[0]:
            depth[0] += 1
            try:
                on_point()
            finally:
                depth[0] -= 1

    def counted(function):
        def wrapper(*args, **kwargs):
            point()
            depth[0] += 1
            try:
                return function(*args, **kwargs)
            finally:
                depth[0] -= 1
        return wrapper

    for name in ("replace", "rename", "fsync", "remove", "unlink", "rmdir", "mkdir"):
        patch(os, name, counted(getattr(os, name)))
    patch(shutil, "rmtree", counted(shutil.rmtree))
    real_open = builtins.open

    def open_for_writing(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            point()
        return real_open(file, mode, *args, **kwargs)

    patch(builtins, "open", open_for_writing)
    return active
