"""VAE: the unconditional baseline of CSVAE's paper (Klys, Snell & Zemel, NeurIPS 2018, "paper
B"), §3.1 Eq. 1: log p_θ(x) ≥ E_q(z|x)[log p_θ(x|z)] − KL(q_φ(z|x) ‖ p(z)).

Networks: q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x)) from :func:`keras_lsvae.networks.build_encoder`
and a decoder p_θ(x|z) from :func:`keras_lsvae.networks.build_decoder` (the same builders,
widths and latent size as CondVAE, CondVAE-info and CSVAE, so the four compare fairly). The
labels are {0, 1} attribute vectors (B, A) (``label_kind = "attributes"``); the VAE ignores them
in training and uses them only for attribute manipulation.

Objective (one step, two optimizers, ``encoder`` on φ and ``decoder`` on θ, same loss):
rec_weight · ½‖x − x'‖² + kl_z_weight · KL(q(z|x) ‖ N(0, I)) (``keras_lsvae.losses``; ½‖x − x'‖²
is −log N(x; x', I) up to a constant). Defaults are CSVAE's M1 weights, so the baselines share
its balance of reconstruction and KL(z): rec_weight = 40/N_values (the reference
implementation's 20 × per-value mean squared error on this library's ½Σ form) and
kl_z_weight = 0.2; see keras_lsvae/models/csvae.py for the source.

Attribute manipulation (paper B §4.3, "VAE"): m_i = E_{S_i}[μ_φ(x)], the mean posterior mean of
the examples with y_i = 1, and G_ij(x) = μ_θ(μ_φ(x) − m_i + m_j). :meth:`VAE.fit_attribute_statistics`
stores, for every attribute l and value v ∈ {0, 1}, m_l^v = mean μ_φ(x) over examples with
y_l = v (non-trainable weights, saved with the model). Generalised to attribute vectors,
:meth:`VAE.manipulate` moves every attribute whose value changes from y_l to t_l by
m_l^{t_l} − m_l^{y_l}: z' = μ_φ(x) + (t − y) (M¹ − M⁰). For one binary attribute (two classes:
absent, present) this is exactly the paper's μ − m_i + m_j with i, j the two values. **Deviation**:
for one-hot class data fed as attributes, switching class i to j gives
μ − (m_i^1 − m_i^0) + (m_j^1 − m_j^0), i.e. the paper's μ − m_i + m_j plus m_i^0 − m_j^0 (the
means of "not i" and "not j", close to each other when there are many classes); the
per-attribute form is the one that also works for non-exclusive attributes.

Log keys (stable): loss, rec, kl_z.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_lsvae import losses as L
from keras_lsvae import networks
from keras_lsvae.layers import GaussianSample
from keras_lsvae.models import capabilities as caps
from keras_lsvae.models.base import AttributeModel, Terms
from keras_lsvae.registry import MODELS

#: The reference implementation's reconstruction weight: 20 × the per-value mean squared error
#: (alexlyzhov/latent-subspaces, csvae_toy/definitions.py), i.e. 40/N_values × ½‖x − x'‖².
REFERENCE_REC_WEIGHT_PER_VALUE = 20.0


def default_rec_weight(example_shape):
    """40/N_values: the reference's 20 × mean((x − x')²) expressed on ½ Σ (x − x')²."""
    return 2.0 * REFERENCE_REC_WEIGHT_PER_VALUE / float(np.prod(example_shape))


class GaussianVAEBase(caps.Generates, caps.Encodes, caps.Reconstructs, AttributeModel):
    """Shared machinery of VAE, CondVAE and CondVAE-info (not registered).

    ``condition_encoder``/``condition_decoder``: whether q(z|x, y) and p(x|z, y) take the
    attributes. Arguments: input_shape, num_classes (= A), seed: :class:`LabelSplitModel`;
    z_dim: size of z; width, mlp_units, condition_units: network sizes
    (:mod:`keras_lsvae.networks`); rec_weight (None: 40/N_values), kl_z_weight: the loss
    weights (module docstring)."""

    OBJECTIVES = ("encoder", "decoder")
    LOG_KEYS = ("loss", "rec", "kl_z")
    condition_encoder = False
    condition_decoder = False

    def __init__(self, input_shape, num_classes, z_dim=16, width=32,
                 mlp_units=networks.DEFAULT_MLP_UNITS, condition_units=128, rec_weight=None,
                 kl_z_weight=0.2, seed=0, name="vae", **kwargs):
        super().__init__(input_shape, num_classes, seed=seed, name=name, **kwargs)
        self.z_dim = self.check_positive("z_dim", z_dim)
        self.width = self.check_positive("width", width)
        self.mlp_units = self.check_sizes("mlp_units", mlp_units, allow_empty=True)
        self.condition_units = self.check_positive("condition_units", condition_units)
        self._rec_weight_arg = rec_weight
        self.rec_weight = self.check_number(
            "rec_weight", default_rec_weight(self.example_shape) if rec_weight is None
            else rec_weight)
        self.kl_z_weight = self.check_number("kl_z_weight", kl_z_weight)
        shape = self.example_shape
        attributes = self.num_attributes
        self.encoder = networks.build_encoder(
            shape, {"mean": self.z_dim, "log_var": self.z_dim}, width=self.width,
            mlp_units=self.mlp_units, condition_units=self.condition_units,
            condition_dim=attributes if self.condition_encoder else 0, name="encoder")
        latent_dims = [self.z_dim] + ([attributes] if self.condition_decoder else [])
        self.decoder = networks.build_decoder(latent_dims, shape, width=self.width,
                                              mlp_units=self.mlp_units, name="decoder")
        self.sampler = GaussianSample(seed=self.seed, name="z_sampler")
        self.sample_seed_generator = keras.random.SeedGenerator(self.seed + 1)

    def finish_init(self):
        """Subclasses call this at the end of ``__init__`` (after creating their networks)."""
        self.init_trackers(self.LOG_KEYS)
        self.built = True

    @property
    def needs_attributes(self):
        return self.condition_encoder or self.condition_decoder

    def objective_variables(self):
        return {"encoder": self.encoder.trainable_variables,
                "decoder": self.decoder.trainable_variables}

    # ------------------------------------------------------------------------------ networks
    def _encoder_inputs(self, images, attributes):
        return [images, attributes] if self.condition_encoder else images

    def _decoder_inputs(self, z, attributes):
        return [z, attributes] if self.condition_decoder else [z]

    # ------------------------------------------------------------------------------ losses
    def compute_losses(self, images, attributes, training=True, tape=None):
        """Eq. 1 (VAE) / Eq. 2 (CondVAE) for one batch as :class:`Terms`: L_rec in both
        objectives, KL(z) in the encoder's (it does not depend on θ), then
        :meth:`extra_terms` and the extensions of the label-irrelevant code z
        (``independence``, where the model offers it)."""
        terms = Terms(tape)
        posterior = self.encoder(self._encoder_inputs(images, attributes), training=training)
        z = self.sampler(posterior["mean"], posterior["log_var"],
                         mode="sample" if training else "mode")
        reconstructions = self.decoder(self._decoder_inputs(z, attributes), training=training)
        rec = terms.add("rec", L.reconstruction_loss(images, reconstructions),
                        {"encoder": self.rec_weight, "decoder": self.rec_weight})
        kl_z = terms.add("kl_z", L.kl_standard_normal(posterior["mean"], posterior["log_var"]),
                         {"encoder": self.kl_z_weight})
        terms.log(loss=self.rec_weight * rec + self.kl_z_weight * kl_z)
        self.extra_terms(terms, posterior, z, attributes, training)
        self.extension_terms("independence", terms, objective="encoder",
                             means=posterior["mean"], codes=z, labels=attributes,
                             training=training)
        self.adversary_terms(terms, z, attributes, training)
        return terms

    def extra_terms(self, terms, posterior, z, attributes, training):
        """Hook: terms of the encoder beyond Eq. 1–2 (CondVAE-info's information term)."""

    def adversary_terms(self, terms, z, attributes, training):
        """Hook: the adversary's own objective (CondVAE-info's Eq. 3)."""

    # ---------------------------------------------------------------------- inference API
    def _require_attributes(self, attributes, what):
        if attributes is None:
            raise ValueError(f"{type(self).__name__}.{what} needs attributes (N, "
                             f"{self.num_attributes}): its networks are conditional on y")

    def _encode(self, images, attributes, mode):
        posterior = self.encoder(self._encoder_inputs(images, attributes), training=False)
        return {"z": self.sampler(posterior["mean"], posterior["log_var"], mode=mode),
                "z_mean": posterior["mean"], "z_log_var": posterior["log_var"]}

    def encode(self, images, attributes=None, mode="mode", batch_size=256):
        """{"z", "z_mean", "z_log_var"} of q(z|x) (q(z|x, y) for CondVAE); z = μ in mode
        "mode" (default), a posterior sample in mode "sample"."""
        if self.condition_encoder:
            self._require_attributes(attributes, "encode")
            images, attributes = self._check_pair(images, attributes)
            return self.batched(lambda x, y: self._encode(x, y, mode), images, attributes,
                                batch_size=batch_size)
        images = self.check_images(images)
        return self.batched(lambda x: self._encode(x, None, mode), images,
                            batch_size=batch_size)

    def decode(self, z, attributes=None):
        """x' = μ_θ(z[, y]) in inference mode. For conditional decoders ``attributes`` are
        real-valued codes (N, A): §4.3 decodes the scaled label p·y."""
        z = self.check_codes(z, self.z_dim, "z")
        if not self.condition_decoder:
            return self.batched(lambda a: self.decoder([a], training=False), z)
        self._require_attributes(attributes, "decode")
        attributes = self.check_codes(attributes, self.num_attributes, "attributes")
        if attributes.shape[0] != z.shape[0]:
            raise ValueError(f"decode: z and attributes need the same N, got {z.shape[0]} "
                             f"and {attributes.shape[0]}")
        return self.batched(lambda a, b: self.decoder([a, b], training=False), z, attributes)

    def _reconstruct(self, images, attributes, training):
        mean = self.encoder(self._encoder_inputs(images, attributes), training=training)["mean"]
        return self.decoder(self._decoder_inputs(mean, attributes), training=training)

    def reconstruct(self, images, attributes=None):
        """μ_θ(μ_φ(x[, y])[, y]): decode the posterior mean."""
        z = self.encode(images, attributes)["z_mean"]
        if self.condition_decoder:
            self._require_attributes(attributes, "reconstruct")
        return self.decode(z, attributes if self.condition_decoder else None)

    def generate(self, attributes, seed=None):
        """Images for each requested attribute vector (N, A): decode(z ~ N(0, I)[, y]).
        The unconditional VAE cannot condition: the attributes only give the count N."""
        attributes = self.check_attributes(attributes)
        z = self._normal((int(attributes.shape[0]), self.z_dim), seed)
        return self.decode(z, attributes if self.condition_decoder else None)

    def get_config(self):
        config = super().get_config()
        config.update(z_dim=self.z_dim, width=self.width, mlp_units=list(self.mlp_units),
                      condition_units=self.condition_units, rec_weight=self._rec_weight_arg,
                      kl_z_weight=self.kl_z_weight)
        return config


@MODELS.register("vae")
@keras.saving.register_keras_serializable(package="keras_lsvae")
class VAE(caps.ManipulatesAttributes, caps.FitsAttributeStatistics, GaussianVAEBase):
    """The VAE baseline of paper B (module docstring); arguments: :class:`GaussianVAEBase`.

    Public methods: ``encode(images, attributes=None, mode="mode", batch_size=256)``,
    ``decode(z)``, ``reconstruct(images)``, ``generate(attributes, seed=None)``,
    ``fit_attribute_statistics(images, attributes, batch_size=256)``,
    ``manipulate(images, attributes, target_attributes)``."""

    def __init__(self, input_shape, num_classes, name="vae", **kwargs):
        super().__init__(input_shape, num_classes, name=name, **kwargs)
        shape = (2, self.num_attributes, self.z_dim)
        self.attribute_means = self.add_weight(name="attribute_means", shape=shape,
                                               initializer="zeros", trainable=False)
        self.attribute_counts = self.add_weight(name="attribute_counts",
                                                shape=(2, self.num_attributes),
                                                initializer="zeros", trainable=False)
        self.finish_init()

    def after_training(self, train_examples):
        """Fit the per-attribute statistics that ``manipulate`` uses (paper B §5.4 method 1's
        p_j) on the training examples."""
        self.fit_attribute_statistics(*train_examples())

    def fit_attribute_statistics(self, images, attributes, batch_size=256):
        """Store m_l^v = mean μ_φ(x) over the examples with y_l = v (v = 0, 1) for every
        attribute l (module docstring); returns {"means": (2, A, z_dim), "counts": (2, A)}."""
        images, attributes = self._check_pair(images, attributes)
        means = self.encode(images, batch_size=batch_size)["z_mean"].numpy().astype(np.float64)
        y = attributes.numpy()
        counts = np.stack([(y == 0).sum(0), (y == 1).sum(0)]).astype(np.float32)
        masks = np.stack([1.0 - y, y])  # (2, N, A)
        sums = np.einsum("vna,nd->vad", masks, means)
        result = (sums / np.maximum(counts, 1.0)[..., None]).astype(np.float32)
        self.attribute_means.assign(result)
        self.attribute_counts.assign(counts)
        return {"means": tf.constant(result), "counts": tf.constant(counts)}

    def manipulate(self, images, attributes, target_attributes):
        """Paper B §4.3's G_ij for the VAE, generalised to attribute vectors (module
        docstring): decode(μ_φ(x) + (t − y)(M¹ − M⁰)). Needs
        :meth:`fit_attribute_statistics` first."""
        images, attributes = self._check_pair(images, attributes)
        _, targets = self._check_pair(images, target_attributes, "target_attributes")
        counts = self.attribute_counts.numpy()
        if not counts.any():
            raise ValueError("VAE.manipulate needs the attribute means: call "
                             "fit_attribute_statistics(images, attributes) first")
        changed = targets.numpy() != attributes.numpy()
        for value in (0, 1):
            missing = changed & (counts[value] == 0)[None, :]
            if missing.any():
                raise ValueError(f"no fitted example has attribute "
                                 f"{int(np.argmax(missing.any(0)))} = {value}: its mean "
                                 f"m^{value} is unknown")
        means = tf.convert_to_tensor(self.attribute_means)
        shift = tf.matmul(targets - attributes, means[1] - means[0])
        return self.decode(self.encode(images)["z_mean"] + shift)
