"""cVAE: the conditional VAE baseline of paper A (Zheng & Sun, CVPR 2019, §4.2 and Table 1),
after Sohn, Lee & Yan, "Learning Structured Output Representation using Deep Conditional
Generative Models", NeurIPS 2015 (paper A's [36]).

Model: q_φ(z|x, c) = N(μ_φ(x, c), diag σ²_φ(x, c)), p(z) = N(0, I), p_θ(x|z, c) = N(x'(z, c), I)
with c a one-hot class vector. ELBO (Sohn et al. Eq. 4, as a loss to minimise):
rec_weight · ½‖x − x'‖² + kl_weight · KL(q_φ(z|x, c) ‖ N(0, I)), the KL in closed form through
TFP (:func:`keras_lsvae.losses.kl_standard_normal`), ½‖x − x'‖² from
:func:`keras_lsvae.losses.reconstruction_loss` (−log N(x; x', I) up to a constant); per-sample
sums, batch mean, then the weights. Generation as paper A §4.2 does it for every baseline:
z ~ N(0, I) concatenated with the one-hot c at the decoder's input.

Networks (fair comparison with Lr-LiVAE): :func:`keras_lsvae.networks.build_encoder` with the
one-hot label entering after the conv trunk (``condition_dim = K``), and
:func:`keras_lsvae.networks.build_decoder` on concat(z, one-hot c): the same builders, widths and
latent sizes as Lr-LiVAE's Encoder^u and decoder.

Loss weights: by default those of Lr-LiVAE's z_u branch (``loss_weighting="code"`` there):
rec_weight = 10/N_pixel, kl_weight = 1/z_dim, so the two VAE parts share one balance between
reconstruction and KL; configs/cvae_digits.cfg sets kl_weight = 0.005 like configs/digits.cfg.
Sohn et al.'s plain ELBO is rec_weight = kl_weight = 1 (with a unit-variance Gaussian
likelihood on [0, 1] pixels it over-weights the KL: expect blurry class means).

This module also holds :class:`ClassConditionalModel`, the shared machinery of paper A's three
baselines (cvae, cvaegan, cgan): batch unpacking and checks, one persistent tape over
``compute_losses`` then every optimizer on its own objective (``apply_terms``), trackers,
``generate(labels, seed)``.

Log keys (stable): loss, rec, kl.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_lsvae import losses as L
from keras_lsvae import networks
from keras_lsvae.layers import GaussianSample, batch_normal
from keras_lsvae.models import capabilities as caps
from keras_lsvae.models.base import LabelSplitModel, Terms
from keras_lsvae.registry import MODELS


class ClassConditionalModel(caps.Generates, LabelSplitModel):
    """Base of paper A's baselines (module docstring); not registered.

    Subclasses set ``OBJECTIVES``, ``LOG_KEYS``, ``latent_dim`` and implement
    ``objective_variables``, ``compute_losses(images, labels, training, tape=None) ->
    Terms``, ``_decode_batch(z, one_hot)`` and ``call``. Labels are class ids (B,)."""

    label_kind = "class"
    LOG_KEYS = ()
    #: whether ``encode``/``reconstruct``/``call`` need the labels (q(z|x, c) of the cVAE)
    needs_labels = False

    def finish_init(self):
        self.init_trackers(self.LOG_KEYS)
        self.built = True

    # ------------------------------------------------------------------------ train / test
    def _unpack(self, data):
        """(images, labels[, sample_weight]) -> checked (images, int32 labels)."""
        if isinstance(data, dict):
            data = (data.get("images"), data.get("labels"))
        if not isinstance(data, (tuple, list)) or len(data) < 2 or data[1] is None:
            raise ValueError(f"{type(self).__name__}: expected (images, labels) batches of "
                             f"images (B, {', '.join(map(str, self.example_shape))}) and class "
                             f"ids (B,)")
        images, labels = data[0], data[1]
        if images.shape.rank is not None and images.shape.rank == len(self.example_shape) + 2:
            raise ValueError(f"{type(self).__name__} takes ungrouped batches (data_group=1), "
                             f"got images of shape {tuple(images.shape)}")
        return self.check_batch(images, labels)

    def one_hot(self, labels):
        return tf.one_hot(labels, self.num_classes, dtype=tf.float32)

    def train_step(self, data):
        images, labels = self._unpack(data)
        with tf.GradientTape(persistent=True) as tape:
            terms = self.compute_losses(images, labels, training=True,
                                        tape=tape if self.backward_once else None)
        self.apply_terms(tape, terms)
        del tape
        return self.track(terms.logs)

    def test_step(self, data):
        images, labels = self._unpack(data)
        return self.track(self.compute_losses(images, labels, training=False).logs)

    def _prior_noise(self, batch, training):
        """z_p ~ N(0, I) for the GAN fakes: from the model's seeded generator when training;
        evaluation draws from the fixed ``seed`` (repeatable, leaves the training stream
        alone). Drawn for the global batch (:func:`keras_lsvae.layers.batch_normal`)."""
        return batch_normal([batch, self.latent_dim],
                            self.sample_seed_generator if training else self.seed)

    def _split_inputs(self, inputs):
        if isinstance(inputs, dict):
            return inputs.get("images"), inputs.get("labels")
        if isinstance(inputs, (tuple, list)):
            return inputs[0], (inputs[1] if len(inputs) > 1 else None)
        return inputs, None

    def predict_step(self, data):
        """``predict((images, labels))`` passes the labels on (Keras' default would treat them
        as targets and drop them)."""
        if isinstance(data, (tuple, list)) and len(data) == 1:
            data = data[0]
        return self(data, training=False)

    # ---------------------------------------------------------------------- inference API
    def decode(self, z, labels):
        """x' = G(concat(z, one-hot c)) in inference mode; z (N, latent_dim), labels (N,)."""
        z = self.check_codes(z, self.latent_dim, "z")
        labels = self.check_labels(labels)
        if labels.shape[0] != z.shape[0]:
            raise ValueError(f"decode: z and labels need the same N, got {z.shape[0]} and "
                             f"{labels.shape[0]}")
        return self.batched(lambda a, b: self._decode_batch(a, self.one_hot(b)), z, labels)

    def generate(self, labels, seed=None):
        """Images of the requested classes (N,): decode(z ~ N(0, I), one-hot c) (paper A §4.2:
        "sampling z ~ N(0, I) and then concatenating z and one hot vector of c")."""
        labels = self.check_labels(labels)
        z = self._normal((int(labels.shape[0]), self.latent_dim), seed)
        return self.decode(z, labels)


class EncoderDecoderMixin(caps.Encodes, caps.Reconstructs, caps.Inpaints):
    """encode / reconstruct / inpaint of the baselines with a conditional encoder q(z|x, c)
    (cVAE, cVAE-GAN). ``_labels_or_predicted(images, labels, what)`` decides what happens
    without labels (the cVAE raises, the cVAE-GAN asks its classifier)."""

    def _encode(self, images, one_hot, mode):
        posterior = self.encoder([images, one_hot], training=False)
        return {"z": self.sampler(posterior["mean"], posterior["log_var"], mode=mode),
                "z_mean": posterior["mean"], "z_log_var": posterior["log_var"]}

    def encode(self, images, labels=None, mode="mode", batch_size=256):
        """{"z", "z_mean", "z_log_var"} of q(z|x, c); z = μ in mode "mode" (default), a
        posterior sample in mode "sample"."""
        images = self.check_images(images)
        labels = self._labels_or_predicted(images, labels, "encode")
        images, labels = self._check_pair(images, labels)
        return self.batched(lambda x, y: self._encode(x, self.one_hot(y), mode), images, labels,
                            batch_size=batch_size)

    def reconstruct(self, images, labels=None):
        """G(μ_φ(x, c), c): decode the posterior mean with the same labels."""
        images = self.check_images(images)
        labels = self._labels_or_predicted(images, labels, "reconstruct")
        return self.decode(self.encode(images, labels)["z_mean"], labels)

    def inpaint(self, images, mask, labels=None, fill_value=0.0, iterations=1):
        """x_inp = M ⊙ x' + (1 − M) ⊙ x with M = 1 on missing pixels (Lr-LiVAE §4.5, Fig. 7),
        x' the reconstruction of the corrupted image (missing pixels set to ``fill_value``)
        with class ``labels``; ``mask`` as in :meth:`keras_lsvae.models.LrLiVAE.inpaint`
        (array or a name from :data:`keras_lsvae.masks.MASK_KINDS`)."""
        iterations = self.check_positive("iterations", iterations)
        images, mask, result = self.masked_input(images, mask, fill_value)
        labels = self._labels_or_predicted(result, labels, "inpaint")
        for _ in range(int(iterations)):
            result = mask * self.reconstruct(result, labels) + (1.0 - mask) * images
        return result

    @property
    def inpaint_uses_labels(self):
        """The cVAE reads the given labels (q(z|x, c)); the cVAE-GAN predicts them."""
        return self.needs_labels

    def inpaint_labeled(self, images, mask, labels=None, fill_value=0.0, method="encode"):
        """The uniform call of ``capabilities.Inpaints``: one encoder pass, with the true
        ``labels`` where :attr:`inpaint_uses_labels`."""
        self.check_choice("method", method, self.INPAINT_METHODS)
        if not self.inpaint_uses_labels:
            self.check_unused_labels(images, labels)
        return self.inpaint(images, mask, labels=labels if self.inpaint_uses_labels else None,
                            fill_value=fill_value)

    def call(self, inputs, training=False):
        """Reconstruction G(μ_φ(x, c), c) (inference: posterior mean). ``inputs``: (images,
        labels) or {"images", "labels"} (the batch format of ``train_step``), or images alone
        where the model can predict the labels."""
        images, labels = self._split_inputs(inputs)
        if labels is None:
            labels = self._graph_labels(images, training)
        one_hot = (tf.zeros([tf.shape(images)[0], self.num_classes]) if labels is None
                   else self.one_hot(tf.cast(labels, tf.int32)))
        mean = self.encoder([images, one_hot], training=training)["mean"]
        return self._decode_batch(mean, one_hot, training=training)


@MODELS.register("cvae")
@keras.saving.register_keras_serializable(package="keras_lsvae")
class CVAE(EncoderDecoderMixin, ClassConditionalModel):
    """cVAE (module docstring).

    Args:
        input_shape, num_classes, seed: see :class:`LabelSplitModel`.
        z_dim: size of z. width, mlp_units, condition_units: network sizes
            (:mod:`keras_lsvae.networks`; the same as Lr-LiVAE's).
        rec_weight, kl_weight: loss weights (None: 10/N_pixel and 1/z_dim, module docstring).

    Public methods: ``encode(images, labels, mode="mode", batch_size=256)``,
    ``decode(z, labels)``, ``reconstruct(images, labels)``, ``generate(labels, seed=None)``,
    ``inpaint(images, mask, labels, fill_value=0.0)``. Labels are required wherever the
    encoder runs (q(z|x, c))."""

    OBJECTIVES = ("encoder", "decoder")
    LOG_KEYS = ("loss", "rec", "kl", "hsic", "mmd")
    needs_labels = True
    #: z is the label-irrelevant code (the label enters the decoder on its own)
    EXTENSION_SITES = ("independence",)

    def __init__(self, input_shape, num_classes, z_dim=16, width=32,
                 mlp_units=networks.DEFAULT_MLP_UNITS, condition_units=128, rec_weight=None,
                 kl_weight=None, seed=0, name="cvae", **kwargs):
        super().__init__(input_shape, num_classes, seed=seed, name=name, **kwargs)
        self.z_dim = self.latent_dim = self.check_positive("z_dim", z_dim)
        self.width = self.check_positive("width", width)
        self.mlp_units = self.check_sizes("mlp_units", mlp_units, allow_empty=True)
        self.condition_units = self.check_positive("condition_units", condition_units)
        self._weight_args = dict(rec_weight=rec_weight, kl_weight=kl_weight)
        num_pixels = float(np.prod(self.example_shape))
        self.rec_weight = self.check_number(
            "rec_weight", 10.0 / num_pixels if rec_weight is None else rec_weight)
        self.kl_weight = self.check_number(
            "kl_weight", 1.0 / self.z_dim if kl_weight is None else kl_weight)
        shape = self.example_shape
        self.encoder = networks.build_encoder(
            shape, {"mean": self.z_dim, "log_var": self.z_dim}, width=self.width,
            mlp_units=self.mlp_units, condition_dim=self.num_classes,
            condition_units=self.condition_units, name="encoder")
        self.decoder = networks.build_decoder([self.z_dim, self.num_classes], shape,
                                              width=self.width, mlp_units=self.mlp_units,
                                              name="decoder")
        self.sampler = GaussianSample(seed=self.seed, name="z_sampler")
        self.sample_seed_generator = keras.random.SeedGenerator(self.seed + 1)
        self.finish_init()

    def objective_variables(self):
        return {"encoder": self.encoder.trainable_variables,
                "decoder": self.decoder.trainable_variables}

    def _decode_batch(self, z, one_hot, training=False):
        return self.decoder([z, one_hot], training=training)

    def _labels_or_predicted(self, images, labels, what):
        if labels is None:
            raise ValueError(f"CVAE.{what} needs the class labels (N,): its encoder is "
                             f"q(z|x, c) and its decoder p(x|z, c)")
        return labels

    def _graph_labels(self, images, training):
        """``call`` on images alone (Keras builds a model symbolically on the batch's inputs
        under a distribution strategy): the all-zero label code, i.e. "no class". Public
        methods (encode, reconstruct, inpaint) refuse to run without labels instead."""
        return None

    def compute_losses(self, images, labels, training=True, tape=None):
        """The negative ELBO of Sohn et al. (module docstring) for one batch as
        :class:`Terms`: L_rec in both objectives, the KL in the encoder's; then the
        extensions of the label-irrelevant code z (``independence``)."""
        terms = Terms(tape)
        one_hot = self.one_hot(labels)
        posterior = self.encoder([images, one_hot], training=training)
        z = self.sampler(posterior["mean"], posterior["log_var"],
                         mode="sample" if training else "mode")
        reconstructions = self.decoder([z, one_hot], training=training)
        rec = terms.add("rec", L.reconstruction_loss(images, reconstructions),
                        {"encoder": self.rec_weight, "decoder": self.rec_weight})
        kl = terms.add("kl", L.kl_standard_normal(posterior["mean"], posterior["log_var"]),
                       {"encoder": self.kl_weight})
        terms.log(loss=self.rec_weight * rec + self.kl_weight * kl)
        self.extension_terms("independence", terms, objective="encoder",
                             means=posterior["mean"], codes=z, labels=one_hot,
                             training=training)
        return terms

    def get_config(self):
        config = super().get_config()
        config.update(z_dim=self.z_dim, width=self.width, mlp_units=list(self.mlp_units),
                      condition_units=self.condition_units, **self._weight_args)
        return config
