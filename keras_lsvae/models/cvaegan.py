"""cVAE-GAN: the baseline of paper A (Zheng & Sun, CVPR 2019; Fig. 2, Tables 1–2, Fig. 7) after
Bao, Chen, Wen, Li & Hua, "CVAE-GAN: Fine-Grained Image Generation through Asymmetric
Training", ICCV 2017 (arXiv 1703.10155; paper A's [3]). The paper's text is not in this
repository: this module follows its published description (§3 and its Algorithm 1); the
equation numbers below are those of the arXiv version as we read it — check them against the
paper before quoting them.

Networks (Bao et al. Fig. 2d / §3), built with :mod:`keras_lsvae.networks` at Lr-LiVAE's sizes:
  * E, the encoder q(z|x, c) = N(μ, diag σ²) ("maps the data sample x to a latent
    representation z through a learned distribution P(z|x, c)"): ``build_encoder`` with the
    one-hot label after the conv trunk (``condition_dim = K``), as the cVAE's;
  * G, the generator x' = G(z, c): ``build_decoder`` on concat(z, one-hot c) (paper A §4.2 also
    generates this way);
  * D, the real/fake discriminator (unconditional) and C, the classifier over K classes:
    ``build_feature_critic``, the trunk of Lr-LiVAE's discriminator with a linear head, which
    also returns f_D(x) and f_C(x), the features of the last hidden layer that the
    feature-matching terms compare.

Losses, per step, with x_r the real batch of labels c, x_f = G(E(x_r, c), c) the
reconstructions and x_p = G(z_p, c), z_p ~ N(0, I), samples of the same classes:
  * L_D (Eq. 1/Algorithm 1): −log D(x_r) − log(1 − D(x_f)) − log(1 − D(x_p)), from logits
    (:func:`keras_lsvae.losses.discriminator_loss`; ``gan_loss="hinge"`` swaps in the hinge
    form, as Lr-LiVAE's option does).
  * L_C (Eq. 3): −log P(c | x_r), cross-entropy of C on **real** data only.
  * L_GD (Eq. 4), mean feature matching: ½ ‖E_x f_D(x_r) − E_z f_D(x_p)‖², the means over the
    batch (:func:`mean_feature_matching`).
  * L_GC (Eq. 5), class-wise mean feature matching: ½ Σ_c ‖E f_C(x_r | c) − E f_C(x_p | c)‖²,
    over the classes present in the batch (:func:`classwise_mean_feature_matching`).
  * L_KL (Eq. 6): KL(q(z|x, c) ‖ N(0, I)) in closed form through TFP
    (:func:`keras_lsvae.losses.kl_standard_normal`), ½(μᵀμ + Σ(σ² − log σ² − 1)).
  * L_G (Eq. 7), pairwise feature matching: ½(‖x_r − x_f‖² + ‖f_D(x_r) − f_D(x_f)‖² +
    ‖f_C(x_r) − f_C(x_f)‖²) (:func:`pairwise_feature_matching`).
Asymmetric training (Eq. 8 / Algorithm 1): each network has its own optimizer and objective,
  D: L_D;  C: L_C;  E: λ1 L_KL + λ2 L_G;  G: λ2 L_G + λ3 L_GD + λ4 L_GC
(``kl_weight`` = λ1, ``rec_weight`` = λ2, ``gd_weight`` = λ3, ``gc_weight`` = λ4). G never sees
D's logits: the cross-entropy is D's and C's, the mean discrepancy G's.

Simplifications and choices (not in, or not fixed by, the published description):
  * Reductions: per-sample terms are sums over pixels / features, averaged over the batch
    (the library's convention); L_GD and L_GC are batch-level, on the current batch's means
    (no running averages of the real features across batches); L_GC sums over the classes
    present in the batch (x_p has the real batch's labels, so each class has as many samples
    as real images).
  * Weights: Bao et al.'s λ1 = 3, λ2 = 1, λ3 = λ4 = 10⁻³ by default (``loss_weighting="bao"``).
    ``"lrlivae"`` uses Lr-LiVAE's code weighting for the VAE part, λ2 = 10/N_pixel and
    λ1 = 1/z_dim, and keeps Bao et al.'s ratio λ3/λ2 = λ4/λ2 = 10⁻³. Measured on digits
    (``paper_a_digits``, seed 0): with Lr-LiVAE's digits KL weight (0.005, λ1/λ2 ≈ 0.13
    against Bao's 3) q(z|x, c) kept the class (a probe read it from z at 0.96), samples from
    N(0, I) left the data (conditional accuracy 0.78, IS 7.1); Bao's weights gave 0.97 and
    9.1, so the baseline runs with its authors' weights.
  * f_D and f_C: the flattened output of the last conv (or dense) block; Bao et al. take "the
    features of an intermediate layer" of their larger networks.
  * Algorithm 1 runs all four updates on one batch, with one forward pass (one persistent
    tape); each optimizer differentiates its own objective w.r.t. its own network only.
  * No batch norm in D and C (as Lr-LiVAE's D); ``spectral_norm`` applies to D.
  * Inpainting (paper A Fig. 7): the corrupted image goes through E and G with the label
    given, or predicted by C when ``labels`` is None (paper A: cVAE-GAN "needs an extra class
    label for reconstruction"); Bao et al. optimise the latent code for inpainting instead.

Log keys (stable): kl, rec, rec_pixels, d_loss, c_loss, c_accuracy, gd, gc.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_lsvae import losses as L
from keras_lsvae import networks
from keras_lsvae.layers import GaussianSample, gather_replicas
from keras_lsvae.models import capabilities as caps
from keras_lsvae.models.base import Terms
from keras_lsvae.models.cvae import ClassConditionalModel, EncoderDecoderMixin
from keras_lsvae.registry import MODELS

LOSS_WEIGHTINGS = ("lrlivae", "bao")
#: Bao et al.'s λ3/λ2 = λ4/λ2.
MEAN_FEATURE_RATIO = 1e-3


def mean_feature_matching(real_features, fake_features):
    """L_GD (Bao et al. Eq. 4): ½ ‖mean_i f(x_r,i) − mean_j f(x_p,j)‖², batch means."""
    difference = tf.reduce_mean(real_features, 0) - tf.reduce_mean(fake_features, 0)
    return 0.5 * tf.reduce_sum(tf.square(difference))


def classwise_mean_feature_matching(real_features, fake_features, real_labels, fake_labels,
                                    num_classes):
    """L_GC (Bao et al. Eq. 5): ½ Σ_c ‖mean f(x_r | c) − mean f(x_p | c)‖² over the classes
    present in both batches; class means by one matrix product (no loop over classes)."""
    def class_means(features, labels):
        one_hot = tf.one_hot(labels, num_classes, dtype=features.dtype)  # (B, K)
        counts = tf.reduce_sum(one_hot, 0)
        sums = tf.matmul(one_hot, features, transpose_a=True)  # (K, F)
        return sums / tf.maximum(counts, 1.0)[:, None], counts

    real_means, real_counts = class_means(real_features, real_labels)
    fake_means, fake_counts = class_means(fake_features, fake_labels)
    present = tf.cast((real_counts > 0) & (fake_counts > 0), real_features.dtype)
    per_class = tf.reduce_sum(tf.square(real_means - fake_means), -1)
    return 0.5 * tf.reduce_sum(present * per_class)


def pairwise_feature_matching(images, reconstructions, real_d, fake_d, real_c, fake_c):
    """L_G (Bao et al. Eq. 7): ½(‖x_r − x_f‖² + ‖f_D(x_r) − f_D(x_f)‖² + ‖f_C(x_r) −
    f_C(x_f)‖²), each summed per sample, mean over the batch. Returns (L_G, pixel part)."""
    pixels = L.reconstruction_loss(images, reconstructions)
    return (pixels + L.reconstruction_loss(real_d, fake_d)
            + L.reconstruction_loss(real_c, fake_c)), pixels


@MODELS.register("cvaegan")
@keras.saving.register_keras_serializable(package="keras_lsvae")
class CVAEGAN(caps.PredictsLabels, EncoderDecoderMixin, ClassConditionalModel):
    """cVAE-GAN (module docstring).

    Args:
        input_shape, num_classes, seed: see :class:`LabelSplitModel`.
        z_dim: size of z. width, mlp_units, condition_units: network sizes (Lr-LiVAE's).
        loss_weighting: "bao" (default, Bao et al.'s λ) or "lrlivae" (module docstring).
        kl_weight, rec_weight, gd_weight, gc_weight: λ1–λ4, overriding the weighting's.
        gan_loss: D's loss, "nonsaturating" (Bao et al.'s cross-entropy) or "hinge".
        spectral_norm: spectral normalisation in D.
        train_sampling: "sample" (z ~ q(z|x, c), z_p ~ N(0, I)) or "mode" (z = μ, z_p = 0:
            deterministic, for tests).

    Public methods: ``encode(images, labels=None, mode="mode", batch_size=256)``,
    ``decode(z, labels)``, ``reconstruct(images, labels=None)``, ``generate(labels,
    seed=None)``, ``inpaint(images, mask, labels=None, fill_value=0.0)``,
    ``predict_labels(images)``; without labels, C's prediction is used."""

    OBJECTIVES = ("encoder", "generator", "discriminator", "classifier")
    LOG_KEYS = ("kl", "rec", "rec_pixels", "d_loss", "c_loss", "c_accuracy", "gd", "gc")

    def __init__(self, input_shape, num_classes, z_dim=16, width=32,
                 mlp_units=networks.DEFAULT_MLP_UNITS, condition_units=128,
                 loss_weighting="bao", kl_weight=None, rec_weight=None, gd_weight=None,
                 gc_weight=None, gan_loss="nonsaturating", spectral_norm=False,
                 train_sampling="sample", seed=0, name="cvaegan", **kwargs):
        super().__init__(input_shape, num_classes, seed=seed, name=name, **kwargs)
        self.check_choice("loss_weighting", loss_weighting, LOSS_WEIGHTINGS)
        self.check_choice("gan_loss", gan_loss, L.GAN_LOSSES)
        self.check_choice("train_sampling", train_sampling, ("sample", "mode"))
        self.z_dim = self.latent_dim = self.check_positive("z_dim", z_dim)
        self.width = self.check_positive("width", width)
        self.mlp_units = self.check_sizes("mlp_units", mlp_units, allow_empty=True)
        self.condition_units = self.check_positive("condition_units", condition_units)
        self.loss_weighting, self.gan_loss = loss_weighting, gan_loss
        self.spectral_norm, self.train_sampling = bool(spectral_norm), train_sampling
        self._weight_args = dict(kl_weight=kl_weight, rec_weight=rec_weight,
                                 gd_weight=gd_weight, gc_weight=gc_weight)
        if loss_weighting == "bao":
            defaults = dict(kl_weight=3.0, rec_weight=1.0)
        else:
            defaults = dict(kl_weight=1.0 / self.z_dim,
                            rec_weight=10.0 / float(np.prod(self.example_shape)))
        self.kl_weight = self.check_number(
            "kl_weight", defaults["kl_weight"] if kl_weight is None else kl_weight)
        self.rec_weight = self.check_number(
            "rec_weight", defaults["rec_weight"] if rec_weight is None else rec_weight)
        ratio_default = MEAN_FEATURE_RATIO * self.rec_weight
        self.gd_weight = self.check_number(
            "gd_weight", ratio_default if gd_weight is None else gd_weight)
        self.gc_weight = self.check_number(
            "gc_weight", ratio_default if gc_weight is None else gc_weight)
        for key in ("kl_weight", "rec_weight", "gd_weight", "gc_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")

        shape = self.example_shape
        self.encoder = networks.build_encoder(
            shape, {"mean": self.z_dim, "log_var": self.z_dim}, width=self.width,
            mlp_units=self.mlp_units, condition_dim=self.num_classes,
            condition_units=self.condition_units, name="encoder")
        self.generator = networks.build_decoder([self.z_dim, self.num_classes], shape,
                                                width=self.width, mlp_units=self.mlp_units,
                                                name="generator")
        self.discriminator = networks.build_feature_critic(
            shape, 1, width=self.width, mlp_units=self.mlp_units,
            spectral_norm=self.spectral_norm, name="discriminator")
        self.classifier = networks.build_feature_critic(
            shape, self.num_classes, width=self.width, mlp_units=self.mlp_units,
            name="classifier")
        self.sampler = GaussianSample(seed=self.seed, name="z_sampler")
        self.sample_seed_generator = keras.random.SeedGenerator(self.seed + 1)
        self.finish_init()

    def objective_variables(self):
        return {"encoder": self.encoder.trainable_variables,
                "generator": self.generator.trainable_variables,
                "discriminator": self.discriminator.trainable_variables,
                "classifier": self.classifier.trainable_variables}

    def _decode_batch(self, z, one_hot, training=False):
        return self.generator([z, one_hot], training=training)

    # ---------------------------------------------------------------------------- losses
    def compute_losses(self, images, labels, training=True, tape=None):
        """Every loss of Bao et al.'s Algorithm 1 (module docstring) as :class:`Terms`: E
        takes λ1 L_KL + λ2 L_G, G takes λ2 L_G + λ3 L_GD + λ4 L_GC, D takes L_D, C takes L_C.
        z enters G and G's images enter D and C as cuts; L_G reaches E through both (a chain
        of two cuts, which :meth:`apply_terms` handles)."""
        terms = Terms(tape)
        mode = self.train_sampling if training else "mode"
        one_hot = self.one_hot(labels)
        batch = tf.shape(images)[0]
        posterior = self.encoder([images, one_hot], training=training)
        z = self.sampler(posterior["mean"], posterior["log_var"], mode=mode)
        if mode == "mode" and training:
            z_prior = tf.zeros([batch, self.z_dim])
        else:
            z_prior = self._prior_noise(batch, training)
        # One generator pass for x_f and x_p (batch norm sees both, as one batch).
        z_in = terms.cut(z)
        generated = self.generator([tf.concat([z_in, z_prior], 0),
                                    tf.concat([one_hot] * 2, 0)], training=training)
        fakes_in = terms.cut(generated)
        reconstructions, samples = tf.split(fakes_in, 2, axis=0)
        # Real and generated images in separate D and C passes: G's terms go back through the
        # generated images' passes alone (LabelSplitModel.real_and_fake_passes).
        d_out = self.real_and_fake_passes(self.discriminator, images, fakes_in, training,
                                          one_pass=self.spectral_norm)
        c_out = self.real_and_fake_passes(self.classifier, images, fakes_in, training)
        d_logits = tf.split(d_out["logits"], 3, axis=0)
        d_feat = tf.split(d_out["features"], 3, axis=0)
        c_logits = tf.split(c_out["logits"], 3, axis=0)[0]
        c_feat = tf.split(c_out["features"], 3, axis=0)

        terms.add("kl", L.kl_standard_normal(posterior["mean"], posterior["log_var"]),
                  {"encoder": self.kl_weight})
        rec, rec_pixels = pairwise_feature_matching(images, reconstructions, d_feat[0],
                                                    d_feat[1], c_feat[0], c_feat[1])
        terms.add("rec", rec, {"encoder": self.rec_weight, "generator": self.rec_weight},
                  via={"encoder": [z_in], "generator": [fakes_in]})
        terms.log(rec_pixels=rec_pixels)
        # Batch means: of the global batch under a strategy (keras_lsvae.layers).
        global_labels = gather_replicas(labels)
        terms.add("gd", mean_feature_matching(gather_replicas(d_feat[0]),
                                              gather_replicas(d_feat[2])),
                  {"generator": self.gd_weight}, via={"generator": [fakes_in]})
        terms.add("gc", classwise_mean_feature_matching(
            gather_replicas(c_feat[0]), gather_replicas(c_feat[2]), global_labels,
            global_labels, self.num_classes), {"generator": self.gc_weight},
            via={"generator": [fakes_in]})
        terms.add("d_loss", L.discriminator_loss(d_logits[0], d_logits[1:], self.gan_loss),
                  {"discriminator": 1.0})
        terms.add("c_loss", L.adversarial_classifier_loss(c_logits, labels),
                  {"classifier": 1.0})
        terms.log(c_accuracy=tf.reduce_mean(tf.cast(
            tf.equal(tf.argmax(c_logits, -1, output_type=labels.dtype), labels), tf.float32)))
        return terms

    def apply_terms(self, tape, terms):
        """Bao et al.'s Algorithm 1 updates, each shared backward pass once
        (``backward_once``). L_G reaches E through two cuts in a row (x_f into D and C, z into
        G), which the generic derivation does not chain: G's terms (λ2 L_G + λ3 L_GD + λ4 L_GC)
        go back through D and C's inputs once, and their x_f rows are E's λ2 L_G cotangent as
        well (D and C treat each image alone, L_GD and L_GC do not read x_f; E's and G's
        weights on L_G are both λ2), which G's input gradient carries to z. One backward pass
        through E, G (weights), D and C then applies every objective. Without
        ``backward_once``: the per-objective reference (tests/test_backward_once.py)."""
        if not self.backward_once:
            return super().apply_terms(tape, terms)
        rec = next(term for term in terms.items if term.name == "rec")
        fakes_in, z_in = rec.via["generator"][0], rec.via["encoder"][0]
        generated, z = terms.source(fakes_in), terms.source(z_in)
        seed = self.loss_scale(self.OBJECTIVES)
        with tape:
            generator_terms = terms.weighted_sum("generator")
        cotangent = tape.gradient(generator_terms, fakes_in, output_gradients=seed)
        if seed is not None:
            cotangent = cotangent / seed
        rows = tf.shape(cotangent)[0] // 2
        rec_rows = tf.concat([cotangent[:rows], tf.zeros_like(cotangent[rows:])], 0)
        with tape:  # the persistent tape again: surrogates whose gradients are the cotangents
            direct = [term.value if term.direct_weight() == 1.0
                      else term.direct_weight() * term.value
                      for term in terms.items if "generator" not in term.weights]
            loss = tf.add_n(direct) + tf.reduce_sum(tf.stop_gradient(cotangent) * generated)
            encoder_side = tf.reduce_sum(tf.stop_gradient(rec_rows) * generated)
        self.apply_backward_once(tape, self.OBJECTIVES, loss, [(encoder_side, [(z_in, z, 1.0)])])

    # ---------------------------------------------------------------------- inference API
    def predict_labels(self, images, batch_size=256):
        """P(c | x) of the classifier C, (N, K) probabilities."""
        images = self.check_images(images)
        return self.batched(
            lambda x: tf.nn.softmax(self.classifier(x, training=False)["logits"], -1), images,
            batch_size=batch_size)

    def _labels_or_predicted(self, images, labels, what):
        if labels is not None:
            return labels
        return tf.argmax(self.predict_labels(images), -1, output_type=tf.int32).numpy()

    def _graph_labels(self, images, training):
        return tf.argmax(self.classifier(images, training=training)["logits"], -1,
                         output_type=tf.int32)

    def get_config(self):
        config = super().get_config()
        config.update(z_dim=self.z_dim, width=self.width, mlp_units=list(self.mlp_units),
                      condition_units=self.condition_units, loss_weighting=self.loss_weighting,
                      gan_loss=self.gan_loss, spectral_norm=self.spectral_norm,
                      train_sampling=self.train_sampling, **self._weight_args)
        return config
