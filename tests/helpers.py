"""Small shared builders for the tests (tiny shapes, fixed seeds)."""

import keras
import numpy as np

from keras_lsvae.models import LrLiVAE


def tiny_lrlivae(**overrides):
    kwargs = dict(input_shape=(8, 8, 1), num_classes=3, zs_dim=4, zu_dim=3, width=8,
                  latent_classifier_units=(16,), n_gm=2, seed=0)
    kwargs.update(overrides)
    # Initialisers draw from Keras' global seed: reset it so equal arguments give equal weights.
    keras.utils.set_random_seed(kwargs["seed"])
    return LrLiVAE(**kwargs)


def image_batch(n=12, shape=(8, 8, 1), num_classes=3, seed=0, groups=None):
    rng = np.random.default_rng(seed)
    lead = (n,) if groups is None else (n, groups)
    images = rng.uniform(size=lead + tuple(shape)).astype("float32")
    labels = rng.integers(0, num_classes, size=lead).astype("int32")
    return images, labels
