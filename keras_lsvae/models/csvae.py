"""CSVAE: "Learning Latent Subspaces in Variational Autoencoders" (Klys, Snell & Zemel, NeurIPS
2018, "paper B"). Section and equation numbers below refer to that paper.

Model (§4.1–4.2, Fig. 1c): latent space Z × W, W = W_1 × ... × W_A, one ``w_dim``-dimensional
subspace per binary attribute (w = concat(w_1, ..., w_A)). Networks, all from
:mod:`keras_lsvae.networks` (the baselines use the same builders):

* encoder_z, q_φ1(z|x) = N(μ_φ1(x), σ²_φ1(x));
* encoder_w, q_φ2(w|x, y) = N(μ_φ2(x, y), σ²_φ2(x, y)) (y concatenated to the trunk's features);
* decoder, p_θ(x|w, z) on concat(z, w), a unit-variance Gaussian: −log p = ½‖x − x'‖² + const
  (§4.2 has a learned σ_θ; the reference implementation, like this one, uses a fixed one);
* adversary, q_δ(y|z): A Bernoulli logits (§4.2's Cat(y|π_δ(z)) for attribute vectors: see
  :func:`keras_lsvae.losses.attribute_entropy`);
* the fixed prior p(w|y) (:class:`keras_lsvae.distributions.SubspacePrior`): p(w_i|y_i = 1) =
  N(μ1, σ1), p(w_i|y_i = 0) = N(μ2, σ2), defaults μ1 = 0, σ1 = 0.1, μ2 = 3, σ2 = 1 (§4.2), σ read
  as a standard deviation (``w_prior_scale="std"``, variance 0.01) or as a variance
  (``"variance"``).

Objective (§4.1): min β1·M1 + β2·M2 over θ, φ1, φ2 and min N over δ, with
M1 = E[m1], m1 = rec_weight·½‖x − x'‖² + kl_w_weight·KL(q(w|x,y) ‖ p(w|y))
+ kl_z_weight·KL(q(z|x) ‖ N(0, I)) (Eq. 5; its −log p(y) is constant and dropped),
M2 = E[Σ_y q_δ(y|z) log q_δ(y|z)] (the negative entropy of the adversary), and
N = adversary_weight·cross-entropy(q_δ(y|z), y). One ``train_step`` (GradientTape blocks, each
optimizer on exactly its own variables; the terms are declared once in
:meth:`CSVAE.compute_losses`, ``LabelSplitModel.apply_terms`` derives the updates):

* ``encoder_z`` (φ1), ``encoder_w`` (φ2), ``decoder`` (θ): β1·M1 + β2·M2 [+ the ``hsic`` and
  ``mmd`` extensions' terms on z, keras_lsvae/models/extensions.py]. M2 reaches φ1 through
  z only; it does not depend on φ2 or θ.
* ``adversary`` (δ): N on the **detached** z (so N never moves an encoder); the
  ``adversary_boost`` extension adds updates per step and a higher rate. M2 never moves δ.

z and w are reparameterised posterior samples in training, posterior means in evaluation.

Defaults of the weights and where they come from. Paper B gives no values. The public PyTorch
implementation alexlyzhov/latent-subspaces, file ``csvae_toy/definitions.py`` (class ``CSVAE``,
``calculate_loss``), uses ``ELBO = 20 * x_recon + 0.2 * z_kl + 1 * w_kl + 10 * y_pred_negentropy``
with the adversary's BCE (``y_recon``) at weight 1, "optimized separately". Here:

* rec_weight = 40/N_values: the reference's 20 on ``nn.MSELoss()`` (the per-value **mean** of
  (x − x')²) is 40/N_values on this library's ½Σ(x − x')² (N_values = H·W·C, or D for vectors);
  an explicit ``rec_weight`` overrides it.
* kl_z_weight = 0.2, kl_w_weight = 1, β2 = 10 (M2), adversary_weight = 1 (N), β1 = 1: the
  reference's numbers. Differences in reduction: the reference's KLs are those of one
  Gaussian over the flattened batch, i.e. **summed** over the batch, where this library
  averages over it (losses.py convention), so at batch size B its KL terms weigh B × ours;
  its negative entropy and BCE are means over batch **and attributes**, ours sum over the
  attributes (identical for A = 1). The reference also learns p(w|y) with a network
  (``encoder_y_to_w``) instead of §4.2's fixed prior; this library keeps the paper's prior.
* Adam at 5e-4 with PyTorch's default betas (0.9, 0.999): ``AttributeModel.compile``, after
  the reference's csvae_toy/train.py (``Adam(lr=1e-3/2)``).

Attribute manipulation (§4.3, G_ij(x, p) = μ_θ(μ_φ1(x), p)): :meth:`CSVAE.manipulate` decodes
z = μ_φ1(x) with a point p ∈ W. With ``w=None``, each subspace i gets the fitted empirical
mean of μ^i_φ2 over the examples with y_i = target_i (§5.4 method 1's p_j,
:meth:`CSVAE.fit_attribute_statistics`), or, before fitting, the prior mean of
p(w_i|y_i = target_i). :meth:`CSVAE.w_grid` (a grid in a 2-D W_i centred on μ2, §4.3),
:meth:`CSVAE.w_principal_directions` (principal components of {μ^i_φ2(x, y) | y_i = 1} for
w_dim > 2, §4.3) and :meth:`CSVAE.manipulate_grid` explore W_i.

Deviations from the paper's text, and how they are resolved:

* §4.2 says "points x with y_i = 1 will be encoded away from the origin in W_i and at 0 in
  W_j for all j ≠ i", and §4.3 sets p_l = 0 for l ≠ j; both contradict §4.2's own priors
  (p(w_i|y_i = 1) = N(0, 0.1): y_i = 1 is the one **at** the origin), which §5.1 confirms ("the
  points labelled 1 mapping near the origin"). This library follows the priors as written
  (and the contract of the training loop): y_i = 1 → N(μ1 = 0, σ1), y_i = 0 → N(μ2 = 3, σ2).
  "p_l = 0" is read as "subspace l at the point of its attribute's *off* value": the fitted
  mean of y_l = 0 (or μ2 = 3 before fitting), **not** the origin, which is the *on* value's
  mean under these priors. The numbers are constructor arguments (mu1, sigma1, mu2, sigma2),
  so the other reading (on = N(3, 1)) is one flag set away, and every manipulation uses the
  fitted/prior point of the requested value, whichever reading is chosen.
* §4.3's grid is "centred at μ2": :meth:`w_grid` centres on μ2 (the y = 0 prior mean under
  the priors as written) by default, with ``center`` to centre it elsewhere (e.g. on the
  fitted y = 1 mean).

Log keys (stable): loss (β1·M1 + β2·M2), m1, m2, rec, kl_z, kl_w, adversary (N, unweighted),
adversary_accuracy; hsic and mmd when those extensions are on.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_lsvae import distributions as dists
from keras_lsvae import losses as L
from keras_lsvae import networks
from keras_lsvae.layers import GaussianSample
from keras_lsvae.models import capabilities as caps
from keras_lsvae.models.base import AttributeModel, Terms
from keras_lsvae.models.condvae_info import attribute_accuracy
from keras_lsvae.models.vae import default_rec_weight
from keras_lsvae.registry import MODELS


@MODELS.register("csvae")
@keras.saving.register_keras_serializable(package="keras_lsvae")
class CSVAE(caps.Generates, caps.Encodes, caps.Reconstructs,
            caps.ManipulatesAttributes, caps.FitsAttributeStatistics, caps.WGrids,
            AttributeModel):
    """CSVAE (module docstring). Arguments:

    input_shape, num_classes (= A, the number of binary attributes), seed: see
    :class:`keras_lsvae.models.base.LabelSplitModel`.
    z_dim: size of z. w_dim: size of each subspace W_i (2 in the paper).
    width, mlp_units, condition_units: network sizes (:mod:`keras_lsvae.networks`).
    adversary_units: hidden layers of q_δ(y|z).
    beta1, beta2: weights of M1 and M2 (§4.1). rec_weight (None: 40/N_values), kl_z_weight,
    kl_w_weight: the weights inside M1. adversary_weight: weight of N.
    mu1, sigma1, mu2, sigma2, w_prior_scale: the prior p(w|y) (§4.2,
    :class:`keras_lsvae.distributions.SubspacePrior`).
    extensions: ``hsic``, ``mmd`` (on z) and ``adversary_boost``
    (keras_lsvae/models/extensions.py); none by default: the paper's model.

    Public methods: ``encode(images, attributes=None, mode="mode", batch_size=256)``,
    ``decode(z, w)``, ``reconstruct(images, attributes)``, ``generate(attributes, seed=None)``,
    ``fit_attribute_statistics(images, attributes, batch_size=256)``,
    ``attribute_points(target_attributes)``, ``manipulate(images, target_attributes, w=None)``,
    ``w_grid(attribute, num=7, span=None, center=None)``,
    ``w_principal_directions(images, attributes, attribute, num=7, span=2.0,
    num_components=2)``, ``manipulate_grid(images, attribute, points, target_attributes=None)``.
    """

    OBJECTIVES = ("encoder_z", "encoder_w", "decoder", "adversary")
    LOG_KEYS = ("loss", "m1", "m2", "rec", "kl_z", "kl_w", "adversary", "adversary_accuracy",
                "hsic", "mmd")
    needs_attributes = True
    EXTENSION_SITES = ("independence", "adversary")

    def __init__(self, input_shape, num_classes, z_dim=16, w_dim=2, width=32,
                 mlp_units=networks.DEFAULT_MLP_UNITS, condition_units=128,
                 adversary_units=(64, 64), beta1=1.0, beta2=10.0, rec_weight=None,
                 kl_z_weight=0.2, kl_w_weight=1.0, adversary_weight=1.0, mu1=0.0, sigma1=0.1,
                 mu2=3.0, sigma2=1.0, w_prior_scale="std", seed=0, name="csvae", **kwargs):
        super().__init__(input_shape, num_classes, seed=seed, name=name, **kwargs)
        self.z_dim = self.check_positive("z_dim", z_dim)
        self.w_dim = self.check_positive("w_dim", w_dim)
        self.width = self.check_positive("width", width)
        self.mlp_units = self.check_sizes("mlp_units", mlp_units, allow_empty=True)
        self.condition_units = self.check_positive("condition_units", condition_units)
        self.adversary_units = self.check_sizes("adversary_units", adversary_units,
                                                allow_empty=True)
        self.beta1 = self.check_number("beta1", beta1)
        self.beta2 = self.check_number("beta2", beta2)
        self._rec_weight_arg = rec_weight
        self.rec_weight = self.check_number(
            "rec_weight", default_rec_weight(self.example_shape) if rec_weight is None
            else rec_weight)
        self.kl_z_weight = self.check_number("kl_z_weight", kl_z_weight)
        self.kl_w_weight = self.check_number("kl_w_weight", kl_w_weight)
        self.adversary_weight = self.check_number("adversary_weight", adversary_weight)
        for key, value in dict(mu1=mu1, mu2=mu2).items():
            self.check_number(key, value)
        for key, value in dict(sigma1=sigma1, sigma2=sigma2).items():
            self.check_positive(key, value, integer=False)
        self.prior = dists.SubspacePrior(self.num_attributes, self.w_dim, mu1=mu1,
                                         sigma1=sigma1, mu2=mu2, sigma2=sigma2,
                                         scale=w_prior_scale)
        shape, attributes = self.example_shape, self.num_attributes
        heads = lambda dim: {"mean": dim, "log_var": dim}  # noqa: E731
        self.encoder_z = networks.build_encoder(shape, heads(self.z_dim), width=self.width,
                                                mlp_units=self.mlp_units, name="encoder_z")
        self.encoder_w = networks.build_encoder(shape, heads(self.total_w_dim), width=self.width,
                                                mlp_units=self.mlp_units,
                                                condition_dim=attributes,
                                                condition_units=self.condition_units,
                                                name="encoder_w")
        self.decoder = networks.build_decoder([self.z_dim, self.total_w_dim], shape,
                                              width=self.width, mlp_units=self.mlp_units,
                                              name="decoder")
        self.adversary = networks.build_classifier(self.z_dim, attributes,
                                                   hidden=self.adversary_units,
                                                   input_name="z", name="adversary")
        self.z_sampler = GaussianSample(seed=self.seed, name="z_sampler")
        self.w_sampler = GaussianSample(seed=self.seed + 2, name="w_sampler")
        self.sample_seed_generator = keras.random.SeedGenerator(self.seed + 1)
        # Fitted per-attribute means of μ^i_φ2 for y_i = 0 and 1 (§5.4 method 1), and counts.
        self.w_statistics = self.add_weight(name="w_statistics",
                                            shape=(2, attributes, self.w_dim),
                                            initializer="zeros", trainable=False)
        self.w_statistics_counts = self.add_weight(name="w_statistics_counts",
                                                   shape=(2, attributes), initializer="zeros",
                                                   trainable=False)
        self.init_trackers(self.LOG_KEYS)
        self.built = True

    @property
    def total_w_dim(self):
        return self.num_attributes * self.w_dim

    # ------------------------------------------------------------------ variables & optimizers
    def objective_variables(self):
        return {"encoder_z": self.encoder_z.trainable_variables,
                "encoder_w": self.encoder_w.trainable_variables,
                "decoder": self.decoder.trainable_variables,
                "adversary": self.adversary.trainable_variables}

    def adversary_site(self):
        """The adversary q_δ(y|z) for the ``adversary`` extensions."""
        return {"objective": "adversary", "network": self.adversary,
                "loss": lambda logits, y: self.adversary_weight
                * L.attribute_cross_entropy(logits, y)}

    # ---------------------------------------------------------------------------- losses
    def compute_losses(self, images, attributes, training=True, tape=None):
        """M1, M2 and N for one batch (§4.1) as :class:`Terms` (module docstring): M1 in θ's,
        φ1's and φ2's objectives at β1; M2 in φ1's at β2 through a cut of z (its adversary
        pass never moves δ); N in δ's, on the detached z."""
        terms = Terms(tape)
        mode = "sample" if training else "mode"
        q_z = self.encoder_z(images, training=training)
        q_w = self.encoder_w([images, attributes], training=training)
        z = self.z_sampler(q_z["mean"], q_z["log_var"], mode=mode)
        w = self.w_sampler(q_w["mean"], q_w["log_var"], mode=mode)
        reconstructions = self.decoder([z, w], training=training)
        rec = L.reconstruction_loss(images, reconstructions)
        kl_z = L.kl_standard_normal(q_z["mean"], q_z["log_var"])
        kl_w = L.kl_subspace_prior(q_w["mean"], q_w["log_var"],
                                   self.prior.distribution(attributes))
        m1 = terms.add("m1", self.rec_weight * rec + self.kl_w_weight * kl_w
                       + self.kl_z_weight * kl_z,
                       {"encoder_z": self.beta1, "encoder_w": self.beta1, "decoder": self.beta1})
        z_in = terms.cut(z)
        m2 = terms.add("m2", L.attribute_negative_entropy(self.adversary(z_in,
                                                                         training=training)),
                       {"encoder_z": self.beta2}, via={"encoder_z": [z_in]})
        terms.log(loss=self.beta1 * m1 + self.beta2 * m2, rec=rec, kl_z=kl_z, kl_w=kl_w)
        self.extension_terms("independence", terms, objective="encoder_z", means=q_z["mean"],
                             codes=z, labels=attributes, training=training)
        detached_logits = self.adversary(tf.stop_gradient(z), training=training)
        terms.add("adversary", L.attribute_cross_entropy(detached_logits, attributes),
                  {"adversary": self.adversary_weight})
        terms.log(adversary_accuracy=attribute_accuracy(detached_logits, attributes))
        terms.adversary_codes = z
        return terms

    # ---------------------------------------------------------------------- inference API
    def _reconstruct(self, images, attributes, training):
        z = self.encoder_z(images, training=training)["mean"]
        w = self.encoder_w([images, attributes], training=training)["mean"]
        return self.decoder([z, w], training=training)

    def _encode(self, images, attributes, mode):
        q_z = self.encoder_z(images, training=False)
        codes = {"z": self.z_sampler(q_z["mean"], q_z["log_var"], mode=mode),
                 "z_mean": q_z["mean"], "z_log_var": q_z["log_var"]}
        if attributes is not None:
            q_w = self.encoder_w([images, attributes], training=False)
            codes.update(w=self.w_sampler(q_w["mean"], q_w["log_var"], mode=mode),
                         w_mean=q_w["mean"], w_log_var=q_w["log_var"])
        return codes

    def encode(self, images, attributes=None, mode="mode", batch_size=256):
        """{"z", "z_mean", "z_log_var"} of q_φ1(z|x) and, given attributes, {"w", "w_mean",
        "w_log_var"} of q_φ2(w|x, y); z, w are the means in mode "mode" (default)."""
        if attributes is None:
            images = self.check_images(images)
            return self.batched(lambda x: self._encode(x, None, mode), images,
                                batch_size=batch_size)
        images, attributes = self._check_pair(images, attributes)
        return self.batched(lambda x, y: self._encode(x, y, mode), images, attributes,
                            batch_size=batch_size)

    def decode(self, z, w):
        """x' = μ_θ(z, w) in inference mode; z (N, z_dim), w (N, A·w_dim)."""
        z = self.check_codes(z, self.z_dim, "z")
        w = self.check_codes(w, self.total_w_dim, "w")
        if z.shape[0] != w.shape[0]:
            raise ValueError(f"decode: z and w need the same N, got {z.shape[0]} and "
                             f"{w.shape[0]}")
        return self.batched(lambda a, b: self.decoder([a, b], training=False), z, w)

    def reconstruct(self, images, attributes):
        """μ_θ(μ_φ1(x), μ_φ2(x, y))."""
        codes = self.encode(images, attributes)
        return self.decode(codes["z_mean"], codes["w_mean"])

    def generate(self, attributes, seed=None):
        """Images for each attribute vector: z ~ N(0, I), w_i ~ p(w_i|y_i) (§4.2)."""
        attributes = self.check_attributes(attributes)
        n = int(attributes.shape[0])
        noise = self._normal((n, self.z_dim + self.total_w_dim), seed)
        loc, scale = self.prior.loc_scale(attributes)
        return self.decode(noise[:, :self.z_dim], loc + scale * noise[:, self.z_dim:])

    # --------------------------------------------------------------- attribute manipulation
    def after_training(self, train_examples):
        """Fit the per-attribute statistics that ``manipulate`` uses (paper B §5.4 method 1's
        p_j) on the training examples."""
        self.fit_attribute_statistics(*train_examples())

    def fit_attribute_statistics(self, images, attributes, batch_size=256):
        """Store, for each attribute i and value v ∈ {0, 1}, the mean of μ^i_φ2(x, y) over the
        examples with y_i = v (§5.4 method 1's p_j = E_{S_j}[μ^j_φ2]); saved with the model.
        Returns {"means": (2, A, w_dim), "counts": (2, A)}. A value that no example has keeps
        the prior mean (count 0)."""
        images, attributes = self._check_pair(images, attributes)
        w_mean = self.encode(images, attributes, batch_size=batch_size)["w_mean"].numpy()
        w_mean = w_mean.reshape(-1, self.num_attributes, self.w_dim).astype(np.float64)
        y = attributes.numpy()
        masks = np.stack([1.0 - y, y])  # (2, N, A)
        counts = masks.sum(1)
        sums = np.einsum("vna,nad->vad", masks, w_mean)
        prior = np.array([self.prior.mean_for(0), self.prior.mean_for(1)])[:, None, None]
        means = np.where(counts[..., None] > 0, sums / np.maximum(counts, 1)[..., None],
                         prior * np.ones_like(sums)).astype(np.float32)
        self.w_statistics.assign(means)
        self.w_statistics_counts.assign(counts.astype(np.float32))
        return {"means": tf.constant(means), "counts": tf.constant(counts, tf.float32)}

    def attribute_points(self, target_attributes):
        """(N, A·w_dim): for each row and attribute i, the point of W_i for y_i = target_i:
        the fitted mean where :meth:`fit_attribute_statistics` saw that value, else the prior
        mean of p(w_i|y_i = target_i)."""
        targets = self.check_attributes(target_attributes, "target_attributes").numpy()
        counts = self.w_statistics_counts.numpy()
        fitted = self.w_statistics.numpy()
        points = np.empty(targets.shape + (self.w_dim,), np.float32)
        for value in (0, 1):
            table = np.where(counts[value][:, None] > 0, fitted[value],
                             self.prior.mean_for(value))  # (A, w_dim)
            points = np.where((targets == value)[..., None], table[None], points)
        return tf.constant(points.reshape(len(targets), self.total_w_dim))

    def manipulate(self, images, target_attributes, w=None):
        """§4.3's G_ij(x, p) = μ_θ(μ_φ1(x), p): z from the images alone; p = ``w``
        (N, A·w_dim) if given, else :meth:`attribute_points` of the targets (every subspace
        at the fitted/prior point of its target value; several attributes at once)."""
        images = self.check_images(images)
        if w is None:
            w = self.attribute_points(target_attributes)
            if w.shape[0] != images.shape[0]:
                raise ValueError(f"target_attributes: expected one row per image "
                                 f"({images.shape[0]}), got {w.shape[0]}")
        elif target_attributes is not None:
            self.check_attributes(target_attributes, "target_attributes")
        z = self.encode(images)["z_mean"]
        return self.decode(z, w)

    label_relevant_code = "w"

    def manipulate_attributes(self, images, attributes, target_attributes):
        """The uniform call of ``capabilities.ManipulatesAttributes``: z = μ_φ1(x) does not
        see the source ``attributes``; :meth:`manipulate` with W at the targets' points."""
        return self.manipulate(images, target_attributes)

    def _check_attribute_index(self, attribute):
        if (isinstance(attribute, bool) or not isinstance(attribute, (int, np.integer))
                or not 0 <= attribute < self.num_attributes):
            raise ValueError(f"attribute: expected an index in [0, {self.num_attributes}), "
                             f"got {attribute!r}")
        return int(attribute)

    def w_grid(self, attribute, num=7, span=None, center=None):
        """(num·num, 2) points of a square grid in the 2-D subspace W_attribute (§4.3),
        centred on ``center`` (default μ2, the y = 0 prior mean: see the module docstring),
        ±``span`` per axis (default 3·std of p(w_i|y_i = 0))."""
        self._check_attribute_index(attribute)
        num = self.check_positive("num", num)
        if self.w_dim != 2:
            raise ValueError(f"w_grid needs w_dim = 2, got {self.w_dim}; use "
                             f"w_principal_directions")
        span = (3.0 * self.prior.stddev_for(0) if span is None
                else self.check_number("span", span, minimum=0.0))
        if center is None:
            center = np.full(2, self.prior.mu2)
        else:
            center = self.check_finite(center, "center").astype(np.float64)
            if center.shape not in ((2,), (1, 2)):
                raise ValueError(f"center: expected a point of W_{attribute} (2 values), got "
                                 f"shape {center.shape}")
            center = center.reshape(2)
        ticks = np.linspace(-span, span, num) if num > 1 else np.zeros(1)
        grid = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)
        return tf.constant((grid + center).astype(np.float32))

    def w_principal_directions(self, images, attributes, attribute, num=7, span=2.0,
                               num_components=2):
        """Points of W_attribute along the principal components of {μ^i_φ2(x, y) | y_i = 1}
        (§4.3, for w_dim > 2): mean + Σ_k c_k √λ_k v_k with each c_k on ``num`` values in
        [−span, span]; returns (num^num_components, w_dim)."""
        attribute = self._check_attribute_index(attribute)
        num = self.check_positive("num", num)
        num_components = self.check_positive("num_components", num_components)
        if num_components > self.w_dim:
            raise ValueError(f"num_components must be <= w_dim = {self.w_dim}")
        span = self.check_number("span", span, minimum=0.0)
        images, attributes = self._check_pair(images, attributes)
        selected = attributes.numpy()[:, attribute] == 1
        if selected.sum() < 2:
            raise ValueError(f"need at least 2 examples with attribute {attribute} = 1, got "
                             f"{int(selected.sum())}")
        w_mean = self.encode(images, attributes)["w_mean"].numpy()[selected]
        w_i = w_mean[:, attribute * self.w_dim:(attribute + 1) * self.w_dim].astype(np.float64)
        mean = w_i.mean(0)
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(w_i, rowvar=False).reshape(
            self.w_dim, self.w_dim))
        order = np.argsort(eigenvalues)[::-1][:num_components]
        axes = eigenvectors[:, order] * np.sqrt(np.maximum(eigenvalues[order], 0.0))
        ticks = np.linspace(-span, span, num) if num > 1 else np.zeros(1)
        coefficients = np.stack(np.meshgrid(*[ticks] * num_components, indexing="ij"),
                                -1).reshape(-1, num_components)
        return tf.constant((mean + coefficients @ axes.T).astype(np.float32))

    def manipulate_grid(self, images, attribute, points, target_attributes=None):
        """Decode each image's z with W_attribute set to each of ``points`` (P, w_dim); the
        other subspaces at :meth:`attribute_points` of ``target_attributes`` (default: every
        attribute at its off value 0, §4.3's p_l for l ≠ j, module docstring). Returns
        (N, P, *example_shape)."""
        attribute = self._check_attribute_index(attribute)
        images = self.check_images(images)
        points = self.check_codes(points, self.w_dim, "points")
        n, p = int(images.shape[0]), int(points.shape[0])
        if target_attributes is None:
            target_attributes = np.zeros((n, self.num_attributes), np.float32)
        base = tf.reshape(self.attribute_points(target_attributes),
                          [n, 1, self.num_attributes, self.w_dim])
        if base.shape[0] != n:
            raise ValueError("target_attributes: expected one row per image")
        mask = tf.one_hot(attribute, self.num_attributes)[None, None, :, None]
        w = base * (1.0 - mask) + points[None, :, None, :] * mask
        z = tf.repeat(self.encode(images)["z_mean"], p, axis=0)
        out = self.decode(z, tf.reshape(w, [n * p, self.total_w_dim]))
        return tf.reshape(out, [n, p, *self.example_shape])

    def get_config(self):
        config = super().get_config()
        config.update(z_dim=self.z_dim, w_dim=self.w_dim, width=self.width,
                      mlp_units=list(self.mlp_units), condition_units=self.condition_units,
                      adversary_units=list(self.adversary_units), beta1=self.beta1,
                      beta2=self.beta2, rec_weight=self._rec_weight_arg,
                      kl_z_weight=self.kl_z_weight, kl_w_weight=self.kl_w_weight,
                      adversary_weight=self.adversary_weight, mu1=self.prior.mu1,
                      sigma1=self.prior.sigma1, mu2=self.prior.mu2, sigma2=self.prior.sigma2,
                      w_prior_scale=self.prior.scale)
        return config
