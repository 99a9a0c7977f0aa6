"""Input guards of every registered model's public API: real-valued inputs (codes,
noise, values, fill values, grid points, scales) refuse NaN, ±inf, values beyond float32 and
non-numbers with a ValueError naming the argument; labels, seeds, counts and constructor sizes
refuse wrong types and values instead of converting them (int32(2**32 + 3) = 3, int(3.7) = 3,
int(4.5) = 4, int(True) = 1).

Each table below is checked for completeness against the models' signatures: a public method
(or constructor) that gains an argument of a guarded kind without a case here fails
``test_every_guarded_argument_has_a_case``. Every case also runs once on a valid value, so a
refusal is the argument's own check and not a broken call.
"""

import inspect
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import models
from keras_lsvae.registry import MODELS
from tests.helpers import attribute_batch, image_batch, tiny_attribute_model, tiny_lrlivae

K, A, N = 3, 2, 2
SHAPE = (8, 8, 1)
CLASS_BASELINE = dict(input_shape=SHAPE, num_classes=K, z_dim=3, width=8, mlp_units=(16,),
                      seed=0)

# The kinds of argument guarded, by name (public inference methods; see _public_methods).
REAL = {"z", "z_s", "z_u", "w", "noise", "values", "fill_value", "points", "scale", "span",
        "center", "learning_rate", "pixel_noise"}
COUNTS = {"num_steps", "batch_size", "iterations", "steps", "num", "num_components"}
LABELS = {"labels", "label"}
# Methods that are training machinery, not inference API (their inputs are graph tensors).
INFRASTRUCTURE = {
    "train_step", "test_step", "predict_step", "call", "compute_losses", "compute_gm_losses",
    "adversary_terms", "extra_terms", "extension_terms", "apply_terms", "apply_objective",
    "apply_backward_once", "backward_once_gradients", "after_step", "after_training", "track",
    "init_trackers", "real_and_fake_passes", "loss_scale", "compile", "make_optimizer",
    "extension_learning_rates", "compile_from_config", "float32_outputs",
    "objective_variables", "one_hot", "finish_init", "adversary_site", "get_config",
    "from_config", "extension", "num_replicas", "prior_means", "prior_variances",
    "get_compile_config", "load_own_variables", "save_own_variables"}


def _build(name):
    if name == "lrlivae":
        return tiny_lrlivae()
    if MODELS.get(name).label_kind == "attributes":
        return tiny_attribute_model(name)
    keras.utils.set_random_seed(0)
    options = dict(CLASS_BASELINE)
    if name != "cgan":
        options["condition_units"] = 16
    return models.get(name, **options)


_MODELS = {}


def _model(name):
    if name not in _MODELS:
        _MODELS[name] = _build(name)
    return _MODELS[name]


def _public_methods(model_class):
    """{method name: [parameter names]} of the public inference API defined in keras_lsvae."""
    methods = {}
    for attr in sorted(dir(model_class)):
        if attr.startswith("_") or attr.startswith("check_") or attr in INFRASTRUCTURE:
            continue
        fn = getattr(model_class, attr)
        if (not callable(fn) or isinstance(fn, type)
                or not (getattr(fn, "__module__", "") or "").startswith("keras_lsvae")):
            continue
        methods[attr] = [p.name for p in inspect.signature(fn).parameters.values()
                         if p.name not in ("self", "cls")
                         and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return methods


def _data(model):
    if model.label_kind == "attributes":
        images, attributes = attribute_batch(N, shape=SHAPE, num_attributes=A)
        return images, attributes
    return image_batch(N, shape=SHAPE, num_classes=K)


# --------------------------------------------------------------------------- real inputs
def _real_cases(name, model):
    """{(method, argument): (valid value, call(value))} for every real-valued input."""
    x, y = _data(model)
    mask = "right_half"
    cases = {("masked_input", "fill_value"): (0.5, lambda v: model.masked_input(x, mask, v))}
    if name == "lrlivae":
        zs, zu = np.zeros((N, 4), np.float32), np.zeros((N, 3), np.float32)
        optimize = dict(method="optimize", steps=1)
        cases.update({
            ("decode", "z_s"): (zs, lambda v: model.decode(v, zu)),
            ("decode", "z_u"): (zu, lambda v: model.decode(zs, v)),
            ("traverse", "values"): (np.array([-1.0, 1.0]),
                                     lambda v: model.traverse(0, [0], values=v)),
            ("inpaint", "fill_value"): (0.5, lambda v: model.inpaint(x, mask, fill_value=v)),
            ("inpaint", "learning_rate"): (
                0.05, lambda v: model.inpaint(x, mask, learning_rate=v, **optimize)),
            ("inpaint", "pixel_noise"): (
                0.02, lambda v: model.inpaint(x, mask, pixel_noise=v, **optimize)),
            ("inpaint_labeled", "fill_value"): (
                0.5, lambda v: model.inpaint_labeled(x, mask, y, fill_value=v)),
        })
    elif model.label_kind == "class":
        z = np.zeros((N, 3), np.float32)
        cases[("decode", "z")] = (z, lambda v: model.decode(v, y))
        if hasattr(model, "inpaint"):
            cases.update({
                ("inpaint", "fill_value"): (0.5, lambda v: model.inpaint(x, mask, y,
                                                                         fill_value=v)),
                ("inpaint_labeled", "fill_value"): (
                    0.5, lambda v: model.inpaint_labeled(x, mask, y, fill_value=v))})
    elif name == "csvae":
        z, w = np.zeros((N, 3), np.float32), np.zeros((N, A * 2), np.float32)
        cases.update({
            ("decode", "z"): (z, lambda v: model.decode(v, w)),
            ("decode", "w"): (w, lambda v: model.decode(z, v)),
            ("manipulate", "w"): (w, lambda v: model.manipulate(x, None, w=v)),
            ("manipulate_grid", "points"): (np.zeros((3, 2), np.float32),
                                            lambda v: model.manipulate_grid(x, 0, v)),
            ("w_grid", "span"): (1.0, lambda v: model.w_grid(0, num=3, span=v)),
            ("w_grid", "center"): (np.zeros(2), lambda v: model.w_grid(0, num=3, center=v)),
            ("w_principal_directions", "span"): (
                1.0, lambda v: model.w_principal_directions(
                    np.concatenate([x, x]), np.ones((2 * N, A), np.float32), 0, num=3, span=v)),
        })
    else:  # vae, condvae, condvae_info
        z = np.zeros((N, 3), np.float32)
        codes = np.ones((N, A), np.float32)
        cases[("decode", "z")] = (z, lambda v: model.decode(
            v, codes if model.condition_decoder else None))
        if model.condition_decoder:
            cases[("decode", "attributes")] = (codes, lambda v: model.decode(z, v))
        if "scale" in inspect.signature(model.manipulate).parameters:
            cases[("manipulate", "scale")] = (
                2.0, lambda v: model.manipulate(x, y, 1.0 - y, scale=v))
    return cases


def _bad_reals(valid):
    """NaN, ±inf, beyond float32, strings and bools in the shape of ``valid``."""
    array = np.asarray(valid, np.float64)
    bad = []
    # 1e39 is a finite Python float but infinite in float32: arrays only (codes are float32)
    for value in (np.nan, np.inf, -np.inf) + ((1e39,) if array.ndim else ()):
        copy = array.copy()
        copy.flat[0] = value
        bad.append(copy if copy.ndim else float(copy))
    bad.append(array.astype(str) if array.ndim else str(float(array)))
    bad.append(np.ones_like(array, bool) if array.ndim else True)
    return bad


def _real_params():
    for name in MODELS.names():
        for method, argument in _real_cases(name, _model(name)):
            yield pytest.param(name, method, argument, id=f"{name}-{method}-{argument}")


@pytest.mark.parametrize("name,method,argument", _real_params())
def test_real_valued_inputs_refuse_nan_inf_and_non_numbers(name, method, argument):
    model = _model(name)
    valid, call = _real_cases(name, model)[(method, argument)]
    for output in tf.nest.flatten(call(valid)):
        assert np.all(np.isfinite(np.asarray(output, np.float32)))
    for bad in _bad_reals(valid):
        with pytest.raises(ValueError, match=rf"^{re.escape(argument)}[:\s]"):
            call(bad)


# --------------------------------------------------------------------------- class labels
def _label_cases(name, model):
    """{(method, argument): call(labels)} for every class-label input ("label": one id)."""
    x, _ = _data(model)
    mask = "right_half"
    z = np.zeros((1, getattr(model, "latent_dim", 3)), np.float32)
    x1 = x[:1]
    cases = {
        ("generate", "labels"): lambda v: model.generate(v, seed=0),
    }
    if name == "lrlivae":
        cases.update({
            ("sample_latents", "labels"): lambda v: model.sample_latents(v, seed=0),
            ("encode_labeled", "labels"): lambda v: model.encode_labeled(x1, v),
            ("reconstruct_labeled", "labels"): lambda v: model.reconstruct_labeled(x1, v),
            ("inpaint_labeled", "labels"): lambda v: model.inpaint_labeled(x1, mask, v),
            ("fit_prior_variances", "labels"): lambda v: model.fit_prior_variances(
                x1, v),
            ("interpolate_zs", "label"): lambda v: model.interpolate_zs(v[0], num_steps=2),
            ("interpolate_zu", "label"): lambda v: model.interpolate_zu(v[0], num_steps=2),
            ("traverse", "label"): lambda v: model.traverse(v[0], [0]),
        })
        return cases
    cases[("decode", "labels")] = lambda v: model.decode(z, v)
    if name == "cgan":
        cases[("discriminate", "labels")] = lambda v: model.discriminate(x1, v)
    else:
        cases.update({
            ("encode", "labels"): lambda v: model.encode(x1, v),
            ("encode_labeled", "labels"): lambda v: model.encode_labeled(x1, v),
            ("reconstruct", "labels"): lambda v: model.reconstruct(x1, v),
            ("reconstruct_labeled", "labels"): lambda v: model.reconstruct_labeled(x1, v),
            ("inpaint", "labels"): lambda v: model.inpaint(x1, mask, v),
            ("inpaint_labeled", "labels"): lambda v: model.inpaint_labeled(x1, mask, v),
        })
    return cases


#: one-label vectors that must be refused: int32 wraparound (int64, uint64, whole floats beyond
#: int32), fractions, NaN, bools, strings and floats at all (even whole: not documented input)
BAD_LABELS = [np.array([2**32 + 1], np.int64), np.array([2**32 + 1], np.uint64),
              np.array([2**31 + 1], np.uint32), np.array([2.0**32 + 1]), np.array([1.5]),
              np.array([np.nan]), np.array([1.0]), np.array([True]), np.array(["1"]),
              np.array([-1]), np.array([K])]


def _class_models():
    return [name for name in MODELS.names() if MODELS.get(name).label_kind == "class"]


def _label_params():
    for name in _class_models():
        for method, argument in _label_cases(name, _model(name)):
            yield pytest.param(name, method, argument, id=f"{name}-{method}-{argument}")


@pytest.mark.parametrize("name,method,argument", _label_params())
def test_class_labels_are_integers_in_range_checked_before_the_cast(name, method, argument):
    model = _model(name)
    call = _label_cases(name, model)[(method, argument)]
    call(np.array([1], np.int64))
    call(np.array([1], np.uint8))
    for bad in BAD_LABELS:
        with pytest.raises(ValueError, match=rf"^{argument}: "):
            call(bad)


def test_in_graph_batch_labels_are_range_checked_before_the_cast():
    # fit/evaluate batches: int64 class ids 2**32 + 1 would be class 1 after tf.cast to int32.
    model = _model("cvae")
    model.compile()
    x, _ = image_batch(4, shape=SHAPE, num_classes=K)
    for labels in (np.full(4, 2**32 + 1, np.int64), np.full(4, 2.0**32 + 1, np.float64)):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids must lie in"):
            model.evaluate(tf.data.Dataset.from_tensors((x, labels)), verbose=0)


# --------------------------------------------------------------------------------- seeds
def _seed_cases(name, model):
    x, y = _data(model)
    cases = {("generate", "seed"): lambda s: model.generate(y[:1], seed=s)}
    if name == "lrlivae":
        cases.update({
            ("sample_latents", "seed"): lambda s: model.sample_latents([1], seed=s)[0],
            ("interpolate_zs", "seed"): lambda s: model.interpolate_zs(1, 2, seed=s),
            ("interpolate_zu", "seed"): lambda s: model.interpolate_zu(1, 2, seed=s),
            ("traverse", "seed"): lambda s: model.traverse(1, [0], seed=s),
        })
    return cases


BAD_SEEDS = [3.7, np.float64(3.0), 3.0, True, np.bool_(True), -1, 2**32, "3", [3]]


def _seed_params():
    for name in MODELS.names():
        for method, argument in _seed_cases(name, _model(name)):
            yield pytest.param(name, method, argument, id=f"{name}-{method}")


@pytest.mark.parametrize("name,method,argument", _seed_params())
def test_seeds_are_non_negative_integers(name, method, argument):
    call = _seed_cases(name, _model(name))[(method, argument)]
    np.testing.assert_array_equal(call(np.int64(3)), call(3))
    for bad in BAD_SEEDS:
        with pytest.raises(ValueError, match=r"^seed must be"):
            call(bad)


# -------------------------------------------------------------------------------- counts
def _count_cases(name, model):
    x, y = _data(model)
    mask = "right_half"
    cases = {("batched", "batch_size"): lambda n: model.batched(lambda a: a, x, batch_size=n)}
    methods = _public_methods(type(model))
    if "encode" in methods:
        inputs = (x,) if name == "lrlivae" else (x, y)
        cases[("encode", "batch_size")] = lambda n: model.encode(*inputs, batch_size=n)
    if "predict_labels" in methods:
        cases[("predict_labels", "batch_size")] = lambda n: model.predict_labels(x, batch_size=n)
    if "fit_attribute_statistics" in methods:
        cases[("fit_attribute_statistics", "batch_size")] = (
            lambda n: model.fit_attribute_statistics(x, y, batch_size=n))
    if name == "cgan":
        cases[("discriminate", "batch_size")] = lambda n: model.discriminate(x, y, batch_size=n)
    if "inpaint" in methods:
        labels = () if name == "lrlivae" else (y,)
        cases[("inpaint", "iterations")] = (
            lambda n: model.inpaint(x, mask, *labels, iterations=n))
    if name == "lrlivae":
        cases.update({
            ("fit_prior_variances", "batch_size"): lambda n: model.fit_prior_variances(
                x, y, batch_size=n),
            ("inpaint", "steps"): lambda n: model.inpaint(x, mask, method="optimize", steps=n),
            ("interpolate", "num_steps"): lambda n: model.interpolate(x, x, num_steps=n),
            ("interpolate_zs", "num_steps"): lambda n: model.interpolate_zs(0, num_steps=n),
            ("interpolate_zu", "num_steps"): lambda n: model.interpolate_zu(0, num_steps=n),
        })
    if name == "csvae":
        many = np.concatenate([x, x])
        ones = np.ones((2 * N, A), np.float32)
        cases.update({
            ("w_grid", "num"): lambda n: model.w_grid(0, num=n),
            ("w_principal_directions", "num"): lambda n: model.w_principal_directions(
                many, ones, 0, num=n, num_components=1),
            ("w_principal_directions", "num_components"): lambda n: (
                model.w_principal_directions(many, ones, 0, num=2, num_components=n)),
        })
    return cases


BAD_COUNTS = [4.5, 2.0, np.float32(2.0), "2", True, np.bool_(True), 0, -1, None]


def _count_params():
    for name in MODELS.names():
        for method, argument in _count_cases(name, _model(name)):
            yield pytest.param(name, method, argument, id=f"{name}-{method}-{argument}")


@pytest.mark.parametrize("name,method,argument", _count_params())
def test_counts_are_positive_integers(name, method, argument):
    call = _count_cases(name, _model(name))[(method, argument)]
    call(np.int64(1))
    for bad in BAD_COUNTS:
        with pytest.raises(ValueError, match=rf"^{argument} must be a positive integer"):
            call(bad)


# ------------------------------------------------------------------- constructor sizes
def _constructor_parameters(model_class):
    """{name: default} over the constructors of the class and its keras_lsvae bases."""
    parameters = {}
    for cls in reversed(model_class.__mro__):
        if "__init__" in vars(cls) and cls.__module__.startswith("keras_lsvae"):
            parameters.update({p.name: p.default for p in
                               inspect.signature(cls.__init__).parameters.values()
                               if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)})
    return parameters


def _is_size(parameter):
    return (parameter.endswith("_dim") or parameter.endswith("_units")
            or parameter in ("width", "n_gm", "num_classes", "input_shape"))


def _size_params():
    for name in MODELS.names():
        parameters = _constructor_parameters(MODELS.get(name))
        for parameter in sorted(p for p in parameters if _is_size(p)):
            sequence = (parameter == "input_shape"
                        or isinstance(parameters[parameter], (tuple, list)))
            yield pytest.param(name, parameter, sequence, id=f"{name}-{parameter}")


def _bad_sizes(parameter, sequence):
    if sequence and parameter != "input_shape":
        return [(16.5,), ("16",), (True,), (0,), (16.0,), 16, "16"]
    if parameter == "input_shape":
        return [(8.5, 8, 1), ("8", 8, 1), (8, 8, True), (8, 0, 1), (8.0, 8, 1), 8, "881"]
    bad = [4.5, 4.0, "4", True, -1, None]
    return bad if parameter == "n_gm" else bad + [0]


@pytest.mark.parametrize("name,parameter,sequence", _size_params())
def test_constructor_sizes_are_positive_integers(name, parameter, sequence):
    model_class = MODELS.get(name)
    base = _model(name).get_config()
    for bad in _bad_sizes(parameter, sequence):
        config = dict(base, **{parameter: bad})
        with pytest.raises(ValueError, match=rf"^{parameter}(\[\d+\])? must"):
            model_class.from_config(config)


@pytest.mark.parametrize("name", MODELS.names())
def test_constructor_seed_is_a_non_negative_integer(name):
    base = _model(name).get_config()
    for bad in (3.7, True, -1, "3"):
        with pytest.raises(ValueError, match=r"^seed must be"):
            MODELS.get(name).from_config(dict(base, seed=bad))


def _float_params():
    for name in MODELS.names():
        parameters = _constructor_parameters(MODELS.get(name))
        for parameter, default in sorted(parameters.items()):
            if (isinstance(default, float) and not isinstance(default, bool)) or (
                    default is None and parameter.endswith("_weight")):
                yield pytest.param(name, parameter, id=f"{name}-{parameter}")


@pytest.mark.parametrize("name,parameter", _float_params())
def test_constructor_numbers_are_finite_numbers(name, parameter):
    base = _model(name).get_config()
    for bad in (np.nan, np.inf, -np.inf, "1.0", True):
        with pytest.raises(ValueError, match=rf"^{parameter} must be"):
            MODELS.get(name).from_config(dict(base, **{parameter: bad}))


# ------------------------------------------------------------------------ completeness
@pytest.mark.parametrize("name", MODELS.names())
def test_every_guarded_argument_has_a_case(name):
    model = _model(name)
    covered = (set(_real_cases(name, model)) | set(_seed_cases(name, model))
               | set(_count_cases(name, model))
               | (set(_label_cases(name, model)) if model.label_kind == "class" else set()))
    guarded = REAL | COUNTS | {"seed"} | (LABELS if model.label_kind == "class" else set())
    if model.label_kind == "attributes" and getattr(model, "condition_decoder", False):
        guarded = guarded | {"attributes"}  # decode's real-valued label codes p·y
    missing = []
    for method, parameters in _public_methods(type(model)).items():
        for parameter in parameters:
            if parameter == "attributes" and method != "decode":
                continue  # {0, 1} attribute rows elsewhere: check_attributes
            if parameter in guarded and (method, parameter) not in covered:
                missing.append((method, parameter))
    assert not missing, f"{name}: add guard cases for {missing}"
