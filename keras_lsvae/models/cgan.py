"""cGAN: the conditional GAN baseline of paper A (Zheng & Sun, CVPR 2019, §4.2, Table 1, paper
A's [29]) with the projection discriminator of Miyato & Koyama, "cGANs with Projection
Discriminator", ICLR 2018.

Networks (:mod:`keras_lsvae.networks`, Lr-LiVAE's sizes, so comparisons are fair):
  * G(z, c): ``build_decoder`` on concat(z, one-hot c): the label enters the generator by
    **concatenating its one-hot vector to z** (paper A §4.2: "concatenating z and one hot
    vector of c as the input of decoder/generator"); Miyato & Koyama use conditional batch
    norm instead (not implemented here). Batch norm as in Lr-LiVAE's decoder.
  * D(x, c) = ψ(φ(x)) + ⟨embed(c), φ(x)⟩ (Miyato & Koyama Eq. 3 with the class embedding V
    applied to the one-hot y): ``build_discriminator``, exactly Lr-LiVAE's pixel
    discriminator: φ the conv trunk (no batch norm), ψ a linear unit, the projection
    :class:`keras_lsvae.networks.Projection`; optional spectral norm on every layer of D
    (``spectral_norm``, as Miyato & Koyama do).

Losses (:mod:`keras_lsvae.losses`, from logits; ``gan_loss`` as Lr-LiVAE's option):
"nonsaturating" (default; D: softplus(−D(x, c)) + softplus(D(G(z, c), c)), G:
softplus(−D(G(z, c), c))) or "hinge" (Miyato & Koyama's: D: relu(1 − D(x, c)) + relu(1 + D(x̃,
c)), G: −D(x̃, c)). Fakes are drawn for the real batch's labels, z ~ N(0, I). One update of D
and one of G per step, each with its own optimizer, on one batch and one forward pass
(Miyato & Koyama use n_dis = 5 D steps per G step on CIFAR-10 with the hinge loss: a
simplification here, for the same step budget as the other models).

``call(images)`` is D's logit (the model's only network that reads images): with labels
(``(images, labels)``) the full D(x, c), without them ψ(φ(x)) alone (the projection term is
zero for an all-zero label code).

Log keys (stable): d_loss, g_loss, d_real, d_fake.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_lsvae import losses as L
from keras_lsvae import networks
from keras_lsvae.models.base import Terms
from keras_lsvae.models.cvae import ClassConditionalModel
from keras_lsvae.registry import MODELS


@MODELS.register("cgan")
@keras.saving.register_keras_serializable(package="keras_lsvae")
class CGAN(ClassConditionalModel):
    """cGAN with a projection discriminator (module docstring).

    Args:
        input_shape, num_classes, seed: see :class:`LabelSplitModel`.
        z_dim: size of the noise z. width, mlp_units: network sizes (Lr-LiVAE's).
        gan_loss: "nonsaturating" or "hinge". spectral_norm: spectral normalisation in D.
        train_sampling: "sample" (z ~ N(0, I)) or "mode" (z = 0: deterministic, for tests).

    Public methods: ``generate(labels, seed=None)``, ``decode(z, labels)``,
    ``discriminate(images, labels)``."""

    OBJECTIVES = ("generator", "discriminator")
    LOG_KEYS = ("d_loss", "g_loss", "d_real", "d_fake")

    def __init__(self, input_shape, num_classes, z_dim=16, width=32,
                 mlp_units=networks.DEFAULT_MLP_UNITS, gan_loss="nonsaturating",
                 spectral_norm=False, train_sampling="sample", seed=0, name="cgan", **kwargs):
        super().__init__(input_shape, num_classes, seed=seed, name=name, **kwargs)
        self.check_choice("gan_loss", gan_loss, L.GAN_LOSSES)
        self.check_choice("train_sampling", train_sampling, ("sample", "mode"))
        self.z_dim = self.latent_dim = self.check_positive("z_dim", z_dim)
        self.width = self.check_positive("width", width)
        self.mlp_units = self.check_sizes("mlp_units", mlp_units, allow_empty=True)
        self.gan_loss, self.spectral_norm = gan_loss, bool(spectral_norm)
        self.train_sampling = train_sampling
        shape = self.example_shape
        self.generator = networks.build_decoder([self.z_dim, self.num_classes], shape,
                                                width=self.width, mlp_units=self.mlp_units,
                                                name="generator")
        self.discriminator = networks.build_discriminator(
            shape, self.num_classes, width=self.width, mlp_units=self.mlp_units,
            spectral_norm=self.spectral_norm)
        self.sample_seed_generator = keras.random.SeedGenerator(self.seed + 1)
        self.finish_init()

    def objective_variables(self):
        return {"generator": self.generator.trainable_variables,
                "discriminator": self.discriminator.trainable_variables}

    def _decode_batch(self, z, one_hot, training=False):
        return self.generator([z, one_hot], training=training)

    def compute_losses(self, images, labels, training=True, tape=None):
        """D's and G's losses (module docstring) on one batch and one G/D forward pass, as
        :class:`Terms`: L_D in D's objective; L_G in G's, through a cut of the fakes (D's
        variables never take it)."""
        terms = Terms(tape)
        one_hot = self.one_hot(labels)
        batch = tf.shape(images)[0]
        if training and self.train_sampling == "mode":
            z = tf.zeros([batch, self.z_dim])
        else:
            z = self._prior_noise(batch, training)
        fakes = self.generator([z, one_hot], training=training)
        fakes_in = terms.cut(fakes)
        # Two D passes: G's loss goes back through the fakes' pass alone.
        logits = self.real_and_fake_passes(self.discriminator, [images, one_hot],
                                           [fakes_in, one_hot], training,
                                           one_pass=self.spectral_norm)
        real_logits, fake_logits = tf.split(logits, 2, axis=0)
        terms.add("d_loss", L.discriminator_loss(real_logits, [fake_logits], self.gan_loss),
                  {"discriminator": 1.0})
        terms.add("g_loss", L.generator_loss([fake_logits], self.gan_loss),
                  {"generator": 1.0}, via={"generator": [fakes_in]})
        terms.log(d_real=tf.reduce_mean(real_logits), d_fake=tf.reduce_mean(fake_logits))
        return terms

    def discriminate(self, images, labels=None, batch_size=256):
        """D(x, c) logits (N, 1) in inference mode; without labels ψ(φ(x)) alone."""
        images = self.check_images(images)
        if labels is None:
            codes = tf.zeros([images.shape[0], self.num_classes])
        else:
            images, labels = self._check_pair(images, labels)
            codes = self.one_hot(labels)
        return self.batched(lambda x, c: self.discriminator([x, c], training=False), images,
                            codes, batch_size=batch_size)

    def call(self, inputs, training=False):
        """D's logit (module docstring): (images, labels) -> D(x, c); images -> ψ(φ(x))."""
        images, labels = self._split_inputs(inputs)
        codes = (tf.zeros([tf.shape(images)[0], self.num_classes]) if labels is None
                 else self.one_hot(tf.cast(labels, tf.int32)))
        return self.discriminator([images, codes], training=training)

    def get_config(self):
        config = super().get_config()
        config.update(z_dim=self.z_dim, width=self.width, mlp_units=list(self.mlp_units),
                      gan_loss=self.gan_loss, spectral_norm=self.spectral_norm,
                      train_sampling=self.train_sampling)
        return config
