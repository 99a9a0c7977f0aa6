"""CondVAE-info: the conditional VAE with information factorisation, baseline of paper B (Klys,
Snell & Zemel, NeurIPS 2018), §3.3 (after Creswell et al. 2017 [3]; Fig. 1b).

Networks: q_φ(z|x) (the encoder does **not** see y), p_θ(x|z, y) on concat(z, y), and an
adversary r_ψ(z) -> A attribute logits (:func:`keras_lsvae.networks.build_classifier`, the same
MLP as CSVAE's q_δ(y|z)).

Objective: Eq. 2 with q_φ(z|x, y) replaced by q_φ(z|x), plus Eq. 3,
max_φ min_ψ L(r_ψ(q_φ(z|x)), y) with L the cross-entropy
(:func:`keras_lsvae.losses.attribute_cross_entropy`, summed over the A binary attributes):

* ``encoder`` (φ): rec_weight·rec + kl_z_weight·KL(z) + info_weight·(−L(r_ψ(z), y))
  [+ the ``hsic`` and ``mmd`` extensions' terms, keras_lsvae/models/extensions.py];
  ``info_loss="entropy"`` replaces −L by the CSVAE M2 term −H(r_ψ(z)) (bounded; not the paper's).
* ``decoder`` (θ): rec_weight·rec + kl_z_weight·KL(z) (KL does not depend on θ).
* ``adversary`` (ψ): adversary_weight·L(r_ψ(z), y) on the detached z (the
  ``adversary_boost`` extension: more updates per step, a higher rate).

z is a posterior sample in training (the input of r_ψ in Eq. 3 is q_φ(z|x)), the mean in
evaluation. Defaults: the shared rec/kl weights of the VAE (keras_lsvae/models/vae.py);
info_weight = 1 (Eq. 3 has no weight) and adversary_weight = 1 (the reference CSVAE
implementation's weight on its adversary, keras_lsvae/models/csvae.py).

Manipulation (§4.3, "Cond VAE-info"): decode(μ_φ(x), p·t), as CondVAE.

Log keys (stable): loss, rec, kl_z, info_encoder, adversary, adversary_accuracy; hsic and mmd
when those extensions are on.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_lsvae import losses as L
from keras_lsvae import networks
from keras_lsvae.models.condvae import ConditionalManipulation
from keras_lsvae.models.vae import GaussianVAEBase
from keras_lsvae.registry import MODELS

INFO_LOSSES = ("cross_entropy", "entropy")


def attribute_accuracy(logits, attributes):
    """Fraction of (example, attribute) pairs that the logits get right (threshold 0)."""
    predicted = tf.cast(logits > 0, attributes.dtype)
    return tf.reduce_mean(tf.cast(tf.equal(predicted, attributes), tf.float32))


@MODELS.register("condvae_info")
@keras.saving.register_keras_serializable(package="keras_lsvae")
class CondVAEInfo(ConditionalManipulation, GaussianVAEBase):
    """CondVAE-info (module docstring). Arguments: those of
    :class:`keras_lsvae.models.vae.GaussianVAEBase`, and

    adversary_units: hidden layers of r_ψ. info_weight: weight of Eq. 3's −L in φ's objective.
    info_loss: "cross_entropy" (Eq. 3) or "entropy". adversary_weight: weight of ψ's L.
    extensions: ``hsic``, ``mmd`` (on z) and ``adversary_boost``
    (keras_lsvae/models/extensions.py); none by default: the paper's model.

    Public methods: as :class:`CondVAE`, with ``encode(images)`` not needing attributes."""

    OBJECTIVES = ("encoder", "decoder", "adversary")
    LOG_KEYS = ("loss", "rec", "kl_z", "info_encoder", "adversary", "adversary_accuracy",
                "hsic", "mmd")
    condition_encoder = False
    condition_decoder = True
    EXTENSION_SITES = ("independence", "adversary")

    def __init__(self, input_shape, num_classes, adversary_units=(64, 64), info_weight=1.0,
                 info_loss="cross_entropy", adversary_weight=1.0, name="condvae_info",
                 **kwargs):
        super().__init__(input_shape, num_classes, name=name, **kwargs)
        if info_loss not in INFO_LOSSES:
            raise ValueError(f"info_loss must be one of {INFO_LOSSES}, got {info_loss!r}")
        self.adversary_units = self.check_sizes("adversary_units", adversary_units,
                                                allow_empty=True)
        self.info_weight = self.check_number("info_weight", info_weight)
        self.info_loss = info_loss
        self.adversary_weight = self.check_number("adversary_weight", adversary_weight)
        self.adversary = networks.build_classifier(self.z_dim, self.num_attributes,
                                                   hidden=self.adversary_units,
                                                   input_name="z", name="adversary")
        self.finish_init()

    def objective_variables(self):
        variables = super().objective_variables()
        variables["adversary"] = self.adversary.trainable_variables
        return variables

    def adversary_site(self):
        """The latent adversary r_ψ for the ``adversary`` extensions."""
        return {"objective": "adversary", "network": self.adversary,
                "loss": lambda logits, y: self.adversary_weight
                * L.attribute_cross_entropy(logits, y)}

    def extra_terms(self, terms, posterior, z, attributes, training):
        """Eq. 3's information term in φ's objective. Its adversary pass reads a cut of z, so
        it reaches the encoder through the cut and never moves ψ."""
        z_in = terms.cut(z)
        logits = self.adversary(z_in, training=training)
        if self.info_loss == "cross_entropy":
            info = L.information_encoder_loss(logits, attributes)
        else:
            info = L.attribute_negative_entropy(logits)
        terms.add("info_encoder", info, {"encoder": self.info_weight},
                  via={"encoder": [z_in]})

    def adversary_terms(self, terms, z, attributes, training):
        """ψ's L(r_ψ(z), y) on the detached z (Eq. 3's min over ψ)."""
        detached_logits = self.adversary(tf.stop_gradient(z), training=training)
        terms.add("adversary", L.attribute_cross_entropy(detached_logits, attributes),
                  {"adversary": self.adversary_weight})
        terms.log(adversary_accuracy=attribute_accuracy(detached_logits, attributes))
        terms.adversary_codes = z

    def get_config(self):
        config = super().get_config()
        config.update(adversary_units=list(self.adversary_units), info_weight=self.info_weight,
                      info_loss=self.info_loss, adversary_weight=self.adversary_weight)
        return config
