"""The library's additions to the papers' models, as named extensions.

With no extension a model is its paper's model. Each extension is registered under a name,
validates its own parameters once, and declares the *site* it needs: a point of a model's step
that a model offers by listing it in ``EXTENSION_SITES``. Switching an extension on is the same
from Python and from a flagfile::

    LrLiVAE((32, 32, 1), 10, extensions={"hsic": {"weight": 600.0, "all_groups": True},
                                         "prior_refit": {}})
    --extension=hsic.weight=600.0 --extension=hsic.all_groups=True --extension=prior_refit

Sites and the models that offer them:

==================== ======================================================== ================
site                 what the model hands the extension                       models
==================== ======================================================== ================
``independence``     the label-irrelevant code (posterior means, samples),   lrlivae, csvae,
                     the labels and the encoder objective that owns it        condvae,
                                                                              condvae_info,
                                                                              cvae, cvaegan
``grouped_batches``  Algorithm 1's n_gm extra batches (pooled HSIC)           lrlivae
``adversary``        a latent adversary (objective, network, loss)            lrlivae, csvae,
                                                                              condvae_info
``adversary_input``  what the latent adversary reads                          lrlivae
``gm``               the Gaussian-mixture loss (Eq. 8–9)                      lrlivae
``consistency``      generated and swapped images of the joint step           lrlivae
``prior``            the learned mixture prior after training                 lrlivae
==================== ======================================================== ================

Each extension's measured effect is in docs/lrlivae.md and docs/csvae.md. The old
constructor arguments (``hsic_weight=...``) map as :data:`LEGACY_ARGUMENTS` says; saved models
and flagfiles that use them are translated by :func:`from_legacy`.
"""

from __future__ import annotations

import ast
import logging
from typing import Any, Dict, Mapping, Optional

import keras
import tensorflow as tf

from keras_lsvae import losses as L
from keras_lsvae.layers import gather_replicas, local_rows
from keras_lsvae.registry import Registry

EXTENSIONS: Registry = Registry("extension")
STANDARDIZE_EPSILON = 1e-6


# ------------------------------------------------------------------------- shared terms
def hsic_term(means, labels, linear_weight=0.0, bandwidth_scales=(1.0,)):
    """HSIC(standardise(means), labels) (:func:`keras_lsvae.losses.hsic`): ``labels`` (B, K)
    one-hot or multi-hot, float. A statistic of the whole batch: under a strategy, of the
    global batch (every replica computes the same value,
    :func:`keras_lsvae.layers.gather_replicas`)."""
    means, labels = gather_replicas(means), gather_replicas(labels)
    standardized = (means - tf.reduce_mean(means, 0)) / (
        tf.math.reduce_std(means, 0) + STANDARDIZE_EPSILON)
    return L.hsic(standardized, labels, linear_weight=linear_weight,
                  bandwidth_scales=bandwidth_scales)


def mmd_term(codes, seed_generator, seed, training):
    """MMD²(codes, N(0, I) draws) (:func:`keras_lsvae.losses.mmd_to_standard_normal`): draws
    from ``seed_generator`` when training, else from the fixed ``seed``, so that evaluation
    neither advances the generator (the training run's random stream) nor varies between calls.
    Over the global batch under a strategy."""
    codes = gather_replicas(codes)
    prior_draws = keras.random.normal(tf.shape(codes), dtype=codes.dtype,
                                      seed=seed_generator if training else seed)
    return L.mmd_to_standard_normal(codes, prior_draws)


# ------------------------------------------------------------------------- the base class
class Extension:
    """Base of the extensions: ``PARAMS`` holds each parameter's default; :meth:`check`
    validates them (once, at construction). Hooks do nothing unless overridden."""

    name = ""
    site = ""
    PARAMS: Dict[str, Any] = {}
    #: the log keys of the terms it adds
    LOG_KEYS = ()

    def __init__(self, **params):
        unknown = set(params) - set(self.PARAMS)
        if unknown:
            raise ValueError(f"extension {self.name!r}: unknown parameters {sorted(unknown)}; "
                             f"known: {sorted(self.PARAMS) or 'none'}")
        values = dict(self.PARAMS)
        values.update(params)
        self.params = self.check(values)

    def check(self, params):
        return params

    def __getattr__(self, key):
        params = self.__dict__.get("params", {})
        if key in params:
            return params[key]
        raise AttributeError(key)

    def config(self):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()}

    # hooks ---------------------------------------------------------------------------
    def learning_rates(self, model, base_rate, rates):
        """Adjust ``rates`` ({objective: learning rate}) in place at compile time."""

    def after_step(self, model, adversary_codes, labels):
        """After the step's updates (extra adversary steps)."""

    def after_training(self, model, train_examples):
        """After the last training step (:meth:`LabelSplitModel.after_training`)."""


class WeightedTerm(Extension):
    """An extension that adds one loss term at ``weight`` (> 0): ``LOG_KEYS[0]`` is its
    name, the subclass's ``value(model, site)`` computes it from the site's values,
    :meth:`objective` says whose objective it enters."""

    PARAMS = {"weight": 1.0}

    def check(self, params):
        params["weight"] = _number(f"{self.name}.weight", params["weight"], strict=True)
        return params

    def objective(self, site):
        return site["objective"]

    def add_terms(self, model, terms, site):
        terms.add(self.LOG_KEYS[0], self.value(model, site), {self.objective(site): self.weight})


def _number(name, value, low=0.0, strict=False, integer=False):
    """``value`` as a float (int) ≥ ``low`` (> with ``strict``), or a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    number = int(value) if integer else float(value)
    if not (number > low if strict else number >= low) or number != number:
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return number


def _boolean(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


# ------------------------------------------------------------------------- independence
@EXTENSIONS.register("hsic")
class HSIC(Extension):
    """HSIC between the batch-standardised posterior means of the label-irrelevant code and
    the labels (:func:`hsic_term`), at ``weight`` in that code's encoder objective: the
    non-linear dependence a k-NN or MLP probe reads, without an adversary to train.
    ``linear_weight``: a linear kernel added to the Gaussian one. ``bandwidth_scales``: the
    Gaussian kernel as the mean of kernels whose squared bandwidths are these multiples of the
    median squared distance; small ones see the local class structure. ``all_groups``
    (Lr-LiVAE): estimate it on every column of Algorithm 1's grouped batch (the n_gm GM-stage
    batches plus the joint one), since a batch of 64 holds ~6 images per class."""

    name, site = "hsic", "independence"
    LOG_KEYS = ("hsic",)
    PARAMS = {"weight": 1.0, "linear_weight": 0.0, "bandwidth_scales": (1.0,),
              "all_groups": False}

    def check(self, params):
        params["weight"] = _number("hsic.weight", params["weight"], strict=True)
        params["linear_weight"] = _number("hsic.linear_weight", params["linear_weight"])
        scales = params["bandwidth_scales"]
        try:
            scales = tuple(float(s) for s in scales)
        except (TypeError, ValueError):
            scales = ()
        if not scales or any(not (s > 0) for s in scales):
            raise ValueError(f"hsic.bandwidth_scales must be a non-empty sequence of positive "
                             f"numbers, got {params['bandwidth_scales']!r}")
        params["bandwidth_scales"] = scales
        params["all_groups"] = _boolean("hsic.all_groups", params["all_groups"])
        return params

    def requires(self):
        return ("grouped_batches",) if self.all_groups else ()

    def add_terms(self, model, terms, site):
        means, labels = site["means"], site["labels"]
        if self.all_groups and site.get("pooled") is not None:
            extra_means, extra_labels = site["pooled"]()
            means = tf.concat([means, extra_means], 0)
            labels = tf.concat([labels, extra_labels], 0)
        value = hsic_term(means, tf.cast(labels, means.dtype), self.linear_weight,
                          self.bandwidth_scales)
        terms.add("hsic", value, {site["objective"]: self.weight})


@EXTENSIONS.register("mmd")
class MMD(WeightedTerm):
    """MMD between the batch's samples of the label-irrelevant code and draws from N(0, I)
    (:func:`mmd_term`), at ``weight`` in that code's encoder objective, so that the aggregate
    posterior covers the prior that generation samples."""

    name, site = "mmd", "independence"
    LOG_KEYS = ("mmd",)

    def value(self, model, site):
        return mmd_term(site["codes"], model.sample_seed_generator, model.seed,
                        site["training"])


# ------------------------------------------------------------------------- adversary
@EXTENSIONS.register("adversary_boost")
class AdversaryBoost(Extension):
    """A stronger latent adversary: ``steps`` updates per training step (the step's own, then
    ``steps − 1`` more on the same detached codes, as GANs train their discriminator k times
    per generator step) at ``lr_multiplier`` × the base learning rate."""

    name, site = "adversary_boost", "adversary"
    PARAMS = {"steps": 1, "lr_multiplier": 1.0}

    def check(self, params):
        params["steps"] = _number("adversary_boost.steps", params["steps"], low=1,
                                  integer=True)
        params["lr_multiplier"] = _number("adversary_boost.lr_multiplier",
                                          params["lr_multiplier"], strict=True)
        return params

    def learning_rates(self, model, base_rate, rates):
        objective = model.adversary_site()["objective"]
        rates[objective] = base_rate * self.lr_multiplier

    def after_step(self, model, adversary_codes, labels):
        site = model.adversary_site()
        codes = tf.stop_gradient(adversary_codes)
        for _ in range(self.steps - 1):
            with tf.GradientTape() as tape:
                loss = site["loss"](site["network"](codes, training=True), labels)
            model.apply_objective(tape, site["objective"], loss)


@EXTENSIONS.register("adversary_input")
class AdversaryInput(Extension):
    """What Lr-LiVAE's latent adversary q_ω(c|z_u) reads (Eq. 4–5): ``code`` "mean" (the
    posterior mean μ_u) instead of the paper's sample z_u ~ q(z_u|x): with a nearly collapsed
    q(z_u|x) the class signal in μ_u is far below the sampling noise, invisible to an adversary
    on samples yet readable by any probe of the frozen codes. ``standardize``: the adversary
    standardises its input with batch statistics
    (:func:`keras_lsvae.networks.build_latent_classifier`)."""

    name, site = "adversary_input", "adversary_input"
    PARAMS = {"code": "mean", "standardize": False}

    def check(self, params):
        if params["code"] not in ("mean", "sample"):
            raise ValueError(f"adversary_input.code must be 'mean' or 'sample', got "
                             f"{params['code']!r}")
        params["standardize"] = _boolean("adversary_input.standardize", params["standardize"])
        return params


# ------------------------------------------------------------------------- Lr-LiVAE's
@EXTENSIONS.register("gm_margin")
class GMMargin(Extension):
    """The large-margin form of the GM loss (Wan et al. 2018, paper A's [39]): the true
    class's Mahalanobis distance is scaled by 1 + ``margin`` in L_cls
    (:func:`keras_lsvae.losses.gm_loss`). Paper A's Eq. 8 has no margin."""

    name, site = "gm_margin", "gm"
    PARAMS = {"margin": 0.5}

    def check(self, params):
        params["margin"] = _number("gm_margin.margin", params["margin"], strict=True)
        return params


@EXTENSIONS.register("consistency")
class Consistency(WeightedTerm):
    """A term at ``weight`` in θ's (the decoder's) objective: the GM posterior of Encoder^s
    must find class y in prior samples of class y and in swaps (ẑ_s of an image of class y,
    z_u of another image). It trains the decoder only (the encoders and the prior are held
    fixed here) to take the class from z_s whatever z_u carries, which is what generation
    (z_u ~ N(0, I)) and swaps need."""

    name, site = "consistency", "consistency"
    LOG_KEYS = ("consistency",)

    def objective(self, site):
        return "decoder"

    def value(self, model, site):
        return class_consistency(model, **site)


def class_consistency(model, samples, z_s, z_u, labels, training):
    """Cross-entropy of Lr-LiVAE's GM posterior q(c | Encoder^s(x̃)) (Eq. 8) against the class
    x̃ was made for, over prior samples x'_p of class y (Algorithm 1 line 21) and swaps
    Decoder(ẑ_s(x_a), z_u(x_b)) that pair each image's z_s with the z_u of the next image in
    the batch (another class for most pairs), labelled with x_a's class. Encoder^s runs on
    batch statistics of these images with its moving statistics untouched (``stateless_call``,
    as the pooled HSIC estimate runs Encoder^u). The pairing is over the global batch under a
    strategy (image i with image i − 1 of the global batch, whatever the replica count)."""
    rolled = local_rows(tf.roll(gather_replicas(z_u), shift=1, axis=0), tf.shape(z_u)[0])
    # Stop-gradients: only θ's objective holds this term (and one backward pass over every
    # objective's variables must not carry it to ψ or φ).
    swapped = model.decoder([tf.stop_gradient(z_s), tf.stop_gradient(rolled)],
                            training=training)
    images = tf.concat([samples, swapped], 0)
    encoder = model.encoder_s
    codes, _ = encoder.stateless_call([tf.stop_gradient(v) for v in
                                       encoder.trainable_variables],
                                      encoder.non_trainable_variables, images,
                                      training=training)
    logits = L.gm_logits(codes["z_s"], model.prior.components(stop_gradient=True))
    return L.adversarial_classifier_loss(logits, tf.concat([labels, labels], 0))


@EXTENSIONS.register("prior_refit")
class PriorRefit(Extension):
    """After training, set each class's prior variances σ²_c to their maximum-likelihood
    values for the training codes ẑ_s with the means fixed
    (:meth:`keras_lsvae.models.LrLiVAE.fit_prior_variances`). Generation samples from them; the
    checkpoints keep the learned ones, so a resumed or extended run trains on exactly what it
    trained on."""

    name, site = "prior_refit", "prior"

    def after_training(self, model, train_examples):
        model.fit_prior_variances(*train_examples())


# ------------------------------------------------------------------------- building
def build(model_class, spec: Optional[Mapping[str, Any]]) -> Dict[str, Extension]:
    """{name: Extension} from ``spec`` ({name: {param: value}}, or an iterable of names, or
    Extension instances as values), checked against the sites ``model_class`` offers; a
    ValueError names what is wrong and what is known."""
    if not spec:
        return {}
    if isinstance(spec, (list, tuple, set)):
        spec = {name: {} for name in spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f"extensions must be a mapping {{name: {{parameter: value}}}}, got "
                         f"{spec!r}")
    sites = set(getattr(model_class, "EXTENSION_SITES", ()))
    built = {}
    for name, params in spec.items():
        if isinstance(params, Extension):
            extension = params
        else:
            try:
                cls = EXTENSIONS.get(name)
            except KeyError as error:
                raise ValueError(error.args[0]) from None
            if params is None:
                params = {}
            if not isinstance(params, Mapping):
                raise ValueError(f"extension {name!r}: parameters must be a mapping, got "
                                 f"{params!r}")
            extension = cls(**params)
        model_name = model_class.__name__
        needed = (extension.site,) + tuple(getattr(extension, "requires", lambda: ())())
        missing = [site for site in needed if site not in sites]
        if missing:
            offered = sorted(n for n in EXTENSIONS.names()
                             if EXTENSIONS.get(n).site in sites)
            raise ValueError(f"extension {extension.name!r} does not apply to {model_name} "
                             f"(it needs {missing[0]!r}); extensions for {model_name}: "
                             f"{', '.join(offered) or 'none'}")
        built[extension.name] = extension
    return built


def config(extensions: Mapping[str, Extension]) -> Dict[str, Dict[str, Any]]:
    return {name: extension.config() for name, extension in extensions.items()}


#: Old constructor arguments (``--model_arg`` names) -> (extension, parameter, value map).
#: ``None`` as the parameter: the argument switches the extension on (True) or off.
LEGACY_ARGUMENTS = {
    "hsic_weight": ("hsic", "weight"),
    "hsic_linear_weight": ("hsic", "linear_weight"),
    "hsic_bandwidth_scales": ("hsic", "bandwidth_scales"),
    "hsic_all_groups": ("hsic", "all_groups"),
    "mmd_weight": ("mmd", "weight"),
    "adversary_steps": ("adversary_boost", "steps"),
    "adversary_lr_multiplier": ("adversary_boost", "lr_multiplier"),
    "adversary_input": ("adversary_input", "code"),
    "adversary_standardize": ("adversary_input", "standardize"),
    "consistency_weight": ("consistency", "weight"),
    "margin": ("gm_margin", "margin"),
    "refit_prior_variances": ("prior_refit", None),
}
#: values of the old arguments that meant "off"
_LEGACY_OFF = {"hsic": ("weight", 0.0), "mmd": ("weight", 0.0),
               "consistency": ("weight", 0.0), "gm_margin": ("margin", 0.0)}
_LEGACY_DEFAULTS = {"adversary_boost": {"steps": 1, "lr_multiplier": 1.0},
                    "adversary_input": {"code": "sample", "standardize": False}}


def from_legacy(kwargs: Dict[str, Any], warn=True):
    """Split ``kwargs`` into (the other arguments, extension spec) by
    :data:`LEGACY_ARGUMENTS`, for model files saved and flagfiles written before the extensions
    existed: a weight of 0 (the old "off") drops the extension, as do the old defaults."""
    rest, spec = {}, {}
    for key, value in kwargs.items():
        if key not in LEGACY_ARGUMENTS:
            rest[key] = value
            continue
        extension, param = LEGACY_ARGUMENTS[key]
        if param is None:
            if value:
                spec.setdefault(extension, {})
            continue
        spec.setdefault(extension, {})[param] = value
    for extension, params in list(spec.items()):
        off = _LEGACY_OFF.get(extension)
        if off and float(params.get(off[0], 1.0)) == off[1]:
            del spec[extension]
        elif extension in _LEGACY_DEFAULTS and all(
                params.get(k, v) == v for k, v in _LEGACY_DEFAULTS[extension].items()):
            del spec[extension]
        elif extension == "adversary_input":
            params.setdefault("code", "sample")
    if spec and warn:
        logging.warning("old model arguments %s are extensions now: extensions=%r",
                        sorted(k for k in kwargs if k in LEGACY_ARGUMENTS), spec)
    return rest, spec


def parse_flag(items):
    """``--extension`` values -> {name: {param: value}}: ``name`` switches an extension on
    with its defaults, ``name.param=value`` sets one parameter (a Python literal: 600.0, True,
    (0.05,0.25,1.0), 'mean'; anything else is a string)."""
    spec: Dict[str, Dict[str, Any]] = {}
    for item in items or ():
        text = item.strip()
        if "=" not in text:
            if "." in text or not text:
                raise ValueError(f"--extension={item}: expected NAME or NAME.PARAM=VALUE")
            spec.setdefault(text, {})
            continue
        key, raw = text.split("=", 1)
        if "." not in key:
            raise ValueError(f"--extension={item}: expected NAME.PARAM=VALUE "
                             "(e.g. --extension=hsic.weight=600)")
        name, param = key.strip().split(".", 1)
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        spec.setdefault(name.strip(), {})[param.strip()] = value
    return spec
