"""Input guards of the exported SavedModel signatures: every float input of every
signature (codes, noise, fill values as well as images and masks) refuses NaN and ±inf, and
fill values outside [0, 1] and negative row seeds are refused, as INVALID_ARGUMENT naming the
input (in-graph ``tf.debugging`` assertions, which TF Serving reports with that code), the way
the models' Python API raises a ValueError. One tiny untrained Lr-LiVAE, exported once."""

import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import export
from keras_lsvae.export.signatures import spec_for
from tests.helpers import image_batch, tiny_lrlivae

N = 2


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_lrlivae()
    path = str(tmp_path_factory.mktemp("guards") / "saved_model")
    export.export_saved_model(model, path)
    return model, tf.saved_model.load(path)


def _valid_inputs(model):
    """{signature: {input: valid tensor}} for every signature of the model's spec."""
    images, _ = image_batch(N, shape=model.example_shape, num_classes=model.num_classes)
    mask = np.zeros((1, *model.example_shape[:2], 1), np.float32)
    mask[:, :, 4:] = 1.0
    zs, zu = model.zs_dim, model.zu_dim
    values = {"images": images, "images_s": images, "images_u": images[::-1].copy(),
              "mask": mask, "fill_value": np.float32(0.5), "labels": np.array([0, 2], np.int32),
              "seed": np.array([7], np.int64), "z_s": np.zeros((N, zs), np.float32),
              "z_u": np.zeros((N, zu), np.float32),
              "noise": np.full((N, zs + zu), 0.5, np.float32)}
    return {s.name: {a.name: tf.constant(values[a.name], a.dtype) for a in s.inputs}
            for s in spec_for(model).signatures}


def _float_inputs(model):
    return [(s.name, a.name) for s in spec_for(model).signatures for a in s.inputs
            if a.dtype == "float32"]


def test_every_float_input_of_every_signature_is_exercised():
    # The parametrisation below follows the spec: a new float input is guarded or fails there.
    assert set(_float_inputs(tiny_lrlivae())) >= {
        ("generate", "noise"), ("decode", "z_s"), ("decode", "z_u"),
        ("inpaint", "fill_value")}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_float_inputs_fail_as_invalid_argument(exported, bad):
    model, loaded = exported
    valid = _valid_inputs(model)
    for signature, inputs in valid.items():
        outputs = loaded.signatures[signature](**inputs)
        for value in outputs.values():
            if value.dtype.is_floating:
                assert np.all(np.isfinite(value.numpy())), signature
    for signature, name in _float_inputs(model):
        inputs = dict(valid[signature])
        array = np.array(inputs[name].numpy())  # a copy, also of 0-d inputs
        array.flat[array.size - 1] = bad
        inputs[name] = tf.constant(array)
        # Image inputs are checked by the model's own check_batch, which names them "images".
        expected = "images" if name.startswith("images") else name
        with pytest.raises(tf.errors.InvalidArgumentError, match=f"{expected}: "):
            loaded.signatures[signature](**inputs)


@pytest.mark.parametrize("fill", [-0.5, 1.5])
def test_fill_value_outside_the_image_range_fails(exported, fill):
    model, loaded = exported
    inputs = dict(_valid_inputs(model)["inpaint"], fill_value=tf.constant(fill, tf.float32))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"fill_value: values must lie in \[0.0, 1.0\]"):
        loaded.signatures["inpaint"](**inputs)


@pytest.mark.parametrize("seed", [[-1], [-3, 4], [2**63 - 1]], ids=["negative", "one_negative",
                                                                  "overflowing"])
def test_negative_or_overflowing_row_seeds_fail(exported, seed):
    model, loaded = exported
    inputs = dict(_valid_inputs(model)["generate"], seed=tf.constant(seed, tf.int64),
                  noise=tf.zeros([0, model.zs_dim + model.zu_dim]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="seed: row seeds must be "
                                                             "non-negative"):
        loaded.signatures["generate"](**inputs)
