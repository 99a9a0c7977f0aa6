"""TFP distributions used by the models: the learnable Gaussian-mixture prior of Lr-LiVAE and KL
helpers.

Lr-LiVAE (Zheng & Sun, CVPR 2019), Eq. 6: p(z_s) = Σ_c p(c) N(z_s; μ_c, Σ_c) with p(c) = 1/C and
diagonal Σ_c. The mixture's parameters live in :class:`GaussianMixturePrior`, a Keras layer whose
weights are the means ``(C, D)`` and an unconstrained ``raw_variance`` ``(C, D)``.

Parameterisation (explicit, since the paper is not): the layer stores **variances**
σ²_c = floor + softplus(raw). The floor (``min_variance``) keeps the log-det term of L_lkd
(Eq. 7), which rewards shrinking variances, from collapsing them to zero; the authors' code
handled the same collapse with a separate, lower learning rate for the variances, which
:class:`keras_lsvae.models.LrLiVAE` offers too (``variance_lr_multiplier``).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

LOG_2PI = math.log(2.0 * math.pi)


def diagonal_normal(mean, variance) -> tfd.Distribution:
    """N(mean, diag(variance)) as a TFP distribution with event shape ``[D]``."""
    return tfd.MultivariateNormalDiag(loc=mean, scale_diag=tf.sqrt(variance))


def standard_normal_like(mean) -> tfd.Distribution:
    """N(0, I) with the batch and event shape of ``mean``."""
    return tfd.MultivariateNormalDiag(loc=tf.zeros_like(mean), scale_diag=tf.ones_like(mean))


def mixture(means, variances, mixture_logits=None) -> tfd.MixtureSameFamily:
    """The Gaussian mixture of Eq. 6; uniform p(c) unless ``mixture_logits`` are given."""
    num_components = tf.shape(means)[0]
    if mixture_logits is None:
        mixture_logits = tf.zeros([num_components], dtype=means.dtype)
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=mixture_logits),
        components_distribution=diagonal_normal(means, variances),
    )


def mixture_moments(means, variances):
    """Eq. 11: total mean μ_t and variance σ²_t of the uniform mixture of diagonal Gaussians.

    μ_t = Σ_c p(c) μ_c;  σ²_t = Σ_c p(c) σ²_c + Σ_c p(c) μ_c² − (Σ_c p(c) μ_c)².
    Computed in closed form (TFP's ``MixtureSameFamily.mean()/variance()`` agree; see tests).
    """
    mean_t = tf.reduce_mean(means, axis=0)
    variance_t = (
        tf.reduce_mean(variances, axis=0) + tf.reduce_mean(tf.square(means), axis=0)
        - tf.square(mean_t)
    )
    return mean_t, variance_t


def gaussian_log_likelihoods(z, means, variances):
    """log N(z_b; μ_k, diag σ²_k) for every sample b and component k, shape ``(B, K)``.

    Vectorised with einsum over batch × classes × dims, in log space: the Mahalanobis term
    Σ_d (z_d − μ_kd)² / σ²_kd is expanded as z²·p − 2 z·(μ p) + μ²·p with precisions p = 1/σ², so
    no (B, K, D) tensor is formed and no product of D variances is ever taken (the log-det is
    the sum of log-variances). Agrees with TFP's ``MultivariateNormalDiag.log_prob`` (tests).
    """
    precisions = 1.0 / variances
    mahalanobis = (
        tf.einsum("bd,kd->bk", tf.square(z), precisions)
        - 2.0 * tf.einsum("bd,kd->bk", z, means * precisions)
        + tf.reduce_sum(tf.square(means) * precisions, axis=-1)[None, :]
    )
    # Rounding can leave tiny negatives when z == μ_k exactly; a distance cannot be negative.
    mahalanobis = tf.maximum(mahalanobis, 0.0)
    log_det = tf.reduce_sum(tf.math.log(variances), axis=-1)
    dims = tf.cast(tf.shape(z)[-1], z.dtype)
    return -0.5 * (mahalanobis + log_det[None, :] + dims * LOG_2PI), mahalanobis, log_det


class GaussianMixturePrior(keras.layers.Layer):
    """Learnable per-class diagonal Gaussians: the prior p(z_s | c) of Lr-LiVAE (Eq. 6).

    Args:
        num_classes: C.
        dim: D, the size of z_s.
        min_variance: floor added to every variance (σ² = floor + softplus(raw)).
        init_variance: initial σ² of every component.
        mean_init_stddev: the means start at N(0, mean_init_stddev²) draws (seeded), as the GM
            loss's authors initialise them randomly; well separated means speed up L_cls.
        seed: initialiser seed.

    The layer's ``call`` returns the means and variances (tensors); distributions are built where
    they are used (losses, sampling), from :func:`mixture` and :func:`diagonal_normal`.
    """

    def __init__(self, num_classes, dim, min_variance=1e-3, init_variance=1.0,
                 mean_init_stddev=1.0, seed=0, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if not 0 < min_variance < init_variance:
            raise ValueError(
                f"need 0 < min_variance < init_variance, got {min_variance}, {init_variance}")
        self.num_classes = int(num_classes)
        self.dim = int(dim)
        self.min_variance = float(min_variance)
        self.init_variance = float(init_variance)
        self.mean_init_stddev = float(mean_init_stddev)
        self.seed = int(seed)
        # softplus^{-1}(init − floor), so that the initial variance is exactly init_variance.
        excess = self.init_variance - self.min_variance
        raw_init = math.log(math.expm1(excess))
        self.means = self.add_weight(
            name="means", shape=(self.num_classes, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=self.mean_init_stddev, seed=seed))
        self.raw_variances = self.add_weight(
            name="raw_variances", shape=(self.num_classes, self.dim),
            initializer=keras.initializers.Constant(raw_init))

    def variances(self):
        return self.min_variance + tf.nn.softplus(self.raw_variances)

    def call(self, inputs=None):
        return self.means, self.variances()

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, dim=self.dim, min_variance=self.min_variance,
                      init_variance=self.init_variance, mean_init_stddev=self.mean_init_stddev,
                      seed=self.seed)
        return config
