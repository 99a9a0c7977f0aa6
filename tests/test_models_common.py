"""Tests every registered model gets, with no per-model code (as keras-hub's TestCase does):
parametrised over ``keras_lsvae.registry.MODELS``, built from the constructor's own defaults on
tiny images, with each option below applied where the constructor takes it.

* save (``model.save("m.keras")``) -> ``keras.models.load_model`` restores every variable
  (trainable, batch-norm statistics, spectral-norm vectors, seed-generator states) and every
  optimizer's state bit for bit; ``predict`` gives the same outputs; and one more training step
  after loading gives the same weights as one more step on the original.
* ``get_config`` -> ``from_config`` gives a model with the same config and variable shapes.
* One training step (every objective at a non-zero rate) moves only variables of
  ``objective_variables()``, and within each objective at least one variable (no trainable
  variable outside every objective moves); run once with only one objective's rate non-zero,
  that objective moves nothing but its own variables.
* The inference API (encode/decode/reconstruct/generate where the model has them) returns the
  documented shapes.

Labels follow the model's ``label_kind``: class ids (B,) for "class" models, {0, 1} attribute
vectors (B, A) for "attributes" models (paper B's), with A = NUM_CLASSES.
"""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import models
from keras_lsvae.models.extensions import EXTENSIONS
from keras_lsvae.registry import MODELS
from tests.helpers import attribute_batch, image_batch

INPUT_SHAPE, NUM_CLASSES = (8, 8, 1), 3
# Options that add variables or change what a step does to them; each is applied to a model only
# if its constructor has that argument.
VARIABLE_OPTIONS = dict(spectral_norm=True, gan_loss="hinge")
# Every extension with parameters that show, on every model that offers its site.
EXTENSION_OPTIONS = {"hsic": {"weight": 1.0, "all_groups": True}, "mmd": {"weight": 1.0},
                     "adversary_boost": {"steps": 2}, "consistency": {"weight": 1.0},
                     "adversary_input": {"code": "mean", "standardize": True},
                     "gm_margin": {"margin": 0.5}, "prior_refit": {}}


def _extensions(model_class):
    sites = set(model_class.EXTENSION_SITES)
    chosen = {}
    for name, params in EXTENSION_OPTIONS.items():
        if EXTENSIONS.get(name).site not in sites:
            continue
        if name == "hsic" and "grouped_batches" not in sites:
            params = {"weight": 1.0}
        chosen[name] = params
    return chosen


def test_every_extension_applies_to_some_model():
    used = {name for model in MODELS.names() for name in _extensions(MODELS.get(model))}
    assert used == set(EXTENSIONS.names())


def _cases():
    for name in MODELS.names():
        accepted = inspect.signature(MODELS.get(name).__init__).parameters
        options = {k: v for k, v in VARIABLE_OPTIONS.items() if k in accepted}
        extensions = _extensions(MODELS.get(name))
        if extensions:
            options["extensions"] = extensions
        yield pytest.param(name, {}, id=f"{name}-defaults")
        if options:
            yield pytest.param(name, options, id=f"{name}-every_option")


def _build(name, options):
    keras.utils.set_random_seed(0)
    model = models.get(name, input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES, seed=0, **options)
    model.compile()
    return model


def _is_attribute_model(model):
    return model.label_kind == "attributes"


def _batch(model):
    if _is_attribute_model(model):
        return attribute_batch(8, shape=INPUT_SHAPE, num_attributes=NUM_CLASSES)
    groups = model.data_group if model.data_group > 1 else None
    return image_batch(8, shape=INPUT_SHAPE, num_classes=NUM_CLASSES, groups=groups)


def _dataset(model):
    images, labels = _batch(model)
    if _is_attribute_model(model):
        # Conditional models reconstruct from (images, attributes): predict on both.
        return tf.data.Dataset.from_tensors((images, labels)), (images, labels)
    if getattr(model, "needs_labels", False):  # q(z|x, c) (paper A's cVAE): predict on both
        return tf.data.Dataset.from_tensors((images, labels)), (images, labels)
    return tf.data.Dataset.from_tensors((images, labels)), (images if images.ndim == 4
                                                           else images[:, -1])


def _assert_same_state(model, loaded):
    assert len(model.variables) == len(loaded.variables)
    for a, b in zip(model.variables, loaded.variables):  # paths differ by Keras' auto-naming
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert len(model.optimizer_list) == len(loaded.optimizer_list)
    for original, restored in zip(model.optimizer_list, loaded.optimizer_list):
        assert len(original.variables) == len(restored.variables)
        assert int(original.iterations) > 0  # a restored, not a fresh, optimizer is compared
        for a, b in zip(original.variables, restored.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.parametrize("name,options", _cases())
def test_save_load_predict_and_resume_training(name, options, tmp_path):
    model = _build(name, options)
    dataset, images = _dataset(model)
    model.fit(dataset, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    _assert_same_state(model, loaded)
    np.testing.assert_array_equal(model.predict(images, verbose=0),
                                  loaded.predict(images, verbose=0))
    model.fit(dataset, epochs=1, verbose=0)
    loaded.fit(dataset, epochs=1, verbose=0)
    _assert_same_state(model, loaded)


def test_label_kinds_are_declared():
    for name in MODELS.names():
        assert MODELS.get(name).label_kind in ("class", "attributes"), name


@pytest.mark.parametrize("name,options", _cases())
def test_config_round_trip(name, options):
    model = _build(name, options)
    config = model.get_config()
    rebuilt = type(model).from_config(config)
    assert rebuilt.get_config() == config
    assert [v.shape for v in rebuilt.variables] == [v.shape for v in model.variables]


def _snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


@pytest.mark.parametrize("name,options", _cases())
def test_one_step_moves_exactly_the_objective_variables(name, options):
    model = _build(name, options)
    model.compile(optimizer="sgd", learning_rate=1e-2)
    objectives = model.objective_variables()
    owned = {id(v) for variables in objectives.values() for v in variables}
    variables = model.trainable_variables
    before = _snapshot(variables)
    images, labels = _batch(model)
    model.train_step((tf.constant(images), tf.constant(labels)))
    changed = {id(v) for v, b in zip(variables, before) if not np.array_equal(b, v.numpy())}
    assert not changed - owned, [v.path for v in variables if id(v) in changed - owned]
    for objective, own in objectives.items():
        assert any(id(v) in changed for v in own), f"{objective}: no variable moved"


def _single_objective_cases():
    for name in MODELS.names():
        for objective in MODELS.get(name).OBJECTIVES:
            yield pytest.param(name, objective, id=f"{name}-{objective}")


@pytest.mark.parametrize("name,objective", _single_objective_cases())
def test_each_objective_moves_only_its_own_variables(name, objective):
    model = _build(name, {})
    model.compile(optimizer="sgd", learning_rate=0.0, learning_rates={objective: 1e-2})
    own = {id(v) for v in model.objective_variables()[objective]}
    variables = model.trainable_variables
    before = _snapshot(variables)
    images, labels = _batch(model)
    model.train_step((tf.constant(images), tf.constant(labels)))
    moved = [v for v, b in zip(variables, before) if not np.array_equal(b, v.numpy())]
    assert moved, f"{objective} moved nothing"
    assert all(id(v) in own for v in moved), [v.path for v in moved if id(v) not in own]


@pytest.mark.parametrize("name", MODELS.names())
def test_inference_api_shapes(name):
    model = _build(name, {})
    images, labels = _batch(model)
    if images.ndim == 5:
        images, labels = images[:, -1], labels[:, -1]
    n = images.shape[0]
    needs_labels = _is_attribute_model(model) or getattr(model, "needs_labels", False)
    label_args = (labels,) if needs_labels else ()
    if hasattr(model, "encode"):  # not the cGAN
        try:
            codes = model.encode(images, *label_args)
        except TypeError:
            codes = model.encode(images)
        assert isinstance(codes, dict) and codes
        for key, value in codes.items():
            assert value.shape[0] == n and value.shape.rank == 2, key
        recon_args = label_args if (getattr(model, "needs_attributes", False)
                                    or getattr(model, "needs_labels", False)) else ()
        assert tuple(model.reconstruct(images, *recon_args).shape) == images.shape
    if hasattr(model, "generate"):
        assert tuple(model.generate(labels, seed=1).shape) == images.shape
        np.testing.assert_array_equal(model.generate(labels, seed=1),
                                      model.generate(labels, seed=1))
