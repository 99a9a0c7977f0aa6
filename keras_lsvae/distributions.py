"""The learnable Gaussian-mixture prior of Lr-LiVAE as TensorFlow Probability distributions.

Lr-LiVAE (Zheng & Sun, CVPR 2019), Eq. 6: p(z_s) = Σ_c p(c) N(z_s; μ_c, Σ_c) with p(c) = 1/C and
diagonal Σ_c. The mixture's parameters live in :class:`GaussianMixturePrior`, a Keras layer whose
weights are the means ``(C, D)`` and an unconstrained ``raw_variances`` ``(C, D)``; it hands out
TFP distributions built from them on every call (so gradients reach the weights):

* :meth:`GaussianMixturePrior.components`: the C class-conditionals p(z_s | c) as **one batched**
  ``tfd.MultivariateNormalDiag`` (batch shape ``[C]``, event ``[D]``), or one per requested
  label (batch shape ``[B]``). Its ``log_prob(z[:, None, :])`` gives the ``(B, C)`` log-densities
  of L_cls / q(c | z_s) (Eq. 8) in log space, its per-label form L_lkd (Eq. 7), and its bijector
  (shift μ_c, scale σ_c) turns standard-normal noise into prior samples (Algorithm 1 line 21).
* :meth:`GaussianMixturePrior.distribution`: the mixture itself, ``tfd.MixtureSameFamily`` with a
  uniform ``tfd.Categorical``: log p(z_s) (inpainting's MAP search) and its moments.
* :meth:`GaussianMixturePrior.moment_matched`: N(μ_t, Σ_t) of Eq. 11, whose μ_t and σ²_t are the
  mixture's ``mean()`` and ``variance()`` (TFP's law of total variance is exactly Eq. 11).

Parameterisation (explicit, since the paper is not): the layer stores **variances**
σ²_c = floor + softplus(raw) (TFP takes their square roots as ``scale_diag``). The floor
(``min_variance``) keeps the log-det term of L_lkd (Eq. 7), which rewards shrinking variances,
from collapsing them to zero; the authors' code handled the same collapse with a separate
learning rate for the variances, which :class:`keras_lsvae.models.LrLiVAE` offers too
(``variance_lr_multiplier``).

CSVAE (Klys, Snell & Zemel, NeurIPS 2018, "paper B") uses a **fixed** subspace prior p(w | y),
:class:`SubspacePrior`, and diagonal Gaussian posteriors q(z|x), q(w|x, y) built by
:func:`diagonal_normal_from_log_var`; every KL is TFP's closed form (``kl_divergence``).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def max_likelihood_variances(z, labels, means, current):
    """Per class c and dimension: σ²_c = mean over the examples of class c of (z − μ_c)², the
    σ² that maximises Σ_i log N(z_i; μ_{y_i}, diag σ²_{y_i}), i.e. minimises L_lkd (Eq. 7),
    with the means μ held fixed (the closed-form M-step of a Gaussian with known mean). Classes
    without examples keep ``current`` (C, D). NumPy in, NumPy out."""
    z, labels = np.asarray(z, np.float64), np.asarray(labels)
    means = np.asarray(means, np.float64)
    variances = np.array(current, np.float64, copy=True)
    for c in np.unique(labels):
        variances[c] = np.mean((z[labels == c] - means[c]) ** 2, axis=0)
    return variances


def diagonal_normal(mean, variance) -> tfd.MultivariateNormalDiag:
    """N(mean, diag(variance)) as a TFP distribution with event shape ``[D]``."""
    return tfd.MultivariateNormalDiag(loc=mean, scale_diag=tf.sqrt(variance))


def diagonal_normal_from_log_var(mean, log_var) -> tfd.MultivariateNormalDiag:
    """N(mean, diag(exp(log_var))): a Gaussian posterior from an encoder's linear heads."""
    return tfd.MultivariateNormalDiag(loc=mean, scale_diag=tf.exp(0.5 * log_var))


def standard_normal_like(mean) -> tfd.MultivariateNormalDiag:
    """N(0, I) with the batch and event shape of ``mean``."""
    return tfd.MultivariateNormalDiag(loc=tf.zeros_like(mean), scale_diag=tf.ones_like(mean))


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

    The distributions (module docstring) are built from the current weights on each call.
    ``stop_gradient=True`` detaches them from the weights, for the places where the prior is
    held fixed (prior samples of the joint stage, the Eq. 11 target of unlabeled data).
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

    def set_variances(self, variances):
        """Sets σ² (C, D) (each ≥ the floor; clipped to just above it) through the raw weights."""
        excess = np.maximum(np.asarray(variances, np.float64) - self.min_variance, 1e-8)
        self.raw_variances.assign(np.log(np.expm1(excess)).astype(np.float32))

    def _parameters(self, stop_gradient):
        means, variances = tf.convert_to_tensor(self.means), self.variances()
        if stop_gradient:
            means, variances = tf.stop_gradient(means), tf.stop_gradient(variances)
        return means, variances

    def components(self, labels=None, stop_gradient=False) -> tfd.MultivariateNormalDiag:
        """p(z_s | c) for every class (batch shape ``[C]``) or, given ``labels`` (B,), the
        component of each label (batch shape ``[B]``)."""
        means, variances = self._parameters(stop_gradient)
        if labels is not None:
            means, variances = tf.gather(means, labels), tf.gather(variances, labels)
        return diagonal_normal(means, variances)

    def distribution(self, stop_gradient=False) -> tfd.MixtureSameFamily:
        """p(z_s) = Σ_c (1/C) N(z_s; μ_c, Σ_c) (Eq. 6)."""
        components = self.components(stop_gradient=stop_gradient)
        uniform = tfd.Categorical(logits=tf.zeros([self.num_classes], components.dtype))
        return tfd.MixtureSameFamily(mixture_distribution=uniform,
                                     components_distribution=components)

    def moment_matched(self, stop_gradient=False) -> tfd.MultivariateNormalDiag:
        """N(μ_t, Σ_t) of Eq. 11: the Gaussian with the mixture's mean and (diagonal)
        variance, μ_t = Σ_c p(c) μ_c, σ²_t = Σ_c p(c) σ²_c + Σ_c p(c) μ_c² − μ_t²."""
        mixture = self.distribution(stop_gradient=stop_gradient)
        return diagonal_normal(mixture.mean(), mixture.variance())

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, dim=self.dim, min_variance=self.min_variance,
                      init_variance=self.init_variance, mean_init_stddev=self.mean_init_stddev,
                      seed=self.seed)
        return config


PRIOR_SCALE_KINDS = ("std", "variance")


class SubspacePrior:
    """The fixed CSVAE prior p(w | y) of paper B §4.2 over W = W_1 × ... × W_A.

    For each attribute i (``num_attributes`` = A) the subspace W_i has ``w_dim`` dimensions and
    p(w_i | y_i = 1) = N(μ1, σ1), p(w_i | y_i = 0) = N(μ2, σ2), isotropic within W_i and
    independent across subspaces, so p(w | y) is one diagonal Gaussian over A·w_dim dims.
    Defaults are the paper's: μ1 = 0, σ1 = 0.1, μ2 = 3, σ2 = 1 (W_i = R², μ1 = (0, 0),
    σ1 = (0.1, 0.1), μ2 = (3, 3), σ2 = (1, 1)).

    ``scale``: how σ1 and σ2 are read. The paper writes N(μ, σ) and uses σ_φ elsewhere for
    the encoders' standard deviations, so ``"std"`` (default) reads 0.1 as a standard
    deviation (variance 0.01); ``"variance"`` reads the numbers as variances (std √0.1 ≈
    0.316). The paper does not say which it meant (DESIGN.md); σ2 = 1 is the same either way.

    Not a Keras layer: it has no weights (the prior is fixed, "γ" of Eq. 4 is not learned
    here). :meth:`distribution` hands out a ``tfd.MultivariateNormalDiag`` with batch shape
    [B] and event shape [A·w_dim] for attribute vectors (B, A) in {0, 1}.
    """

    def __init__(self, num_attributes, w_dim=2, mu1=0.0, sigma1=0.1, mu2=3.0, sigma2=1.0,
                 scale="std"):
        if scale not in PRIOR_SCALE_KINDS:
            raise ValueError(f"scale must be one of {PRIOR_SCALE_KINDS}, got {scale!r}")
        if not (sigma1 > 0 and sigma2 > 0):
            raise ValueError(f"sigma1 and sigma2 must be > 0, got {sigma1}, {sigma2}")
        if int(num_attributes) < 1 or int(w_dim) < 1:
            raise ValueError(f"need num_attributes >= 1 and w_dim >= 1, got {num_attributes}, "
                             f"{w_dim}")
        self.num_attributes, self.w_dim = int(num_attributes), int(w_dim)
        self.mu1, self.sigma1 = float(mu1), float(sigma1)
        self.mu2, self.sigma2 = float(mu2), float(sigma2)
        self.scale = scale

    def _std(self, value):
        return value if self.scale == "std" else math.sqrt(value)

    def mean_for(self, value) -> float:
        """μ1 for y_i = 1, μ2 for y_i = 0 (the same in every dimension of W_i)."""
        return self.mu1 if value else self.mu2

    def stddev_for(self, value) -> float:
        """The standard deviation of p(w_i | y_i = value) per dimension (see ``scale``)."""
        return self._std(self.sigma1 if value else self.sigma2)

    def loc_scale(self, attributes):
        """(B, A·w_dim) means and standard deviations of p(w | y) for (B, A) attributes.

        Each attribute's value is repeated over the w_dim dimensions of its subspace, in the
        order w = concat(w_1, ..., w_A). Real values in [0, 1] interpolate linearly (used only
        by callers that ask for it; training passes {0, 1})."""
        attributes = tf.cast(tf.convert_to_tensor(attributes), tf.float32)
        per_dim = tf.repeat(attributes, self.w_dim, axis=-1)
        loc = per_dim * self.mu1 + (1.0 - per_dim) * self.mu2
        scale = (per_dim * self.stddev_for(1) + (1.0 - per_dim) * self.stddev_for(0))
        return loc, scale

    def distribution(self, attributes) -> tfd.MultivariateNormalDiag:
        """p(w | y) as one diagonal Gaussian per example (event shape [A·w_dim])."""
        loc, scale = self.loc_scale(attributes)
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)

    def get_config(self):
        return dict(mu1=self.mu1, sigma1=self.sigma1, mu2=self.mu2, sigma2=self.sigma2,
                    scale=self.scale)
