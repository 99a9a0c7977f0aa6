"""Label-independence terms shared by the models: one implementation, used by Lr-LiVAE (z_u),
CSVAE (z) and CondVAE-info (z).

None of them is in either paper; each is an optional extra term (weight 0 by default leaves
the published objectives unchanged):

* :func:`hsic_term`: HSIC between the **batch-standardised** posterior means and the labels
  (one-hot classes or {0, 1} attribute vectors), :func:`keras_lsvae.losses.hsic`: the
  non-linear dependence a k-NN/MLP probe reads, without an adversary to train.
* :func:`mmd_term`: MMD between the batch's codes and draws from N(0, I)
  (:func:`keras_lsvae.losses.mmd_to_standard_normal`), so that the aggregate posterior covers
  the prior that generation samples. Training draws from the model's seeded generator;
  evaluation draws from a fixed seed, so it neither advances the generator (the training run's
  random stream) nor varies between calls.
* :func:`extra_adversary_steps`: ``steps − 1`` more updates of an adversary on the same
  detached codes, as GANs train their discriminator k times per generator step.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_lsvae import losses as L
from keras_lsvae.layers import gather_replicas

STANDARDIZE_EPSILON = 1e-6


def hsic_term(means, labels, linear_weight=0.0, bandwidth_scales=(1.0,)):
    """HSIC(standardise(means), labels): ``labels`` (B, K) one-hot or multi-hot, float. A
    statistic of the whole batch: under a strategy, of the global batch (every replica
    computes the same value, :func:`keras_lsvae.layers.gather_replicas`)."""
    means, labels = gather_replicas(means), gather_replicas(labels)
    standardized = (means - tf.reduce_mean(means, 0)) / (
        tf.math.reduce_std(means, 0) + STANDARDIZE_EPSILON)
    return L.hsic(standardized, labels, linear_weight=linear_weight,
                  bandwidth_scales=bandwidth_scales)


def check_bandwidth_scales(scales):
    """``scales`` as a tuple of positive floats, or a ValueError naming the argument."""
    try:
        values = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        raise ValueError(f"hsic_bandwidth_scales must be a sequence of positive numbers, got "
                         f"{scales!r}") from None
    if not values or any(not (v > 0) for v in values):
        raise ValueError(f"hsic_bandwidth_scales must be a non-empty sequence of positive "
                         f"numbers, got {scales!r}")
    return values


def mmd_term(codes, seed_generator, seed, training):
    """MMD²(codes, N(0, I) draws): from ``seed_generator`` when training, else from ``seed``.
    Over the global batch under a strategy (the codes gathered, one draw of the global batch's
    size, identical on every replica: :func:`keras_lsvae.layers.gather_replicas`)."""
    codes = gather_replicas(codes)
    prior_draws = keras.random.normal(tf.shape(codes), dtype=codes.dtype,
                                      seed=seed_generator if training else seed)
    return L.mmd_to_standard_normal(codes, prior_draws)


def extra_adversary_steps(model, objective, classifier, codes, labels, loss_fn, steps):
    """``steps − 1`` further updates of ``objective`` (``model.apply_objective``) on
    ``loss_fn(classifier(codes), labels)``; ``codes`` are detached here."""
    codes = tf.stop_gradient(codes)
    for _ in range(int(steps) - 1):
        with tf.GradientTape() as tape:
            loss = loss_fn(classifier(codes, training=True), labels)
        model.apply_objective(tape, objective, loss)


class IndependenceOptions:
    """Mixin: the constructor arguments and checks of the optional terms above, for models
    whose adversary objective is called ``adversary_objective``.

    ``hsic_weight``, ``hsic_linear_weight``, ``mmd_weight``: the terms' weights in the
    encoder's objective (0 = off). ``hsic_bandwidth_scales``: HSIC's Gaussian kernel as the
    mean of kernels at these multiples of the median squared distance (``losses.hsic``). ``adversary_steps`` (>= 1): adversary updates per step.
    ``adversary_lr_multiplier``: the adversary's learning rate relative to the base rate
    (applied in ``compile``)."""

    adversary_objective = "adversary"

    def init_independence(self, hsic_weight=0.0, hsic_linear_weight=0.0, mmd_weight=0.0,
                          adversary_steps=1, adversary_lr_multiplier=1.0,
                          hsic_bandwidth_scales=(1.0,)):
        if int(adversary_steps) < 1 or int(adversary_steps) != adversary_steps:
            raise ValueError(f"adversary_steps must be >= 1, got {adversary_steps}")
        for name, value in (("hsic_weight", hsic_weight), ("mmd_weight", mmd_weight),
                            ("hsic_linear_weight", hsic_linear_weight)):
            if float(value) < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.check_positive("adversary_lr_multiplier", adversary_lr_multiplier, integer=False)
        self.hsic_weight = float(hsic_weight)
        self.hsic_linear_weight = float(hsic_linear_weight)
        self.hsic_bandwidth_scales = check_bandwidth_scales(hsic_bandwidth_scales)
        self.mmd_weight = float(mmd_weight)
        self.adversary_steps = int(adversary_steps)
        self.adversary_lr_multiplier = float(adversary_lr_multiplier)

    def independence_config(self):
        return dict(hsic_weight=self.hsic_weight, hsic_linear_weight=self.hsic_linear_weight,
                    hsic_bandwidth_scales=list(self.hsic_bandwidth_scales),
                    mmd_weight=self.mmd_weight, adversary_steps=self.adversary_steps,
                    adversary_lr_multiplier=self.adversary_lr_multiplier)

    def independence_terms(self, means, codes, labels, training):
        """(penalty to add to the encoder's objective, log values) for this batch."""
        penalty, logs = 0.0, {}
        if self.hsic_weight > 0:
            logs["hsic"] = hsic_term(means, tf.cast(labels, means.dtype),
                                     self.hsic_linear_weight, self.hsic_bandwidth_scales)
            penalty += self.hsic_weight * logs["hsic"]
        if self.mmd_weight > 0:
            logs["mmd"] = mmd_term(codes, self.sample_seed_generator, self.seed, training)
            penalty += self.mmd_weight * logs["mmd"]
        return penalty, logs
