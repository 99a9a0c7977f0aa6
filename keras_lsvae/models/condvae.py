"""CondVAE: the conditional VAE baseline of paper B (Klys, Snell & Zemel, NeurIPS 2018), §3.2
Eq. 2: log p_θ(x|y) ≥ E_q(z|x,y)[log p_θ(x|z, y)] − KL(q_φ(z|x, y) ‖ p(z)) (Kingma et al.
2014 [11], Sohn et al. 2015 [21]; Fig. 1a).

Networks: q_φ(z|x, y) is :func:`keras_lsvae.networks.build_encoder` with the attribute vector
concatenated to the trunk's features (``condition_dim = A``), p_θ(x|z, y) the shared decoder
on concat(z, y). Same builders, sizes and loss weights as the VAE, CondVAE-info and CSVAE
(keras_lsvae/models/vae.py: rec_weight = 40/N_values, kl_z_weight = 0.2).

Attribute manipulation (§4.3, "Cond VAE"): G_ij(x, y, p) = μ_θ(μ_φ(x, y), p·y¹), encode with the
original label, decode with the switched one scaled by p: :meth:`CondVAE.manipulate` with
``scale = p`` (default 1, §5.4 "setting p_j = 1") and a whole target attribute vector t (the
one-hot y¹ of the paper, or several non-exclusive attributes at once): decode(μ_φ(x, y), p·t).

Log keys (stable): loss, rec, kl_z.
"""

from __future__ import annotations

import keras

from keras_lsvae.models import capabilities as caps
from keras_lsvae.models.vae import GaussianVAEBase
from keras_lsvae.registry import MODELS


class ConditionalManipulation(caps.ManipulatesAttributes, caps.ScalesManipulation):
    """§4.3's G_ij for CondVAE and CondVAE-info (mixin)."""

    def manipulate(self, images, attributes, target_attributes, scale=1.0):
        """decode(μ_φ(x[, y]), scale · target): ``attributes`` are the source's labels (used
        by q(z|x, y); CondVAE-info's q(z|x) ignores them, None allowed there)."""
        scale = self.check_number("scale", scale)
        if self.condition_encoder:
            self._require_attributes(attributes, "manipulate")
            images, attributes = self._check_pair(images, attributes)
        else:
            images = self.check_images(images)
            if attributes is not None:
                images, attributes = self._check_pair(images, attributes)
        _, targets = self._check_pair(images, target_attributes, "target_attributes")
        z = self.encode(images, attributes)["z_mean"]
        return self.decode(z, scale * targets)


@MODELS.register("condvae")
@keras.saving.register_keras_serializable(package="keras_lsvae")
class CondVAE(ConditionalManipulation, GaussianVAEBase):
    """CondVAE (module docstring); arguments: :class:`keras_lsvae.models.vae.GaussianVAEBase`.

    Public methods: ``encode(images, attributes, mode="mode", batch_size=256)``,
    ``decode(z, attributes)``, ``reconstruct(images, attributes)``,
    ``generate(attributes, seed=None)``,
    ``manipulate(images, attributes, target_attributes, scale=1.0)``."""

    condition_encoder = True
    condition_decoder = True
    #: z is the label-irrelevant code (y enters the decoder on its own): the ``hsic`` and
    #: ``mmd`` extensions apply to it
    EXTENSION_SITES = ("independence",)

    def __init__(self, input_shape, num_classes, name="condvae", **kwargs):
        super().__init__(input_shape, num_classes, name=name, **kwargs)
        self.finish_init()
