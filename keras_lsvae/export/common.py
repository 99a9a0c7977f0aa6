"""Building blocks of the per-model export builders (``export/lrlivae.py``, ``csvae.py``,
``vae.py``, ``class_conditional.py``): documented arguments, in-graph input checks, the seeded
sampler behind every ``generate`` signature, the inpainting inputs and the TFLite graphs.

Every check runs in the graph (``tf.debugging`` assertions, reported by TF Serving as
``INVALID_ARGUMENT`` with a message that names the input): documented sizes
(:func:`keras_lsvae.export.signatures.check_shape`), images through the model's own
``check_batch`` (finite, in [0, 1]), real-valued codes finite, class ids in [0, K), attribute
rows in {0, 1}, and inputs that pair row by row with the same number of rows N.

The seeded sampler (docs/export.md, "The seeded sampler"): a ``generate`` signature takes the
requested labels (class ids or attribute rows), optional row seeds and optional standard-normal
noise ε. Row i's ε is ``tf.random.stateless_normal([dim], seed=[s_i, 0])``, so an image depends
only on its label and its row seed; row seeds are one per row, one for the request (rows get
s, s+1, ..., s+N-1) or none (fresh random seeds, returned in the ``seed`` output); given
``noise`` replaces the seeds (then ``seed`` returns -1). Each model maps (labels, ε) to its
codes the way its Python ``generate`` maps its own N(0, I) draw.
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np
import tensorflow as tf

from keras_lsvae.export.signatures import (Arg, Signature, TFLiteGraph, assert_all,
                                           check_finite, check_labels, check_range,
                                           check_same_batch, check_shape)

#: Random row seeds (when the request has none) lie in [0, SEED_RANGE).
SEED_RANGE = 2**31 - 1


# ------------------------------------------------------------------------------ arguments
def example_shape(model):
    return ("N", *model.example_shape)


def images_arg(model, name="images", doc=None):
    if doc is None:
        doc = "Images, float32 in [0, 1]." if model.is_image else "Examples, float32."
    return Arg(name, "float32", example_shape(model), doc)


def images_out(model):
    return Arg("images", "float32", example_shape(model),
               "Images in [0, 1]." if model.is_image else "Decoded examples.")


def class_ids_arg(num_classes, doc=None, optional=False):
    doc = doc or f"Class ids in [0, {num_classes})."
    if optional:
        return Arg("labels", "int32", ("0|N",), doc, default=np.zeros([0], np.int32))
    return Arg("labels", "int32", ("N",), doc)


def attributes_arg(num_attributes, name="attributes", doc=None):
    return Arg(name, "float32", ("N", num_attributes),
               doc or f"Attribute rows, {num_attributes} values in {{0, 1}} each.")


def code_arg(name, dim, doc, rows="N"):
    return Arg(name, "float32", (rows, dim), doc)


# ------------------------------------------------------------------------- in-graph checks
def checked_images(model, images, arg):
    """Images with the documented size and the model's own batch checks (finite, [0, 1])."""
    return model.check_batch(check_shape(images, arg))[0]


def checked_codes(tensor, arg):
    """A real-valued input with the documented size, every value finite."""
    return check_finite(check_shape(tensor, arg), arg.name)


def check_binary(tensor, name):
    """Values in {0, 1} (NaN fails too), asserted in the graph."""
    ok = tf.reduce_all(tf.logical_or(tf.equal(tensor, 0.0), tf.equal(tensor, 1.0)))
    return assert_all([tf.debugging.assert_equal(
        ok, True, message=f"{name}: values must be 0 or 1 (found another value or NaN)")],
        tensor)


def checked_attributes(tensor, arg):
    """{0, 1} attribute rows with the documented size."""
    return check_binary(check_shape(tensor, arg), arg.name)


def same_rows(first_name, first, name, tensor):
    """``tensor`` after asserting it has as many rows as ``first``."""
    return assert_all([check_same_batch(first_name, first, name, tensor)], tensor)


def checked_class_ids(labels, num_classes, images=None, images_name="images"):
    """Class ids in [0, K) (and, given ``images``, one per image)."""
    labels = check_labels(labels, num_classes)
    if images is not None:
        labels = same_rows(images_name, images, "labels", labels)
    return labels


def optional_class_ids(labels, num_classes, images, predict):
    """Class ids given one per image, or none (0 rows): ``predict(images)``'s."""
    given = tf.size(labels) > 0
    checks = [tf.debugging.assert_equal(
        tf.logical_or(tf.logical_not(given), tf.shape(labels)[0] == tf.shape(images)[0]), True,
        message="labels: expected no labels (predicted) or one per image (N)")]
    labels = assert_all(checks, check_labels(labels, num_classes))
    return tf.cond(given, lambda: labels, lambda: predict(images))


# -------------------------------------------------------------------------------- sampler
def seed_arg():
    return Arg("seed", "int64", ("0|1|N",), "Row seeds: none (random), one for the request "
               "(rows get seed, seed+1, ...) or one per row.", default=np.zeros([0], np.int64))


def noise_arg(dim, doc):
    return Arg("noise", "float32", ("0|N", dim), doc, default=np.zeros([0, dim], np.float32))


def row_seeds(seed, n):
    """N row seeds from 0, 1 or N given ones (module docstring)."""
    size = tf.size(seed)
    check = tf.debugging.assert_equal(
        tf.reduce_any(tf.stack([size == 0, size == 1, size == n])), True,
        message="seed: expected no seed, one seed for the request, or one per row (N)")
    n64 = tf.cast(n, tf.int64)
    fresh = tf.raw_ops.RandomUniformInt(shape=tf.reshape(n, [1]), minval=tf.constant(0, tf.int64),
                                        maxval=tf.constant(SEED_RANGE, tf.int64), seed=0, seed2=0)
    seeds = tf.cond(size == 0, lambda: fresh,
                    lambda: tf.cond(size == 1,
                                    lambda: seed[0] + tf.range(n64, dtype=tf.int64),
                                    lambda: seed))
    # Negative row seeds are refused like the Python API's (-1 marks rows drawn from the given
    # noise in the output); seed + N - 1 overflowing int64 would come out negative too.
    given = tf.debugging.assert_non_negative(
        seed, message="seed: row seeds must be non-negative integers")
    rows = tf.debugging.assert_non_negative(
        seeds, message="seed: row seeds must be non-negative integers (seed + N - 1 overflows)")
    return assert_all([check, given, rows], seeds)


def row_noise(seeds, dim):
    """Row i: ``tf.random.stateless_normal([dim], seed=[seeds[i], 0])``."""
    return tf.map_fn(lambda s: tf.random.stateless_normal([dim], seed=tf.stack([s, 0])), seeds,
                     fn_output_signature=tf.TensorSpec([dim], tf.float32))


def sampled_noise(n, seed, noise, arg: Arg):
    """(ε (N, dim), row seeds (N,), -1 where ``noise`` was given) for N requested rows."""
    dim = arg.shape[-1]
    noise = check_finite(check_shape(noise, arg), "noise")
    rows = tf.shape(noise)[0]
    check = tf.debugging.assert_equal(
        tf.logical_or(rows == 0, rows == n), True,
        message="noise: expected no noise or one row per label (N rows)")
    seeds = row_seeds(seed, n)
    given = rows > 0
    noise = tf.cond(given, lambda: noise, lambda: row_noise(seeds, dim))
    noise = assert_all([check], noise)
    seeds = tf.where(given, tf.fill(tf.shape(seeds), tf.constant(-1, tf.int64)), seeds)
    return noise, seeds


def generate_signature(label_arg: Arg, check_label: Callable, noise_dim: int, noise_doc: str,
                       decode_noise: Callable[..., Dict[str, tf.Tensor]],
                       outputs: Sequence[Arg], doc: str) -> Signature:
    """A seeded ``generate`` signature (module docstring): inputs ``label_arg``, ``seed``,
    ``noise``; ``decode_noise(labels, noise) -> {"images", codes...}`` (``outputs``: their
    documented args, images first), then the ``noise`` and ``seed`` used."""
    inputs = (label_arg, seed_arg(), noise_arg(noise_dim, noise_doc))

    def generate(**values):
        labels = check_label(values[label_arg.name])
        noise, seeds = sampled_noise(tf.shape(labels)[0], values["seed"], values["noise"],
                                     inputs[2])
        result = dict(decode_noise(labels, noise))
        result.update(noise=noise, seed=seeds)
        return result

    return Signature(
        "generate", inputs,
        (*outputs, Arg("noise", "float32", ("N", noise_dim), "The noise ε used."),
         Arg("seed", "int64", ("N",), "Row seeds used (-1 where noise was given).")),
        generate, doc)


# ------------------------------------------------------------------------------ inpainting
def inpaint_args(model):
    """(mask, fill_value) arguments of an ``inpaint`` signature."""
    height, width, channels = model.example_shape
    return (Arg("mask", "float32", ("1|N", height, width, "1|C"),
                f"1 = missing pixel, 0 = kept (C = {channels}); one mask for all or one per "
                f"image."),
            Arg("fill_value", "float32", (), "Value of the missing pixels before encoding.",
                default=np.float32(0.0)))


def corrupted_images(model, images, mask, fill_value, images_arg_, mask_arg):
    """(checked images, checked mask, images with the missing pixels set to ``fill_value``):
    the start of every model's ``inpaint`` (``LabelSplitModel.masked_input``)."""
    channels = model.example_shape[-1]
    checked = {"images": check_shape(images, images_arg_), "mask": check_shape(mask, mask_arg)}
    images = model.check_batch(checked["images"])[0]
    mask = checked["mask"]
    masks, channel = tf.shape(mask)[0], tf.shape(mask)[3]
    checks = [
        tf.debugging.assert_equal(tf.logical_or(masks == 1, masks == tf.shape(images)[0]),
                                  True, message="mask: expected 1 or N masks"),
        tf.debugging.assert_equal(tf.logical_or(channel == 1, channel == channels), True,
                                  message=f"mask: expected 1 or {channels} channels"),
        tf.debugging.assert_equal(
            tf.reduce_all(tf.logical_or(tf.equal(mask, 0.0), tf.equal(mask, 1.0))), True,
            message="mask: values must be 0 (kept) or 1 (missing)")]
    mask = assert_all(checks, mask)
    fill_value = check_range(check_finite(fill_value, "fill_value"), "fill_value", 0.0, 1.0)
    return images, mask, images * (1.0 - mask) + fill_value * mask


def inpainted(model, images, mask, reconstruction):
    """M ⊙ reconstruction + (1 − M) ⊙ images."""
    result = mask * reconstruction + (1.0 - mask) * images
    return tf.ensure_shape(result, [None, *model.example_shape])


# -------------------------------------------------------------------------------- TFLite
def standard_normal_sample(dims: Dict[str, int]):
    """``sample(n, rng)`` for TFLite parity: standard-normal (n, dim) codes per input."""

    def sample(n, rng):
        return {name: rng.standard_normal((n, dim)).astype(np.float32)
                for name, dim in dims.items()}

    return sample


def tflite_decoder(decode_sig: Signature, images_arg_: Arg, decode_fn, reference, sample):
    """The ``decoder`` graph: the SavedModel ``decode`` signature's inputs, no checks."""
    return TFLiteGraph("decoder", Signature("decode", decode_sig.inputs, (images_arg_,),
                                            lambda **v: {"images": decode_fn(**v)}),
                       reference=reference, sample=sample)


def tflite_generator(label_arg: Arg, noise_dim: int, images_arg_: Arg, generate_fn, reference,
                     sample):
    """The ``generator`` graph: (labels or attributes, noise ε (N, dim)) -> images, as the
    SavedModel ``generate`` with the same ``noise``."""
    inputs = (label_arg, Arg("noise", "float32", ("N", noise_dim)))
    return TFLiteGraph("generator", Signature(
        "generate", inputs, (images_arg_,),
        lambda **v: {"images": generate_fn(v[label_arg.name], v["noise"])}),
        reference=reference, sample=sample)
