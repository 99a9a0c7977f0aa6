"""CondVAE-info: the conditional VAE with information factorisation, baseline of paper B (Klys,
Snell & Zemel, NeurIPS 2018), §3.3 (after Creswell et al. 2017 [3]; Fig. 1b).

Networks: q_φ(z|x) (the encoder does **not** see y), p_θ(x|z, y) on concat(z, y), and an
adversary r_ψ(z) -> A attribute logits (:func:`keras_lsvae.networks.build_classifier`, the same
MLP as CSVAE's q_δ(y|z)).

Objective: Eq. 2 with q_φ(z|x, y) replaced by q_φ(z|x), plus Eq. 3,
max_φ min_ψ L(r_ψ(q_φ(z|x)), y) with L the cross-entropy
(:func:`keras_lsvae.losses.attribute_cross_entropy`, summed over the A binary attributes):

* ``encoder`` (φ): rec_weight·rec + kl_z_weight·KL(z) + info_weight·(−L(r_ψ(z), y))
  [+ hsic_weight·HSIC + mmd_weight·MMD, optional, keras_lsvae/models/independence.py];
  ``info_loss="entropy"`` replaces −L by the CSVAE M2 term −H(r_ψ(z)) (bounded; not the paper's).
* ``decoder`` (θ): rec_weight·rec + kl_z_weight·KL(z) (KL does not depend on θ).
* ``adversary`` (ψ): adversary_weight·L(r_ψ(z), y) on the detached z; ``adversary_steps`` − 1
  more updates on the same codes, at ``adversary_lr_multiplier`` × the base rate.

z is a posterior sample in training (the input of r_ψ in Eq. 3 is q_φ(z|x)), the mean in
evaluation. Defaults: the shared rec/kl weights of the VAE (keras_lsvae/models/vae.py);
info_weight = 1 (Eq. 3 has no weight) and adversary_weight = 1 (the reference CSVAE
implementation's weight on its adversary, keras_lsvae/models/csvae.py).

Manipulation (§4.3, "Cond VAE-info"): decode(μ_φ(x), p·t), as CondVAE.

Log keys (stable): loss, rec, kl_z, info_encoder, adversary, adversary_accuracy; hsic and mmd
when their weights are > 0.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_lsvae import losses as L
from keras_lsvae import networks
from keras_lsvae.models.condvae import ConditionalManipulation
from keras_lsvae.models.independence import IndependenceOptions, extra_adversary_steps
from keras_lsvae.models.vae import GaussianVAEBase
from keras_lsvae.registry import MODELS

INFO_LOSSES = ("cross_entropy", "entropy")


def attribute_accuracy(logits, attributes):
    """Fraction of (example, attribute) pairs that the logits get right (threshold 0)."""
    predicted = tf.cast(logits > 0, attributes.dtype)
    return tf.reduce_mean(tf.cast(tf.equal(predicted, attributes), tf.float32))


@MODELS.register("condvae_info")
@keras.saving.register_keras_serializable(package="keras_lsvae")
class CondVAEInfo(IndependenceOptions, ConditionalManipulation, GaussianVAEBase):
    """CondVAE-info (module docstring). Arguments: those of
    :class:`keras_lsvae.models.vae.GaussianVAEBase`, and

    adversary_units: hidden layers of r_ψ. info_weight: weight of Eq. 3's −L in φ's objective.
    info_loss: "cross_entropy" (Eq. 3) or "entropy". adversary_weight: weight of ψ's L.
    hsic_weight, hsic_linear_weight, mmd_weight, adversary_steps, adversary_lr_multiplier,
    hsic_bandwidth_scales:
    :class:`keras_lsvae.models.independence.IndependenceOptions`.

    Public methods: as :class:`CondVAE`, with ``encode(images)`` not needing attributes."""

    OBJECTIVES = ("encoder", "decoder", "adversary")
    LOG_KEYS = ("loss", "rec", "kl_z", "info_encoder", "adversary", "adversary_accuracy",
                "hsic", "mmd")
    condition_encoder = False
    condition_decoder = True

    def __init__(self, input_shape, num_classes, adversary_units=(64, 64), info_weight=1.0,
                 info_loss="cross_entropy", adversary_weight=1.0, hsic_weight=0.0,
                 hsic_linear_weight=0.0, mmd_weight=0.0, adversary_steps=1,
                 adversary_lr_multiplier=1.0, hsic_bandwidth_scales=(1.0,), name="condvae_info", **kwargs):
        super().__init__(input_shape, num_classes, name=name, **kwargs)
        if info_loss not in INFO_LOSSES:
            raise ValueError(f"info_loss must be one of {INFO_LOSSES}, got {info_loss!r}")
        self.init_independence(hsic_weight, hsic_linear_weight, mmd_weight, adversary_steps,
                               adversary_lr_multiplier, hsic_bandwidth_scales)
        self.adversary_units = tuple(int(u) for u in adversary_units)
        self.info_weight, self.info_loss = float(info_weight), info_loss
        self.adversary_weight = float(adversary_weight)
        self.adversary = networks.build_classifier(self.z_dim, self.num_attributes,
                                                   hidden=self.adversary_units,
                                                   input_name="z", name="adversary")
        self.finish_init()

    def objective_variables(self):
        variables = super().objective_variables()
        variables["adversary"] = self.adversary.trainable_variables
        return variables

    def compile(self, learning_rate=5e-4, learning_rates=None, **kwargs):
        """The adversary at ``adversary_lr_multiplier`` × the base rate unless
        ``learning_rates`` says otherwise."""
        rates = {"adversary": learning_rate * self.adversary_lr_multiplier}
        rates.update(learning_rates or {})
        super().compile(learning_rate=learning_rate, learning_rates=rates, **kwargs)

    links_adversary = True

    def extra_losses(self, result, posterior, z, attributes, training, tape=None):
        """The info term, the independence terms and the adversary's N (module docstring).
        With ``tape`` (``backward_once``) the info term reaches the encoder through a link
        (its adversary pass reads a cut of z), never the adversary ("backward")."""
        objectives, logs = result["objectives"], result["logs"]
        loss = objectives["encoder"]
        z_in = self.cut(tape, z)
        logits = self.adversary(z_in, training=training)
        if self.info_loss == "cross_entropy":
            info = L.information_encoder_loss(logits, attributes)
        else:
            info = L.attribute_negative_entropy(logits)
        penalty, independence_logs = self.independence_terms(posterior["mean"], z, attributes,
                                                             training)
        detached_logits = self.adversary(tf.stop_gradient(z), training=training)
        adversary = L.attribute_cross_entropy(detached_logits, attributes)
        objectives["encoder"] = objectives["encoder"] + self.info_weight * info + penalty
        objectives["adversary"] = self.adversary_weight * adversary
        logs.update(info_encoder=info, adversary=adversary,
                    adversary_accuracy=attribute_accuracy(detached_logits, attributes),
                    **independence_logs)
        result["adversary_codes"] = z
        if tape is not None:
            result["backward"] = {"loss": loss + penalty + self.adversary_weight * adversary,
                                  "links": [(info, [(z_in, z, self.info_weight)])]}

    def after_step(self, result, attributes):
        extra_adversary_steps(
            self, "adversary", self.adversary, result["adversary_codes"], attributes,
            lambda logits, y: self.adversary_weight * L.attribute_cross_entropy(logits, y),
            self.adversary_steps)

    def get_config(self):
        config = super().get_config()
        config.update(adversary_units=list(self.adversary_units), info_weight=self.info_weight,
                      info_loss=self.info_loss, adversary_weight=self.adversary_weight,
                      **self.independence_config())
        return config
