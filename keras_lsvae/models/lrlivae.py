"""Lr-LiVAE: "Disentangling Latent Space for VAE by Label Relevant/Irrelevant Dimensions"
(Zheng & Sun, CVPR 2019). Equation and line numbers below refer to that paper.

Networks (Fig. 1): Encoder^s (ψ) maps x to a deterministic label-relevant code ẑ_s (the Dirac
posterior of §3.3); Encoder^u (φ) gives q(z_u|x) = N(μ, Σ); a Decoder (θ) maps concat(z_s, z_u)
to x'; an adversarial classifier (ω) predicts c from z_u; a pixel discriminator D(x, c) (θ_d)
uses the label by projection [29]. The prior of z_s is a learned per-class Gaussian mixture
(Eq. 6, :class:`keras_lsvae.distributions.GaussianMixturePrior`).

Training (Algorithm 1), one ``train_step``:
  * GM stage, lines 2–9: ``n_gm`` updates of ψ and the prior on L_GM = L_cls + λ_lkd L_lkd
    (Eq. 7–9), each on a fresh batch: the data set groups ``n_gm + 1`` consecutive examples per
    row (``keras_lsvae.data.load(group=model.data_group)``), column k being batch k; an
    ungrouped batch is reused for every stage. The means and the variances have separate
    optimizers (``gm`` and ``gm_variance``) so the variances can learn more slowly.
  * Joint stage, lines 10–29: one update of each of ψ, φ, ω, θ, θ_d with its own optimizer on
    exactly its own objective (lines 25–29). The prior does not move in this stage.
  * Semi-supervised fine-tuning (§3.6): unlabeled images add L_rec, L_kl and L_lkd towards the
    moment-matched Gaussian N(μ_t, Σ_t) of Eq. 11; L_GM, L_E^adv and L_C^adv are not applied
    to them. D sees them without a label (its projection term is zero), with their
    reconstructions x'_f as the only fakes: a prior sample x'_p needs a class to draw z'_s
    from, and these images have none (they may come from unseen classes, §3.6); drawing z'_s
    from N(μ_t, Σ_t) instead would have D reject decodings of a broad Gaussian that covers the
    gaps between the classes, where no image's code lies. The paper does not say; the labeled
    batch of the same step (``train()`` interleaves them) keeps D and θ training on x'_p.
  * Evaluation (``test_step``) runs every network in inference mode (batch norm on its moving
    statistics, spectral norm without its power iteration) and draws nothing from the model's
    seed generators: it changes no variable (tested).

Loss weights (DESIGN.md "Fidelity notes"): the paper's text sets λ_kl = 10/N_pixel and
λ_rec = 1/N_zu in φ's objective (line 26); the authors' released code instead weights
reconstruction by 10/N_pixel on an un-halved squared error everywhere, i.e. 10 × the per-pixel
mean squared error, and L_kl by 1/N_zu (a mean over dimensions). ``loss_weighting="code"``
(default) takes the code's form but applies 10/N_pixel to this library's L_rec = ½‖x − x'‖²,
so its reconstruction weight is **5 × the per-pixel mean squared error, half the authors'
code's**. The numbers stay as they are because every measured result and tuned config
(configs/digits.cfg) used them; ``rec_weight = zu_rec_weight = 20/N_pixel`` gives the code's
weight exactly. The code's form over the text's, because with the text's weights the
reconstruction term of ψ and θ (weight 1, summed over pixels) dwarfs every other term and the
KL on z_u nearly vanishes; ``"paper"`` follows the text. Explicit ``rec_weight``,
``zu_rec_weight`` and ``kl_weight`` override either. N_pixel counts H·W·C values.

Log keys (stable): gm_loss, gm_cls, gm_lkd, gm_accuracy (GM stage); rec, kl, lkd, adv_encoder,
adv_classifier, adv_accuracy, d_loss, g_loss (joint stage, labeled); u_rec, u_kl, u_lkd,
u_d_loss, u_g_loss (unlabeled data, only when present).
"""

from __future__ import annotations


import keras
import numpy as np
import tensorflow as tf

from keras_lsvae import distributions as dists
from keras_lsvae import losses as L
from keras_lsvae import networks
from keras_lsvae.layers import GaussianSample, batch_normal
from keras_lsvae.models import capabilities as caps
from keras_lsvae.models.base import LabelSplitModel, Terms
from keras_lsvae.registry import MODELS

LOSS_WEIGHTINGS = ("code", "paper")


@MODELS.register("lrlivae")
@keras.saving.register_keras_serializable(package="keras_lsvae")
class LrLiVAE(caps.Generates, caps.Encodes, caps.Reconstructs, caps.PredictsLabels, caps.Swaps,
              caps.Inpaints, caps.Interpolates, caps.Traverses, LabelSplitModel):
    """Lr-LiVAE (module docstring). Arguments:

    input_shape, num_classes, seed: see :class:`LabelSplitModel`.
    zs_dim, zu_dim: sizes of z_s and z_u.
    width: channels of the first conv block (doubling per stage); mlp_units for vector data.
    latent_classifier_units: hidden layers of q_ω(c|z_u).
    n_gm: GM-stage iterations per joint iteration (Algorithm 1, default 3).
    lkd_weight: λ_lkd (0.1, §4.2).
    loss_weighting, rec_weight, zu_rec_weight, kl_weight: see the module docstring.
    adv_weight: weight of L_E^adv in φ's objective (1 in line 26).
    gan_weight: weight of L_GD^adv in θ's objective (1 in line 28); 0 removes the
        discriminator from training entirely (a plain Lr-LiVAE without pixel GAN).
    gan_loss: "nonsaturating" (Eq. 10) or "hinge" (the authors' code).
    spectral_norm: spectral normalisation in D.
    min_variance, init_variance, mean_init_stddev: the prior's parameterisation.
    variance_lr_multiplier: the prior variances' learning rate relative to the base rate. The
        authors' code used a lower rate against variance collapse; here the floor guards
        against collapse, and a low rate was measured to be the bigger problem: with 0.1 the
        variances stayed at 0.89 on digits while ẑ_s spread 0.03 around each mean, so
        generated z_s fell off the data and conditional accuracy was 0.80; 3 gave 0.93 (10
        drove the variances to the floor). See docs/lrlivae.md.
    train_sampling: "sample" (reparameterised z_u, Algorithm 1 line 14) or "mode" (z_u = μ and
        z'_s = μ_y, z'_u = 0 for the GAN fakes: deterministic, for parity tests).
    extensions: the library's additions, none by default (then this is paper A's model):
        ``hsic``, ``mmd`` (on z_u), ``adversary_boost``, ``adversary_input``, ``gm_margin``,
        ``consistency``, ``prior_refit`` (keras_lsvae/models/extensions.py; their measured
        effects in docs/lrlivae.md).
    """

    OBJECTIVES = ("gm", "gm_variance", "encoder_s", "encoder_u", "latent_classifier", "decoder",
                  "discriminator")
    LOG_KEYS = ("gm_loss", "gm_cls", "gm_lkd", "gm_accuracy", "rec", "kl", "lkd", "adv_encoder",
                "adv_classifier", "adv_accuracy", "hsic", "mmd", "d_loss", "g_loss", "u_rec",
                "u_kl", "u_lkd", "u_d_loss", "u_g_loss", "consistency")

    EXTENSION_SITES = ("independence", "grouped_batches", "adversary", "adversary_input",
                       "gm", "consistency", "prior")

    def __init__(self, input_shape, num_classes, zs_dim=16, zu_dim=16, width=32,
                 mlp_units=networks.DEFAULT_MLP_UNITS, latent_classifier_units=(256, 256), n_gm=3,
                 lkd_weight=0.1, loss_weighting="code", rec_weight=None, zu_rec_weight=None,
                 kl_weight=None, adv_weight=1.0, gan_weight=1.0, gan_loss="nonsaturating",
                 spectral_norm=False, min_variance=1e-3, init_variance=1.0,
                 mean_init_stddev=1.0, variance_lr_multiplier=3.0, train_sampling="sample",
                 seed=0, name="lrlivae", **kwargs):
        super().__init__(input_shape, num_classes, seed=seed, name=name, **kwargs)
        self.check_choice("loss_weighting", loss_weighting, LOSS_WEIGHTINGS)
        self.check_choice("gan_loss", gan_loss, L.GAN_LOSSES)
        self.check_choice("train_sampling", train_sampling, ("sample", "mode"))
        self.zs_dim = self.check_positive("zs_dim", zs_dim)
        self.zu_dim = self.check_positive("zu_dim", zu_dim)
        self.width = self.check_positive("width", width)
        self.mlp_units = self.check_sizes("mlp_units", mlp_units, allow_empty=True)
        self.latent_classifier_units = self.check_sizes(
            "latent_classifier_units", latent_classifier_units, allow_empty=True)
        self.n_gm = self.check_integer("n_gm", n_gm, minimum=0)
        self.data_group = self.n_gm + 1
        self.lkd_weight = self.check_number("lkd_weight", lkd_weight)
        margin = self.extension("gm_margin")
        self.margin = margin.margin if margin else 0.0
        self.loss_weighting = loss_weighting
        self.adv_weight = self.check_number("adv_weight", adv_weight)
        self.gan_weight = self.check_number("gan_weight", gan_weight)
        self.gan_loss, self.spectral_norm = gan_loss, bool(spectral_norm)
        self.variance_lr_multiplier = self.check_number("variance_lr_multiplier",
                                                        variance_lr_multiplier, minimum=0.0)
        for key, value in dict(min_variance=min_variance, init_variance=init_variance,
                               mean_init_stddev=mean_init_stddev).items():
            self.check_number(key, value, minimum=0.0)
        self.train_sampling = train_sampling
        adversary_input = self.extension("adversary_input")
        self.adversary_input = adversary_input.code if adversary_input else "sample"
        self.adversary_standardize = bool(adversary_input and adversary_input.standardize)
        self._weight_overrides = dict(rec_weight=rec_weight, zu_rec_weight=zu_rec_weight,
                                      kl_weight=kl_weight)
        num_pixels = float(np.prod(self.example_shape))
        if loss_weighting == "code":
            defaults = dict(rec_weight=10.0 / num_pixels, zu_rec_weight=10.0 / num_pixels,
                            kl_weight=1.0 / self.zu_dim)
        else:
            defaults = dict(rec_weight=1.0, zu_rec_weight=1.0 / self.zu_dim,
                            kl_weight=10.0 / num_pixels)
        resolved = {k: self.check_number(k, v if v is not None else defaults[k])
                    for k, v in self._weight_overrides.items()}
        self.rec_weight = resolved["rec_weight"]
        self.zu_rec_weight = resolved["zu_rec_weight"]
        self.kl_weight = resolved["kl_weight"]

        shape = self.example_shape
        self.encoder_s = networks.build_encoder(shape, {"z_s": self.zs_dim}, width=self.width,
                                                mlp_units=self.mlp_units, name="encoder_s")
        self.encoder_u = networks.build_encoder(shape, {"mean": self.zu_dim,
                                                        "log_var": self.zu_dim},
                                                width=self.width, mlp_units=self.mlp_units,
                                                name="encoder_u")
        self.decoder = networks.build_decoder([self.zs_dim, self.zu_dim], shape,
                                              width=self.width, mlp_units=self.mlp_units,
                                              name="decoder")
        self.latent_classifier = networks.build_latent_classifier(
            self.zu_dim, self.num_classes, hidden=self.latent_classifier_units,
            normalize_inputs=self.adversary_standardize)
        self.discriminator = networks.build_discriminator(
            shape, self.num_classes, width=self.width, mlp_units=self.mlp_units,
            spectral_norm=self.spectral_norm)
        self.prior = dists.GaussianMixturePrior(self.num_classes, self.zs_dim,
                                                min_variance=min_variance,
                                                init_variance=init_variance,
                                                mean_init_stddev=mean_init_stddev,
                                                seed=self.seed, name="gm_prior")
        self.prior.built = True  # weights are created in its __init__
        self.sampler = GaussianSample(seed=self.seed, name="zu_sampler")
        self.sample_seed_generator = keras.random.SeedGenerator(self.seed + 1)
        self.init_trackers(self.LOG_KEYS)
        self.built = True

    # ------------------------------------------------------------------ variables & optimizers
    def objective_variables(self):
        return {
            "gm": self.encoder_s.trainable_variables + [self.prior.means],
            "gm_variance": [self.prior.raw_variances],
            "encoder_s": self.encoder_s.trainable_variables,
            "encoder_u": self.encoder_u.trainable_variables,
            "latent_classifier": self.latent_classifier.trainable_variables,
            "decoder": self.decoder.trainable_variables,
            "discriminator": self.discriminator.trainable_variables,
        }

    def compile(self, learning_rate=5e-4, learning_rates=None, **kwargs):
        """Adam with α = 5e-4 (§4.2) per objective; the prior variances at
        ``variance_lr_multiplier`` × that rate (and the extensions' changes) unless
        ``learning_rates`` says otherwise."""
        rates = {"gm_variance": learning_rate * self.variance_lr_multiplier}
        rates.update(learning_rates or {})
        super().compile(learning_rate=learning_rate, learning_rates=rates, **kwargs)

    def prior_means(self):
        return self.prior.means

    def prior_variances(self):
        return self.prior.variances()

    # ---------------------------------------------------------------------------- losses
    def _sample_prior(self, labels, mode):
        """z'_s ~ p(z_s|y) and z'_u ~ N(0, I) (Algorithm 1 line 21); the prior is held fixed.

        The noise comes from the model's seeded ``SeedGenerator`` (saved with training
        checkpoints), drawn for the global batch so that it does not depend on the replica
        count (:func:`keras_lsvae.layers.batch_normal`), and goes through the TFP component's
        own bijector (z = μ_y + σ_y ⊙ ε): TFP's ``sample(seed=...)`` would need a stateless
        seed threaded in by hand."""
        components = self.prior.components(labels, stop_gradient=True)
        batch = tf.shape(labels)[0]
        if mode == "mode":
            return components.mean(), tf.zeros([batch, self.zu_dim], components.dtype)
        eps_s = batch_normal([batch, self.zs_dim], self.sample_seed_generator)
        eps_u = batch_normal([batch, self.zu_dim], self.sample_seed_generator)
        return components.bijector.forward(eps_s), eps_u

    def compute_gm_losses(self, images, labels, training=True):
        """L_GM (Eq. 9) on one batch (Algorithm 1 lines 3–5) as :class:`Terms`: ψ, the means
        (``gm``) and the variances (``gm_variance``) all minimise it."""
        terms = Terms()
        z_s = self.encoder_s(images, training=training)["z_s"]
        gm, cls, lkd, logits = L.gm_loss(z_s, labels, self.prior.components(), self.lkd_weight,
                                         self.margin)
        terms.add("gm_loss", gm, {"gm": 1.0, "gm_variance": 1.0})
        accuracy = tf.reduce_mean(tf.cast(
            tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels), tf.float32))
        terms.log(gm_cls=cls, gm_lkd=lkd, gm_accuracy=accuracy)
        return terms

    def adversary_site(self):
        """The latent adversary q_ω(c|z_u) for the ``adversary`` extensions."""
        return {"objective": "latent_classifier", "network": self.latent_classifier,
                "loss": L.adversarial_classifier_loss}

    def _discriminate(self, real, fakes, label_codes, training, terms):
        """D's logits of ``real`` and of each of ``fakes`` (same label codes), the fakes
        entering as cuts (:meth:`Terms.cut`): (logits, fake logits, cuts).

        The real batch and the fakes are separate D passes (:meth:`real_and_fake_passes`), so
        the generator's loss goes back through the fakes' pass alone (D's first conv's input
        gradient, to 3 channels, was oneDNN's slowest primitive in the step)."""
        cuts = [terms.cut(fake) for fake in fakes]
        logits = self.real_and_fake_passes(
            self.discriminator, [real, label_codes],
            [tf.concat(cuts, 0), tf.concat([label_codes] * len(cuts), 0)], training,
            one_pass=self.spectral_norm)
        parts = tf.split(logits, len(fakes) + 1, axis=0)
        return parts[0], parts[1:], cuts

    def compute_losses(self, images=None, labels=None, unlabeled=None, training=True,
                       dependence_batch=None, tape=None):
        """Every joint-stage loss (Algorithm 1 lines 10–24), declared once with the objectives
        it enters (lines 25–29), as :class:`Terms`:

        ========================= ============================================ ==========
        term (log key)            objectives and weights                       through
        ========================= ============================================ ==========
        kl (L_kl)                 φ: λ_kl                                      direct
        adv_encoder (L_E^adv)     φ: adv_weight                                ω's input
        adv_classifier (L_C^adv)  ω: 1                                         direct
        lkd (L_lkd)               ψ: λ_lkd                                     direct
        rec (L_rec)               ψ: λ_rec, φ: λ_rec^u, θ: λ_rec               z_s, z_u
        d_loss (L_D^adv)          θ_d: 1                                       direct
        g_loss (L_GD^adv)         θ: gan_weight                                D's input
        ========================= ============================================ ==========

        The extensions add theirs at their sites (``hsic``, ``mmd`` in φ's objective;
        ``consistency`` in θ's). ``unlabeled`` images (§3.6) add u_lkd, u_kl, u_rec, u_d_loss,
        u_g_loss (:meth:`_unlabeled_terms`). ``dependence_batch``: (images, labels) of the
        GM-stage columns for the pooled HSIC estimate (:meth:`_dependence_codes`).

        ``tape`` (training with :attr:`backward_once`) makes the network inputs in the last
        column cuts, so that :meth:`apply_terms` takes one backward pass for all seven
        optimizers: the decoder's x'_f pass is differentiated twice (L_rec alone to the
        encoders; L_rec + L_GD^adv to θ) and D twice (L_D^adv to θ_d; L_GD^adv to its inputs)."""
        terms = Terms(tape)
        mode = self.train_sampling if training else "mode"
        if images is not None:
            self._labeled_terms(terms, images, labels, training, mode, dependence_batch)
        if unlabeled is not None:
            self._unlabeled_terms(terms, unlabeled, training, mode)
        return terms

    def _labeled_terms(self, terms, images, labels, training, mode, dependence_batch):
        enc_u = self.encoder_u(images, training=training)
        z_u = self.sampler(enc_u["mean"], enc_u["log_var"], mode=mode)
        terms.add("kl", L.kl_standard_normal(enc_u["mean"], enc_u["log_var"]),
                  {"encoder_u": self.kl_weight})
        adversary_codes = z_u if self.adversary_input == "sample" else enc_u["mean"]
        codes_in = terms.cut(adversary_codes)
        class_logits = self.latent_classifier(codes_in, training=training)  # Eq. 4–5
        terms.add("adv_encoder", L.adversarial_encoder_loss(class_logits),
                  {"encoder_u": self.adv_weight}, via={"encoder_u": [codes_in]})
        terms.add("adv_classifier", L.adversarial_classifier_loss(class_logits, labels),
                  {"latent_classifier": 1.0})
        terms.log(adv_accuracy=tf.reduce_mean(tf.cast(tf.equal(
            tf.argmax(class_logits, -1, output_type=labels.dtype), labels), tf.float32)))
        terms.adversary_codes = adversary_codes
        z_s = self.encoder_s(images, training=training)["z_s"]
        terms.add("lkd", L.likelihood_loss(z_s, self.prior.components(labels)),  # Eq. 7
                  {"encoder_s": self.lkd_weight})
        reconstructions = self._reconstruction_term(terms, "rec", images, z_s, z_u, training)
        pooled = None if dependence_batch is None else lambda: (  # noqa: E731
            self._dependence_codes(dependence_batch[0], training),
            tf.one_hot(dependence_batch[1], self.num_classes))
        self.extension_terms("independence", terms, objective="encoder_u",
                             means=enc_u["mean"], codes=z_u,
                             labels=tf.one_hot(labels, self.num_classes), training=training,
                             pooled=pooled)
        samples = None
        if self.gan_weight > 0 or self.extension("consistency"):
            z_s_prior, z_u_prior = self._sample_prior(labels, mode)  # line 21
            samples = self.decoder([z_s_prior, z_u_prior], training=training)
        self.extension_terms("consistency", terms, samples=samples, z_s=z_s, z_u=z_u,
                             labels=labels, training=training)
        if self.gan_weight > 0:
            fakes = [reconstructions, samples]
            real_logits, fake_logits, fake_cuts = self._discriminate(
                images, fakes, tf.one_hot(labels, self.num_classes), training, terms)
            terms.add("d_loss", L.discriminator_loss(real_logits, fake_logits, self.gan_loss),
                      {"discriminator": 1.0})
            terms.add("g_loss", L.generator_loss(fake_logits, self.gan_loss),
                      {"decoder": self.gan_weight}, via={"decoder": fake_cuts})

    def _dependence_codes(self, images, training):
        """μ_u of the GM-stage columns for the pooled HSIC estimate (the ``hsic`` extension's ``all_groups``).

        A pass of its own, so that the joint batch's batch-norm statistics (hence its z_u, and
        every joint-stage loss) are those of the joint batch alone, as without the extra
        columns. ``stateless_call`` runs it in training mode (batch statistics of these columns,
        gradients reaching φ) but discards its moving-statistics update: the moving averages
        are updated once per step, by the joint batch, exactly as with
        without ``all_groups`` (tested)."""
        encoder = self.encoder_u
        outputs, _ = encoder.stateless_call(encoder.trainable_variables,
                                            encoder.non_trainable_variables, images,
                                            training=training)
        return outputs["mean"]

    def _reconstruction_term(self, terms, name, images, z_s, z_u, training):
        """L_rec (θ at λ_rec; ψ at λ_rec and φ at λ_rec^u through the cuts of z_s and z_u into
        the decoder); returns x'_f."""
        z_s_in, z_u_in = terms.cut(z_s), terms.cut(z_u)
        reconstructions = self.decoder([z_s_in, z_u_in], training=training)
        terms.add(name, L.reconstruction_loss(images, reconstructions),
                  {"encoder_s": self.rec_weight, "encoder_u": self.zu_rec_weight,
                   "decoder": self.rec_weight},
                  via={"encoder_s": [z_s_in], "encoder_u": [z_u_in]})
        return reconstructions

    def _unlabeled_terms(self, terms, images, training, mode):
        """§3.6: unlabeled images; z_s is pulled to N(μ_t, Σ_t) of Eq. 11 (no L_GM, L_E^adv,
        L_C^adv); the terms as the labeled ones, under u_ names."""
        enc_u = self.encoder_u(images, training=training)
        z_u = self.sampler(enc_u["mean"], enc_u["log_var"], mode=mode)
        kl = L.kl_standard_normal(enc_u["mean"], enc_u["log_var"])
        z_s = self.encoder_s(images, training=training)["z_s"]
        terms.add("u_lkd", L.likelihood_loss(z_s, self.prior.moment_matched(stop_gradient=True)),
                  {"encoder_s": self.lkd_weight})
        terms.add("u_kl", kl, {"encoder_u": self.kl_weight})
        reconstructions = self._reconstruction_term(terms, "u_rec", images, z_s, z_u,
                                                    training)
        if self.gan_weight > 0:
            no_label = tf.zeros([tf.shape(images)[0], self.num_classes])
            real_logits, fake_logits, fake_cuts = self._discriminate(
                images, [reconstructions], no_label, training, terms)
            terms.add("u_d_loss", L.discriminator_loss(real_logits, fake_logits, self.gan_loss),
                      {"discriminator": 1.0})
            terms.add("u_g_loss", L.generator_loss(fake_logits, self.gan_loss),
                      {"decoder": self.gan_weight}, via={"decoder": fake_cuts})

    # ------------------------------------------------------------------------ train / test
    def _unpack(self, data):
        """(images, labels) | {"labeled": (images, labels), "unlabeled": images}, checked by
        :meth:`check_batch` (labels become int32)."""
        if isinstance(data, dict):
            labeled = data.get("labeled")
            unlabeled = data.get("unlabeled")
            if isinstance(unlabeled, (tuple, list)):
                unlabeled = unlabeled[0]
        else:
            labeled, unlabeled = data, None
        if labeled is not None:
            if not isinstance(labeled, (tuple, list)) or len(labeled) < 2:
                raise ValueError("labeled data: expected (images, labels) batches; pass "
                                 "{'unlabeled': images} for images without labels")
            labeled = self.check_batch(labeled[0], labeled[1])
        if unlabeled is not None:
            unlabeled = self.check_batch(unlabeled)[0]
        return labeled, unlabeled

    def _stages(self, images, labels):
        """Split a grouped batch (B, G, ...) into G batches; an ungrouped one is one stage."""
        if images.shape.rank == len(self.example_shape) + 2:
            groups = images.shape[1]
            if groups != self.data_group:
                raise ValueError(f"grouped batch has {groups} columns, model needs "
                                 f"data_group={self.data_group} (n_gm + 1)")
            return [(images[:, k], labels[:, k]) for k in range(groups)]
        return [(images, labels)]

    def _ungroup(self, images):
        """The last column of a grouped batch (B, G, ...); an ungrouped batch as it is."""
        if images is not None and images.shape.rank == len(self.example_shape) + 2:
            return images[:, -1]
        return images

    def _last_stage(self, data):
        labeled, unlabeled = self._unpack(data)
        if labeled is not None:
            labeled = self._stages(*labeled)[-1]
        return labeled, self._ungroup(unlabeled)

    def train_step(self, data):
        """Algorithm 1: ``n_gm`` GM-stage updates (lines 2–9), each on its own column of the
        grouped batch, then the joint stage (lines 10–29) on the last column."""
        labeled, unlabeled = self._unpack(data)
        logs = {}
        images = labels = dependence_batch = None
        if labeled is not None:
            stages = self._stages(*labeled)
            hsic = self.extension("hsic")
            if hsic and hsic.all_groups and len(stages) > 1:
                dependence_batch = (tf.concat([x for x, _ in stages[:-1]], 0),
                                    tf.concat([y for _, y in stages[:-1]], 0))
            for k in range(self.n_gm):  # GM stage: lines 2–9
                with tf.GradientTape(persistent=True) as tape:
                    gm_terms = self.compute_gm_losses(*stages[k % len(stages)], training=True)
                self.apply_terms(tape, gm_terms)
                del tape
                logs.update(gm_terms.logs)
            images, labels = stages[-1]
        with tf.GradientTape(persistent=True) as tape:  # joint stage: lines 10–24
            terms = self.compute_losses(images, labels, self._ungroup(unlabeled),
                                        training=True, dependence_batch=dependence_batch,
                                        tape=tape if self.backward_once else None)
        self.apply_terms(tape, terms)  # lines 25–29
        del tape
        if labels is not None:
            self.after_step(terms.adversary_codes, labels)
        logs.update(terms.logs)
        return self.track(logs)

    def test_step(self, data):
        images, unlabeled = self._last_stage(data)
        logs = {}
        labels = None
        if images is not None:
            images, labels = images
            logs.update(self.compute_gm_losses(images, labels, training=False).logs)
        logs.update(self.compute_losses(images, labels, unlabeled, training=False).logs)
        return self.track(logs)

    def call(self, images, training=False):
        """Reconstruction in inference mode: decoder(ẑ_s, μ_u). Also accepts what
        ``train_step`` accepts (Keras traces ``call`` on a training batch under a strategy)."""
        if isinstance(images, dict) or isinstance(images, (tuple, list)):
            labeled, unlabeled = self._last_stage(images)
            images = labeled[0] if labeled is not None else unlabeled
        else:
            images = self._ungroup(images)
        z_s = self.encoder_s(images, training=training)["z_s"]
        z_u = self.encoder_u(images, training=training)["mean"]
        return self.decoder([z_s, z_u], training=training)

    # ---------------------------------------------------------------------- inference API
    def _encode(self, images, mode):
        enc_u = self.encoder_u(images, training=False)
        return {"z_s": self.encoder_s(images, training=False)["z_s"],
                "z_u_mean": enc_u["mean"], "z_u_log_var": enc_u["log_var"],
                "z_u": self.sampler(enc_u["mean"], enc_u["log_var"], mode=mode)}

    def encode(self, images, mode="mode", batch_size=256):
        """{"z_s", "z_u_mean", "z_u_log_var", "z_u"}; z_u is μ in mode "mode" (default)."""
        images = self.check_images(images)
        return self.batched(lambda x: self._encode(x, mode), images, batch_size=batch_size)

    def decode(self, z_s, z_u):
        """x' = Decoder(concat(z_s, z_u)) in inference mode; z_s (N, zs_dim), z_u (N, zu_dim),
        real and finite (:meth:`check_finite`)."""
        z_s = tf.convert_to_tensor(self.check_finite(z_s, "z_s"))
        z_u = tf.convert_to_tensor(self.check_finite(z_u, "z_u"))
        if (z_s.shape.rank != 2 or z_u.shape.rank != 2 or z_s.shape[-1] != self.zs_dim
                or z_u.shape[-1] != self.zu_dim or z_s.shape[0] != z_u.shape[0]
                or z_s.shape[0] == 0):
            raise ValueError(f"decode: expected z_s of shape (N, {self.zs_dim}) and z_u of shape "
                             f"(N, {self.zu_dim}) with the same N >= 1, got {tuple(z_s.shape)} "
                             f"and {tuple(z_u.shape)}")
        return self.batched(lambda a, b: self.decoder([a, b], training=False), z_s, z_u)

    def reconstruct(self, images):
        codes = self.encode(images)
        return self.decode(codes["z_s"], codes["z_u"])

    label_irrelevant_code, label_relevant_code = "z_u", "z_s"

    def encode_labeled(self, images, labels=None, mode="mode"):
        """The uniform call of ``capabilities.Encodes``: both encoders read the image alone
        (``labels``, if given, are checked all the same)."""
        self.check_unused_labels(images, labels)
        return self.encode(images, mode=mode)

    def reconstruct_labeled(self, images, labels=None):
        """The uniform call of ``capabilities.Reconstructs``: labels are not needed (checked
        if given)."""
        self.check_unused_labels(images, labels)
        return self.reconstruct(images)

    def inpaint_labeled(self, images, mask, labels=None, fill_value=0.0, method="encode"):
        """The uniform call of ``capabilities.Inpaints``: labels are not needed (checked if
        given)."""
        self.check_unused_labels(images, labels)
        return self.inpaint(images, mask, fill_value=fill_value, method=method)

    def predict_labels(self, images, batch_size=256):
        """q(c | ẑ_s): posterior class probabilities under the mixture prior (Eq. 8)."""
        images = self.check_images(images)
        components = self.prior.components()

        def posterior(x):
            z_s = self.encoder_s(x, training=False)["z_s"]
            return tf.nn.softmax(L.gm_logits(z_s, components), axis=-1)

        return self.batched(posterior, images, batch_size=batch_size)

    def fit_prior_variances(self, images, labels, batch_size=256):
        """Sets each class's prior variances σ²_c to the maximum-likelihood value for the
        encoded codes ẑ_s of ``images`` with the learned means μ_c held fixed
        (:func:`keras_lsvae.distributions.max_likelihood_variances`: the minimiser of L_lkd,
        Eq. 7, over Σ_c). Not in the paper. Training learns Σ_c from L_GM, where L_cls (Eq. 8)
        dominates λ_lkd L_lkd and widens the components for classification: on real MNIST
        the learned σ²_c came out 2.5–5× the within-class variance of ẑ_s, so z_s ~ N(μ_c, σ²_c)
        fell where the decoder had never been trained and conditional accuracy was 0.87–0.98;
        with the fitted variances, 0.985–0.997 (docs/lrlivae.md). Classes absent from
        ``labels`` (unseen classes of §3.6) keep theirs. The means, and everything measured on
        encoded images (q(c | ẑ_s), swaps, reconstructions), are unchanged."""
        images, labels = self._check_pair(images, labels)
        z_s = self.batched(lambda x: self.encoder_s(x, training=False)["z_s"], images,
                           batch_size=batch_size)
        self.prior.set_variances(dists.max_likelihood_variances(
            z_s, labels.numpy(), self.prior.means.numpy(),
            keras.ops.convert_to_numpy(self.prior.variances())))

    def sample_latents(self, labels, seed=None):
        """z_s ~ N(μ_c, σ²_c) and z_u ~ N(0, I) for each requested class (§4.2)."""
        labels = self.check_labels(labels)
        n = int(labels.shape[0])
        noise = self._normal((n, self.zs_dim + self.zu_dim), seed)
        z_s = self.prior.components(labels).bijector.forward(noise[:, :self.zs_dim])
        return z_s, noise[:, self.zs_dim:]

    def generate(self, labels, seed=None):
        """Images of the requested classes: decoder(z_s ~ N(μ_c, σ_c), z_u ~ N(0, I))."""
        z_s, z_u = self.sample_latents(labels, seed)
        return self.decode(z_s, z_u)

    def swap(self, images_s, images_u):
        """Decoder(z_s of ``images_s``, z_u of ``images_u``), pairwise (Fig. 6)."""
        images_s = self.check_images(images_s, "images_s")
        images_u = self.check_images(images_u, "images_u")
        if images_s.shape[0] != images_u.shape[0]:
            raise ValueError(f"swap needs as many images_s as images_u, got "
                             f"{images_s.shape[0]} and {images_u.shape[0]}")
        return self.decode(self.encode(images_s)["z_s"], self.encode(images_u)["z_u"])

    INPAINT_METHODS = ("encode", "optimize")

    def inpaint(self, images, mask, fill_value=0.0, iterations=1, method="encode", steps=200,
                learning_rate=0.05, pixel_noise=0.02):
        """x_inp = M ⊙ x' + (1 − M) ⊙ x (§4.5), M = 1 on missing pixels.

        ``method="encode"`` (the paper): the corrupted image (missing pixels set to
        ``fill_value``, a scalar or an (H, W, C) image such as the data mean) goes through both
        encoders and the decoder; ``iterations > 1`` feeds x_inp back in.
        ``method="optimize"`` (an extension): starting from those codes, ``steps`` Adam steps on
        (z_s, z_u) maximise log p(x_visible | z) + log p(z_s) + log p(z_u), with a Gaussian
        pixel likelihood of std ``pixel_noise``, the mixture prior of Eq. 6 and N(0, I): the
        MAP codes of the visible pixels, which the encoders (trained on whole images) only
        approximate when half of the image is missing. (On digits, three seeds of
        configs/digits.cfg: std 0.02 with 200 steps beat the mean fill on all three paper masks
        for every seed; 0.05 lost on the bottom half for one seed, 0.1 and 0.2 were worse still,
        and 500 steps did not help reliably.)
        ``mask`` may be a name from :data:`keras_lsvae.masks.MASK_KINDS`.
        """
        if method not in self.INPAINT_METHODS:
            raise ValueError(f"method must be one of {self.INPAINT_METHODS}, got {method!r}")
        if method == "optimize":
            steps = self.check_positive("steps", steps)
            learning_rate = self.check_positive("learning_rate", learning_rate, integer=False)
            pixel_noise = self.check_positive("pixel_noise", pixel_noise, integer=False)
        iterations = self.check_positive("iterations", iterations)
        images, mask, result = self.masked_input(images, mask, fill_value)
        for _ in range(int(iterations)):
            result = mask * self.reconstruct(result) + (1.0 - mask) * images
        if method == "optimize":
            codes = self.encode(result)
            z_s, z_u = self._map_codes(images, 1.0 - mask, codes["z_s"], codes["z_u"],
                                       int(steps), float(learning_rate), float(pixel_noise))
            result = mask * self.decode(z_s, z_u) + (1.0 - mask) * images
        return result

    def _map_codes(self, images, visible, z_s, z_u, steps, learning_rate, pixel_noise):
        """MAP estimate of (z_s, z_u) given the visible pixels (see :meth:`inpaint`)."""
        z_s, z_u = tf.Variable(z_s), tf.Variable(z_u)
        optimizer = keras.optimizers.Adam(learning_rate)
        prior_s = self.prior.distribution()
        visible = tf.broadcast_to(visible, tf.shape(images))

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                decoded = self.decoder([z_s, z_u], training=False)
                data_term = 0.5 * tf.reduce_sum(
                    visible * tf.square(images - decoded), axis=[1, 2, 3]) / pixel_noise**2
                prior_u = 0.5 * tf.reduce_sum(tf.square(z_u), axis=-1)
                loss = tf.reduce_sum(data_term - prior_s.log_prob(z_s) + prior_u)
            optimizer.apply_gradients(zip(tape.gradient(loss, [z_s, z_u]), [z_s, z_u]))

        for _ in range(steps):
            step()
        return z_s.value(), z_u.value()

    def interpolate(self, images_a, images_b, num_steps=8):
        """Decoded linear interpolation of (z_s, z_u) between two sets of images:
        shape (N, num_steps, *example_shape)."""
        num_steps = self.check_positive("num_steps", num_steps)
        images_a = self.check_images(images_a, "images_a")
        images_b = self.check_images(images_b, "images_b")
        if images_a.shape[0] != images_b.shape[0]:
            raise ValueError(f"interpolate needs as many images_a as images_b, got "
                             f"{images_a.shape[0]} and {images_b.shape[0]}")
        codes_a, codes_b = self.encode(images_a), self.encode(images_b)
        alphas = tf.linspace(0.0, 1.0, num_steps)[None, :, None]

        def lerp(key):
            a, b = codes_a[key][:, None], codes_b[key][:, None]
            return tf.reshape((1 - alphas) * a + alphas * b, [-1, a.shape[-1]])

        out = self.decode(lerp("z_s"), lerp("z_u"))
        return tf.reshape(out, [-1, num_steps, *self.example_shape])

    def interpolate_zs(self, label, num_steps=8, seed=0):
        """§4.3 protocol (1): fixed z_u ~ N(0, I); z^(i) = α z_1 + (1 − α) z_2 with z_1, z_2 ~
        N(0, I); z_s^(i) = z^(i) ⊙ σ_c + μ_c. The same seed gives the same z_u and z^(i) for
        every class (Fig. 4a's columns)."""
        num_steps = self.check_positive("num_steps", num_steps)
        label = int(self.check_labels([label], "label")[0])
        noise = self._normal((3, max(self.zs_dim, self.zu_dim)), seed)
        alphas = tf.linspace(1.0, 0.0, num_steps)[:, None]
        codes = alphas * noise[0, :self.zs_dim] + (1 - alphas) * noise[1, :self.zs_dim]
        z_s = self.prior.components([label]).bijector.forward(codes)
        z_u = tf.repeat(noise[2:3, :self.zu_dim], num_steps, axis=0)
        return self.decode(z_s, z_u)

    def interpolate_zu(self, label, num_steps=8, seed=0):
        """§4.3 protocol (2): fixed z_s ~ N(μ_c, σ_c); z_u interpolated between two N(0, I)
        draws."""
        num_steps = self.check_positive("num_steps", num_steps)
        label = int(self.check_labels([label], "label")[0])
        noise = self._normal((3, max(self.zs_dim, self.zu_dim)), seed)
        z_s = self.prior.components([label]).bijector.forward(noise[0:1, :self.zs_dim])
        alphas = tf.linspace(1.0, 0.0, num_steps)[:, None]
        z_u = alphas * noise[1, :self.zu_dim] + (1 - alphas) * noise[2, :self.zu_dim]
        return self.decode(tf.repeat(z_s, num_steps, axis=0), z_u)

    def traverse(self, label, dims, values=(-2.0, -1.0, 0.0, 1.0, 2.0), seed=0):
        """Fig. 5: fixed z_s of class ``label`` and z_u; one z_u dimension at a time set to each
        of ``values``. Returns (len(dims), len(values), *example_shape)."""
        array = np.atleast_1d(np.asarray(dims))
        if (array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu"
                or array.min() < 0 or array.max() >= self.zu_dim):
            raise ValueError(f"dims: expected one or more integer z_u dimensions in "
                             f"[0, {self.zu_dim}), got {dims!r}")
        dims = [int(d) for d in array]
        values = self.check_finite(values, "values")
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"values: expected one or more values to set each dimension to "
                             f"(a 1-D sequence), got shape {values.shape}")
        self.check_seed(seed, optional=True)
        z_s, z_u = self.sample_latents(self.check_labels([label], "label"), seed)
        values = tf.constant(values, tf.float32)
        rows = []
        for d in dims:
            z_u_row = tf.repeat(z_u, len(values), axis=0)
            z_u_row = tf.concat([z_u_row[:, :d], values[:, None], z_u_row[:, d + 1:]], axis=1)
            rows.append(self.decode(tf.repeat(z_s, len(values), axis=0), z_u_row))
        return tf.stack(rows)

    def get_config(self):
        config = super().get_config()
        config.update(
            zs_dim=self.zs_dim, zu_dim=self.zu_dim, width=self.width,
            mlp_units=list(self.mlp_units),
            latent_classifier_units=list(self.latent_classifier_units), n_gm=self.n_gm,
            lkd_weight=self.lkd_weight, loss_weighting=self.loss_weighting,
            adv_weight=self.adv_weight, gan_weight=self.gan_weight, gan_loss=self.gan_loss,
            spectral_norm=self.spectral_norm, min_variance=self.prior.min_variance,
            init_variance=self.prior.init_variance, mean_init_stddev=self.prior.mean_init_stddev,
            variance_lr_multiplier=self.variance_lr_multiplier,
            train_sampling=self.train_sampling,
            **self._weight_overrides)
        return config
