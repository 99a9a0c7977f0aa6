"""Tiny stand-ins for paper B's attribute models, written to the model contract
(/tmp/csvae_contract.md): they let the training loop, callbacks and figures be tested without the
real models (and fast). ``stub_csvae`` has CSVAE's API (z and w latents, ``manipulate(images,
target_attributes, w=None)``, ``w_grid``, ``manipulate_grid``, ``fit_attribute_statistics``);
``stub_condvae`` has CondVAE's (``manipulate(images, attributes, target_attributes, scale=1)``);
``stub_csvae_predicting`` is ``stub_csvae`` that also declares ``PredictsAttributes``. Each
declares the capabilities of the model it stands in for (keras_lsvae/models/capabilities.py).

Each is one dense layer per map; its loss is a plain reconstruction + KL, so a few steps run in
milliseconds. ``fit_attribute_statistics`` stores its means in non-trainable weights (saved)
and counts its calls in ``statistics_calls`` (a weight, so the count is saved too).

They are in ``MODELS`` only inside `registered_stubs()` (tests that iterate over every
registered model must not see them).
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from keras_lsvae.models import capabilities as caps
from keras_lsvae.models.base import LabelSplitModel
from keras_lsvae.registry import MODELS


class _StubBase(caps.Generates, caps.Encodes, caps.Reconstructs, caps.ManipulatesAttributes,
                LabelSplitModel):
    label_kind = "attributes"
    OBJECTIVES = ("vae",)
    LOG_KEYS = ("rec", "kl")

    def __init__(self, input_shape, num_classes, z_dim=2, seed=0, **kwargs):
        super().__init__(input_shape, num_classes, seed=seed, **kwargs)
        self.z_dim = int(z_dim)
        size = int(np.prod(self.example_shape))
        self.flatten = keras.layers.Flatten()
        self.encoder = keras.layers.Dense(2 * self.z_dim)
        self.decoder = keras.layers.Dense(size, activation="sigmoid" if self.is_image else None)
        self.init_trackers(self.LOG_KEYS)

    def finish_init(self):
        self.build_all()
        self.built = True

    @property
    def num_attributes(self):
        return self.num_classes

    def build_all(self):
        size = int(np.prod(self.example_shape))
        self.encoder.build((None, size + self.num_classes))
        self.decoder.build((None, self.decoder_input_dim))

    def objective_variables(self):
        if not self.encoder.built:
            self.build_all()
        return {"vae": self.encoder.trainable_variables + self.decoder.trainable_variables}

    def _encode_z(self, images, attributes):
        flat = self.flatten(images)
        if attributes is None:
            attributes = tf.zeros((tf.shape(flat)[0], self.num_classes))
        stats = self.encoder(tf.concat([flat, tf.cast(attributes, flat.dtype)], -1))
        return stats[:, :self.z_dim], stats[:, self.z_dim:]

    def _decode(self, code):
        return tf.reshape(self.decoder(code), (-1, *self.example_shape))

    def check_attributes(self, attributes, name="attributes"):
        array = np.asarray(attributes, np.float32)
        if array.ndim != 2 or array.shape[1] != self.num_classes:
            raise ValueError(f"{name}: expected (N, A) with A = {self.num_classes}, got "
                             f"{array.shape}")
        return tf.convert_to_tensor(array)

    def _stub_losses(self, images, attributes):
        images = tf.convert_to_tensor(images)
        tf.debugging.assert_equal(tf.shape(attributes)[-1], self.num_classes)
        tf.debugging.assert_type(attributes, tf.float32)
        mean, log_var = self._encode_z(images, attributes)
        rec = tf.reduce_mean(tf.square(self._decode(self.code(mean, attributes)) - images))
        kl = tf.reduce_mean(0.5 * (tf.square(mean) + tf.exp(log_var) - 1.0 - log_var))
        return rec, kl

    def train_step(self, data):
        images, attributes = data
        with tf.GradientTape() as tape:
            rec, kl = self._stub_losses(images, attributes)
            loss = rec + 0.01 * kl
        self.apply_objective(tape, "vae", loss)
        return self.track({"rec": rec, "kl": kl})

    def test_step(self, data):
        images, attributes = data
        rec, kl = self._stub_losses(images, attributes)
        return self.track({"rec": rec, "kl": kl})

    def call(self, inputs):
        images, attributes = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        mean, _ = self._encode_z(images, attributes)
        return self._decode(self.code(mean, attributes))

    def encode(self, images, attributes=None, mode="mode", batch_size=256):
        mean, log_var = self._encode_z(self.check_images(images), attributes)
        return {"z": mean, "z_mean": mean, "z_log_var": log_var}

    def reconstruct(self, images, attributes=None):
        return self((self.check_images(images),
                     None if attributes is None else self.check_attributes(attributes)))

    def get_config(self):
        return {**super().get_config(), "z_dim": self.z_dim}


@keras.saving.register_keras_serializable(package="tests")
class StubCSVAE(caps.FitsAttributeStatistics, caps.WGrids, _StubBase):
    """CSVAE-shaped: w = A subspaces of ``w_dim`` dims; w_i = 0 for y_i = 1, 3 for y_i = 0."""

    def __init__(self, input_shape, num_classes, z_dim=2, w_dim=2, seed=0, **kwargs):
        self.w_dim = int(w_dim)
        super().__init__(input_shape, num_classes, z_dim=z_dim, seed=seed, **kwargs)
        self.decoder_input_dim = self.z_dim + self.num_classes * self.w_dim
        self.w_means = self.add_weight(shape=(2, self.num_classes, self.w_dim),
                                       initializer="zeros", trainable=False, name="w_means")
        self.statistics_calls = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                                name="statistics_calls")
        self.finish_init()

    def prior_w(self, attributes):
        attributes = tf.cast(attributes, tf.float32)
        return tf.reshape(tf.repeat(3.0 * (1.0 - attributes), self.w_dim, axis=-1),
                          (-1, self.num_classes * self.w_dim))

    def code(self, z, attributes):
        if attributes is None:
            attributes = tf.zeros((tf.shape(z)[0], self.num_classes))
        return tf.concat([z, self.prior_w(attributes)], -1)

    def encode(self, images, attributes=None, mode="mode", batch_size=256):
        out = super().encode(images, attributes, mode, batch_size)
        if attributes is not None:
            w = self.prior_w(self.check_attributes(attributes)) + 0.1 * tf.reduce_mean(
                self.flatten(self.check_images(images)), -1, keepdims=True)
            out.update(w=w, w_mean=w, w_log_var=tf.zeros_like(w))
        return out

    def decode(self, z, w):
        return self._decode(tf.concat([tf.convert_to_tensor(z, tf.float32),
                                       tf.convert_to_tensor(w, tf.float32)], -1))

    def generate(self, attributes, seed=None):
        attributes = self.check_attributes(attributes)
        z = tf.random.stateless_normal((attributes.shape[0], self.z_dim), (seed or 0, 1))
        return self.decode(z, self.prior_w(attributes))

    def fit_attribute_statistics(self, images, attributes):
        attributes = np.asarray(self.check_attributes(attributes))
        w = np.asarray(self.encode(images, attributes)["w_mean"]).reshape(
            len(attributes), self.num_classes, self.w_dim)
        means = np.zeros((2, self.num_classes, self.w_dim), np.float32)
        for value in (0, 1):
            for i in range(self.num_classes):
                members = attributes[:, i] == value
                if members.any():
                    means[value, i] = w[members, i].mean(0)
        self.w_means.assign(means)
        self.statistics_calls.assign_add(1.0)

    def after_training(self, train_examples):
        self.fit_attribute_statistics(*train_examples())

    def manipulate_attributes(self, images, attributes, target_attributes):
        return self.manipulate(images, target_attributes)

    def manipulate(self, images, target_attributes, w=None):
        images = self.check_images(images)
        targets = np.asarray(self.check_attributes(target_attributes)).astype(int)
        if w is None:
            means = self.w_means.numpy()
            w = np.stack([means[targets[:, i], i] for i in range(self.num_classes)], 1)
            w = w.reshape(len(targets), -1)
        return self.decode(self.encode(images)["z_mean"], w)

    def w_grid(self, attribute, num=7, span=3.0):
        axis = np.linspace(3.0 - span, 3.0 + span, num, dtype=np.float32)
        return np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)

    def manipulate_grid(self, images, attribute, points):
        images = self.check_images(images)
        points = np.asarray(points, np.float32)
        z = np.repeat(np.asarray(self.encode(images)["z_mean"]), len(points), axis=0)
        w = np.zeros((len(z), self.num_classes, self.w_dim), np.float32)
        w[:, attribute] = np.tile(points, (len(images), 1))
        return tf.reshape(self.decode(z, w.reshape(len(z), -1)),
                          (len(images), len(points), *self.example_shape))

    def get_config(self):
        return {**super().get_config(), "w_dim": self.w_dim}


@keras.saving.register_keras_serializable(package="tests")
class StubCondVAE(caps.ScalesManipulation, _StubBase):
    """CondVAE-shaped: decode(z, y) with real-valued y (the p-scaled labels of §4.3)."""

    def __init__(self, input_shape, num_classes, z_dim=2, seed=0, **kwargs):
        super().__init__(input_shape, num_classes, z_dim=z_dim, seed=seed, **kwargs)
        self.decoder_input_dim = self.z_dim + self.num_classes
        self.finish_init()

    def code(self, z, attributes):
        if attributes is None:
            attributes = tf.zeros((tf.shape(z)[0], self.num_classes))
        return tf.concat([z, tf.cast(attributes, tf.float32)], -1)

    def decode(self, z, attributes):
        return self._decode(self.code(tf.convert_to_tensor(z, tf.float32), attributes))

    def generate(self, attributes, seed=None):
        attributes = self.check_attributes(attributes)
        z = tf.random.stateless_normal((attributes.shape[0], self.z_dim), (seed or 0, 1))
        return self.decode(z, attributes)

    def manipulate(self, images, attributes, target_attributes, scale=1.0):
        z = self.encode(images, self.check_attributes(attributes))["z_mean"]
        return self.decode(z, float(scale) * self.check_attributes(target_attributes))


@keras.saving.register_keras_serializable(package="tests")
class StubCSVAEPredicting(caps.PredictsAttributes, StubCSVAE):
    """StubCSVAE that predicts every example as attribute 0 on, the others off."""

    def predict_attributes(self, images):
        row = np.eye(1, self.num_classes, dtype=np.float32)
        return np.tile(row, (len(images), 1))


STUBS = {"stub_csvae": StubCSVAE, "stub_condvae": StubCondVAE,
         "stub_csvae_predicting": StubCSVAEPredicting}


@contextlib.contextmanager
def registered_stubs():
    """``MODELS`` knows the stubs inside the block (for --model=stub_csvae), not after it."""
    for name, cls in STUBS.items():
        MODELS.register(name)(cls)
    try:
        yield
    finally:
        for name in STUBS:
            MODELS._entries.pop(name, None)
