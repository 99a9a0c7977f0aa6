"""Losses as pure, documented functions.

Conventions (see docs/design.md): every loss returns one scalar; per-sample terms are **summed
over their dimensions**, then **averaged over the batch**; loss weights (λ) are applied by the
model, not here. Adversary losses take logits. The prior's terms take the TFP distributions that
:class:`keras_lsvae.distributions.GaussianMixturePrior` hands out; the KL of Eq. 3 builds its
own. Equation numbers are those of Lr-LiVAE (Zheng & Sun, CVPR 2019) unless stated; "paper B"
is CSVAE (Klys, Snell & Zemel, NeurIPS 2018), whose losses are the ``*_attribute*`` and
``subspace`` functions below.

Paper B's objective in these terms (§4.1, Eq. 5): m1(x, y) = E_q[−log p_θ(x|w, z)] +
KL(q(w|x,y) ‖ p(w|y)) + KL(q(z|x) ‖ p(z)) − log p(y), where

* −log p_θ(x|w, z) is :func:`reconstruction_loss`, ½‖x − x'‖²: the negative log-density of a
  unit-variance Gaussian p(x|w, z) = N(x'(w, z), I) up to the constant (D/2) log 2π (§4.2 has a
  learned σ_θ; a fixed one is the usual choice and the reference implementation's, see
  keras_lsvae/models/csvae.py);
* KL(q(w|x,y) ‖ p(w|y)) is :func:`kl_subspace_prior`, KL(q(z|x) ‖ p(z)) :func:`kl_standard_normal`;
* −log p(y) does not depend on any parameter (the prior over labels is fixed): it is dropped.

M2 = E[Σ_y q_δ(y|z) log q_δ(y|z)] is :func:`attribute_negative_entropy` and the adversary's N
(the cross-entropy of q_δ(y|z) against the label) :func:`attribute_cross_entropy`.
"""

from __future__ import annotations

import tensorflow as tf

from keras_lsvae import distributions as dists


def _batch_mean(per_sample):
    return tf.reduce_mean(per_sample)


def reconstruction_loss(images, reconstructions):
    """L_rec = ½ ‖x − x'‖²₂ (Algorithm 1, line 20), summed over pixels, mean over the batch."""
    axes = tf.range(1, tf.rank(images))
    return _batch_mean(0.5 * tf.reduce_sum(tf.square(images - reconstructions), axis=axes))


def kl_standard_normal(mean, log_var):
    """L_kl = D_KL[N(μ, Σ) ‖ N(0, I)] (Eq. 3), closed form through TFP, summed over dims.

    Equals ½ Σ_d (σ²_d + μ²_d − 1 − log σ²_d).
    """
    posterior = dists.diagonal_normal(mean, tf.exp(log_var))
    return _batch_mean(posterior.kl_divergence(dists.standard_normal_like(mean)))


def gm_logits(z_s, components, labels=None, margin=0.0):
    """Logits of the Gaussian-mixture posterior q(c | z_s) (Eq. 8 numerator), shape (B, C).

    logit_k = log N(z_s; μ_k, Σ_k) + log p(k), with uniform p(k) dropped (it cancels):
    ``components.log_prob(z_s[:, None, :])`` of the prior's batched components (batch shape
    [C], :meth:`keras_lsvae.distributions.GaussianMixturePrior.components`). TFP evaluates it in
    log space from the standardised residuals (z − μ_k)/σ_k and Σ log σ_k, so no product of D
    variances is taken and nothing under/overflows in 512 dimensions (tests). With a margin
    α > 0 (see :func:`_with_margin`) the logits are those of training's harder problem.
    """
    logits = components.log_prob(z_s[:, None, :])
    if labels is not None and margin:
        logits = _with_margin(logits, z_s, components, labels, margin)
    return logits


def _with_margin(logits, z_s, components, labels, margin):
    """The GM loss's margin [39] (Wan et al. 2018): the true class's Mahalanobis term d_y is
    enlarged to (1 + α)·d_y, i.e. its logit lowered by ½ α d_y; only (B, D) work, one residual
    per sample against its own class."""
    residual = (z_s - tf.gather(components.mean(), labels)) / tf.gather(components.stddev(),
                                                                          labels)
    mahalanobis = tf.reduce_sum(tf.square(residual), axis=-1)
    one_hot = tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)
    return logits - 0.5 * margin * mahalanobis[:, None] * one_hot


def gm_classification_loss(z_s, labels, components, margin=0.0):
    """L_cls (Eq. 8) = −log [N(ẑ_s|μ_y,Σ_y) p(y) / Σ_k N(ẑ_s|μ_k,Σ_k) p(k)], batch mean.

    Sparse softmax cross-entropy on :func:`gm_logits`, i.e. fully in log space: finite for
    512-dimensional z_s where the densities themselves under/overflow.
    """
    logits = gm_logits(z_s, components, labels=labels, margin=margin)
    return _batch_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def likelihood_loss(z_s, prior):
    """L_lkd = −log N(ẑ_s; μ, Σ) (Eq. 7), with the full Gaussian constant, batch mean.

    ``prior`` is a Gaussian over z_s whose batch shape broadcasts against (B,): the component of
    each sample's label (``GaussianMixturePrior.components(labels)``), or for unlabeled data the
    moment-matched N(μ_t, Σ_t) of Eq. 11 (§3.6, ``GaussianMixturePrior.moment_matched()``).
    """
    return _batch_mean(-prior.log_prob(z_s))


def gm_loss(z_s, labels, components, lkd_weight=0.1, margin=0.0):
    """L_GM = L_cls + λ_lkd L_lkd (Eq. 9) from the batched components. Returns
    (L_GM, L_cls, L_lkd, logits), ``logits`` being q(c | z_s)'s without the margin.

    L_lkd = −log N(ẑ_s; μ_y, Σ_y) is the label's entry of the (B, C) log-densities that L_cls
    needs anyway, so both come from one ``log_prob``.
    """
    log_probs = components.log_prob(z_s[:, None, :])
    lkd = _batch_mean(-tf.gather(log_probs, labels, axis=1, batch_dims=1))
    logits = _with_margin(log_probs, z_s, components, labels, margin) if margin else log_probs
    cls = _batch_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                                      logits=logits))
    return cls + lkd_weight * lkd, cls, lkd, log_probs


def adversarial_classifier_loss(logits, labels):
    """L_C^adv (Eq. 4): cross-entropy of the latent classifier q_ω(c|z_u) against the label."""
    return _batch_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def adversarial_encoder_loss(logits):
    """L_E^adv (Eq. 5) = −Σ_c (1/C) log q_ω(c|z_u): cross-entropy against the uniform target."""
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    return _batch_mean(-tf.reduce_mean(log_probs, axis=-1))


def discriminator_loss(real_logits, fake_logits_list, kind="nonsaturating"):
    """L_D^adv (Eq. 10 / Algorithm 1 line 23) from logits of D(x, c).

    ``nonsaturating``: −log D(x) − Σ_fakes log(1 − D(x')) = softplus(−l_real) + Σ softplus(l_fake).
    ``hinge`` (as the authors' code used): relu(1 − l_real) + Σ relu(1 + l_fake).
    ``fake_logits_list`` holds one tensor per fake source (reconstructions x'_f, samples x'_p).
    """
    if kind == "nonsaturating":
        loss = _batch_mean(tf.nn.softplus(-real_logits))
        for fake in fake_logits_list:
            loss += _batch_mean(tf.nn.softplus(fake))
    elif kind == "hinge":
        loss = _batch_mean(tf.nn.relu(1.0 - real_logits))
        for fake in fake_logits_list:
            loss += _batch_mean(tf.nn.relu(1.0 + fake))
    else:
        raise ValueError(f"unknown GAN loss {kind!r}; known: nonsaturating, hinge")
    return loss


def generator_loss(fake_logits_list, kind="nonsaturating"):
    """L_GD^adv (Eq. 10, generator side / Algorithm 1 line 24) from logits of D on fakes.

    ``nonsaturating``: −Σ log D(x') = Σ softplus(−l_fake). ``hinge``: −Σ l_fake.
    """
    if kind not in ("nonsaturating", "hinge"):
        raise ValueError(f"unknown GAN loss {kind!r}; known: nonsaturating, hinge")
    loss = 0.0
    for fake in fake_logits_list:
        loss += _batch_mean(tf.nn.softplus(-fake) if kind == "nonsaturating" else -fake)
    return loss


GAN_LOSSES = ("nonsaturating", "hinge")


def hsic(features, labels_one_hot, bandwidth=None, linear_weight=0.0, bandwidth_scales=(1.0,)):
    """Biased HSIC estimate (Gretton et al. 2005) between ``features`` (B, D) and labels (B, C).

    HSIC = tr(K H L H) / (B − 1)², with a Gaussian kernel K on the features (bandwidth: the
    median pairwise distance unless given, gradients stopped through it) plus, if
    ``linear_weight`` > 0, that weight times the linear kernel X Xᵀ / D (whose HSIC is the
    squared cross-covariance of features and labels: the dependence a linear probe reads), and
    the linear kernel L = Y Yᵀ on one-hot labels; H = I − 11ᵀ/B centres them.
    ``bandwidth_scales`` (s_1, ..., s_n) replaces the Gaussian kernel by the mean of n Gaussian
    kernels with squared bandwidths s_i times the median's (default: the median's alone). Zero iff (in the
    population limit) features and labels are independent, so it measures the non-linear label
    dependence that a k-NN or MLP probe finds, without an adversary to train. Not in either
    paper: an optional extra term for Lr-LiVAE's z_u (``hsic_weight``).
    """
    features = tf.convert_to_tensor(features)
    labels_one_hot = tf.cast(labels_one_hot, features.dtype)
    batch = tf.cast(tf.shape(features)[0], features.dtype)
    sq_norms = tf.reduce_sum(tf.square(features), axis=-1)
    sq_dists = tf.maximum(
        sq_norms[:, None] + sq_norms[None, :] - 2.0 * tf.matmul(features, features,
                                                                transpose_b=True), 0.0)
    if bandwidth is None:
        median = tf.stop_gradient(
            tf.sort(tf.reshape(sq_dists, [-1]))[tf.size(sq_dists) // 2])
        scale = tf.maximum(median, 1e-6)
    else:
        scale = tf.cast(2.0 * bandwidth**2, features.dtype)
    # Several bandwidths (the median one times each of ``bandwidth_scales``, kernels averaged)
    # see dependence at several distances: a wide kernel the global structure a linear probe
    # reads, narrow ones the local structure a k-NN probe reads.
    kernel = tf.add_n([tf.exp(-sq_dists / (scale * float(s))) for s in bandwidth_scales]) / float(
        len(bandwidth_scales))
    if linear_weight:
        dims = tf.cast(tf.shape(features)[-1], features.dtype)
        kernel += linear_weight * tf.matmul(features, features, transpose_b=True) / dims
    label_kernel = tf.matmul(labels_one_hot, labels_one_hot, transpose_b=True)
    centred = kernel - tf.reduce_mean(kernel, 0, keepdims=True)
    centred = centred - tf.reduce_mean(centred, 1, keepdims=True)
    return tf.reduce_sum(centred * label_kernel) / tf.square(batch - 1.0)


MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def mmd_to_standard_normal(codes, prior_codes, scales=MMD_SCALES):
    """Unbiased MMD² between a batch of codes (B, D) and draws from N(0, I) of the same shape.

    The aggregate-posterior penalty of InfoVAE (Zhao et al. 2017) / WAE-MMD (Tolstikhin et al.
    2018) with their inverse multiquadratic kernel k(x, y) = Σ_s C_s / (C_s + ‖x − y‖²),
    C_s = 2·D·s over ``scales``: its heavy tails keep a gradient when the codes sit far from
    the prior, where a Gaussian kernel's vanishes. Zero iff the two distributions are equal (in
    the population limit). Not in either paper: Lr-LiVAE samples z_u ~ N(0, I) to generate
    (§3.5), so q(z_u) = E_x q(z_u|x) must cover N(0, I); the per-example KL of Eq. 3 at a small
    weight does not pin its mean (measured: per-dimension offsets of 1–5 posterior standard
    deviations on digits), and this term does. ``prior_codes`` is passed in so the caller owns
    the random draw (a seeded generator inside the model).
    """
    codes = tf.convert_to_tensor(codes)
    prior_codes = tf.cast(prior_codes, codes.dtype)
    batch = tf.cast(tf.shape(codes)[0], codes.dtype)
    dims = tf.cast(tf.shape(codes)[-1], codes.dtype)

    def kernel(a, b):
        sq = (tf.reduce_sum(tf.square(a), -1)[:, None] + tf.reduce_sum(tf.square(b), -1)[None]
              - 2.0 * tf.matmul(a, b, transpose_b=True))
        sq = tf.maximum(sq, 0.0)
        return tf.add_n([2.0 * dims * s / (2.0 * dims * s + sq) for s in scales])

    off_diagonal = 1.0 - tf.eye(tf.shape(codes)[0], dtype=codes.dtype)
    within = lambda k: tf.reduce_sum(k * off_diagonal) / (batch * (batch - 1.0))  # noqa: E731
    return (within(kernel(codes, codes)) + within(kernel(prior_codes, prior_codes))
            - 2.0 * tf.reduce_mean(kernel(codes, prior_codes)))


# ----------------------------------------------------------------------------- paper B (CSVAE)
def kl_subspace_prior(w_mean, w_log_var, prior):
    """KL(q_φ2(w|x, y) ‖ p(w|y)) of paper B's m1 (§4.1, Eq. 5), summed over the A·w_dim
    dimensions of W, mean over the batch.

    q is N(μ_φ2, diag(exp(log σ²))) and ``prior`` the TFP distribution of p(w|y) for the same
    examples (:meth:`keras_lsvae.distributions.SubspacePrior.distribution`); TFP's closed form
    per dimension is log(σ_p/σ_q) + (σ_q² + (μ_q − μ_p)²)/(2σ_p²) − ½.
    """
    posterior = dists.diagonal_normal_from_log_var(w_mean, w_log_var)
    return _batch_mean(posterior.kl_divergence(prior))


def _bernoulli(logits):
    return dists.tfd.Independent(dists.tfd.Bernoulli(logits=logits),
                                 reinterpreted_batch_ndims=1)


def attribute_entropy(logits):
    """H(q_δ(y|z)) for A independent binary attributes, from (B, A) logits: Σ_i H(Bern(π_i)),
    π_i = sigmoid(logit_i), summed over attributes, mean over the batch (TFP's Bernoulli
    entropy, stable in logit space). Maximal, A·log 2, when every π_i = ½.

    How §4.2's q_δ(y|z) = Cat(y|π_δ(z)) maps to attribute vectors: y ∈ {0, 1}^A (§4.1) is a
    categorical over 2^A joint values; this library factorises it into A independent
    Bernoullis (the adversary outputs A logits), whose joint entropy is the sum of the A
    Bernoulli entropies. For A = 1 that is exactly the paper's two-way categorical; for
    one-hot class data fed as A one-hot attributes it is a product of "is it class k?"
    questions rather than one K-way softmax (the reference implementation does the same, with
    a sigmoid per label)."""
    return _batch_mean(_bernoulli(logits).entropy())


def attribute_negative_entropy(logits):
    """M2 of paper B §4.1 for one batch: E[Σ_y q_δ(y|z) log q_δ(y|z)] = −:func:`attribute_entropy`.

    The encoder q_φ1(z|x) minimises it (β2·M2 in its objective), i.e. maximises the adversary's
    entropy H(Y|Z): it is minimal, −A·log 2, when the adversary outputs ½ for every
    attribute, and 0 for a certain adversary."""
    return -attribute_entropy(logits)


def attribute_cross_entropy(logits, attributes):
    """Σ_i −[y_i log π_i + (1 − y_i) log(1 − π_i)] from (B, A) logits, summed over attributes,
    mean over the batch: the adversary's N of paper B §4.1 (written there as E[q_δ(y|z)]; its
    negative log-likelihood is what q_δ is trained on, as in the reference implementation's
    BCE) and the loss L of Eq. 3 (CondVAE-info's r_ψ)."""
    attributes = tf.cast(attributes, logits.dtype)
    per_attribute = tf.nn.sigmoid_cross_entropy_with_logits(labels=attributes, logits=logits)
    return _batch_mean(tf.reduce_sum(per_attribute, axis=-1))


def information_encoder_loss(logits, attributes):
    """The encoder's side of paper B Eq. 3, max_φ min_ψ L(r_ψ(q_φ(z|x)), y): the encoder
    minimises −L, the negative of :func:`attribute_cross_entropy`. (Unbounded below: an
    encoder can also raise L by making r_ψ confidently wrong, which still carries label
    information; CondVAEInfo's ``info_loss="entropy"`` offers the bounded M2 form instead.)"""
    return -attribute_cross_entropy(logits, attributes)
