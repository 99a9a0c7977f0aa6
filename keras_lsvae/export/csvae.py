"""CSVAE's exports (paper B): five SavedModel signatures and two TFLite graphs.

Every graph runs the networks in inference mode and uses the posterior means, as
:class:`keras_lsvae.models.CSVAE`'s Python API does:

* ``generate`` (= ``serving_default``): attribute rows y (N, A) -> images, z ~ N(0, I),
  w_i ~ p(w_i | y_i) (§4.2), from the seeded sampler (:mod:`keras_lsvae.export.common`):
  ε has z_dim + A·w_dim values per row, z = ε[:z_dim], w = loc(y) + scale(y) ⊙ ε[z_dim:], the
  layout of ``CSVAE.generate``'s own draw;
* ``manipulate``: §4.3's G_ij(x, p) = μ_θ(μ_φ1(x), p), as ``CSVAE.manipulate(images,
  target_attributes, w)``: p = ``w`` when given, else every subspace W_i at the fitted mean of
  its target value (``CSVAE.attribute_points``: the saved ``w_statistics`` where
  ``fit_attribute_statistics`` saw that value, else the prior mean);
* ``encode`` (q(z|x) and q(w|x, y)), ``decode`` (z, w), ``reconstruct`` (images, attributes).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_lsvae.export import common
from keras_lsvae.export.signatures import Arg, ExportSpec, Signature, assert_all, register
from keras_lsvae.models.csvae import CSVAE


def _w_from_noise(model, attributes, noise):
    """w = loc(y) + scale(y) ⊙ ε (p(w | y), §4.2)."""
    loc, scale = model.prior.loc_scale(attributes)
    return loc + scale * noise


def attribute_points(model, targets):
    """``CSVAE.attribute_points`` in the graph: (N, A·w_dim), subspace i of row n at the
    fitted mean of value targets[n, i] where it was fitted, else at the prior mean."""
    counts = tf.convert_to_tensor(model.w_statistics_counts)  # (2, A)
    fitted = tf.convert_to_tensor(model.w_statistics)  # (2, A, w_dim)
    tables = [tf.where(counts[value][:, None] > 0, fitted[value],
                       tf.constant(model.prior.mean_for(value), tf.float32))
              for value in (0, 1)]
    points = tf.where(targets[..., None] == 1.0, tables[1][None], tables[0][None])
    return tf.reshape(points, [-1, model.total_w_dim])


def csvae_spec(model: CSVAE) -> ExportSpec:
    a, z_dim, w_dim = model.num_attributes, model.z_dim, model.total_w_dim
    out_images = common.images_out(model)
    images_arg = common.images_arg(model)
    attributes_arg = common.attributes_arg(a)
    targets_arg = common.attributes_arg(
        a, "target_attributes", f"Target attribute rows ({a} values in {{0, 1}}), one per "
        "image.")
    z_arg = common.code_arg("z", z_dim, "Code z (what q(z|x) keeps beside the attributes).")
    w_arg = common.code_arg("w", w_dim, f"w = concat(w_1, ..., w_{a}), {model.w_dim} values "
                            "per attribute subspace W_i.")

    def decode_codes(z, w):
        return model.decoder([z, w], training=False)

    def images_and_attributes(images, attributes, args):
        images = common.checked_images(model, images, args[0])
        attributes = common.same_rows(args[0].name, images, args[1].name,
                                      common.checked_attributes(attributes, args[1]))
        return images, attributes

    # --------------------------------------------------------------------------- generate
    def generated(attributes, noise):
        z, w = noise[:, :z_dim], _w_from_noise(model, attributes, noise[:, z_dim:])
        return {"images": decode_codes(z, w), "z": z, "w": w}

    generate_sig = common.generate_signature(
        attributes_arg, lambda attributes: common.checked_attributes(attributes, attributes_arg),
        z_dim + w_dim, f"Standard-normal noise ε per row (z = ε[:{z_dim}], w = loc(y) + "
        f"scale(y) ε[{z_dim}:]); replaces the seeds when given.", generated,
        (out_images, Arg("z", "float32", ("N", z_dim), "z ~ N(0, I), decoded."),
         Arg("w", "float32", ("N", w_dim), "w ~ p(w | y), decoded.")),
        "Images with the requested attributes (z ~ N(0, I), w_i ~ p(w_i | y_i), §4.2).")

    # ------------------------------------------------------------------------- manipulate
    manipulate_inputs = (
        images_arg, targets_arg,
        Arg("w", "float32", ("0|N", w_dim), "A point p in W per image; omitted: every W_i at "
            "the fitted mean of its target value (CSVAE.attribute_points).",
            default=np.zeros([0, w_dim], np.float32)))

    def manipulate(images, target_attributes, w):
        images, targets = images_and_attributes(images, target_attributes, manipulate_inputs)
        w = common.checked_codes(w, manipulate_inputs[2])
        rows = tf.shape(w)[0]
        given = rows > 0
        check = tf.debugging.assert_equal(
            tf.logical_or(tf.logical_not(given), rows == tf.shape(images)[0]), True,
            message="w: expected no point (the fitted means of the targets) or one per image (N)")
        w = tf.cond(given, lambda: w, lambda: attribute_points(model, targets))
        w = assert_all([check], w)
        z = model.encoder_z(images, training=False)["mean"]
        return {"images": decode_codes(z, w), "w": w}

    manipulate_sig = Signature(
        "manipulate", manipulate_inputs,
        (out_images, Arg("w", "float32", ("N", w_dim), "The point p in W used.")), manipulate,
        "§4.3's G_ij(x, p) = μ_θ(μ_φ1(x), p), as CSVAE.manipulate(images, target_attributes, w).")

    # ----------------------------------------------------------------------------- encode
    encode_inputs = (images_arg, attributes_arg)

    def encode(images, attributes):
        images, attributes = images_and_attributes(images, attributes, encode_inputs)
        q_z = model.encoder_z(images, training=False)
        q_w = model.encoder_w([images, attributes], training=False)
        return {"z": q_z["mean"], "z_mean": q_z["mean"], "z_log_var": q_z["log_var"],
                "w": q_w["mean"], "w_mean": q_w["mean"], "w_log_var": q_w["log_var"]}

    encode_sig = Signature(
        "encode", encode_inputs,
        (Arg("z", "float32", ("N", z_dim), "z = μ_φ1 (posterior mode)."),
         Arg("z_mean", "float32", ("N", z_dim), "μ of q(z|x)."),
         Arg("z_log_var", "float32", ("N", z_dim), "log σ² of q(z|x)."),
         Arg("w", "float32", ("N", w_dim), "w = μ_φ2 (posterior mode)."),
         Arg("w_mean", "float32", ("N", w_dim), "μ of q(w|x, y)."),
         Arg("w_log_var", "float32", ("N", w_dim), "log σ² of q(w|x, y).")),
        encode, "Codes of images with their attributes (as CSVAE.encode(images, attributes)).")

    # ----------------------------------------------------------------------------- decode
    def decode(z, w):
        z = common.checked_codes(z, z_arg)
        w = common.same_rows("z", z, "w", common.checked_codes(w, w_arg))
        return {"images": decode_codes(z, w)}

    decode_sig = Signature("decode", (z_arg, w_arg), (out_images,), decode,
                           "μ_θ(z, w) (as CSVAE.decode).")

    # ------------------------------------------------------------------------ reconstruct
    def reconstruct(images, attributes):
        images, attributes = images_and_attributes(images, attributes, encode_inputs)
        z = model.encoder_z(images, training=False)["mean"]
        w = model.encoder_w([images, attributes], training=False)["mean"]
        return {"images": decode_codes(z, w)}

    reconstruct_sig = Signature("reconstruct", encode_inputs, (out_images,), reconstruct,
                                "μ_θ(μ_φ1(x), μ_φ2(x, y)) (as CSVAE.reconstruct).")

    # ----------------------------------------------------------------------------- TFLite
    def sample_generator(n, rng):
        return {"attributes": rng.integers(0, 2, (n, a)).astype(np.float32),
                "noise": rng.standard_normal((n, z_dim + w_dim)).astype(np.float32)}

    def reference_generator(attributes, noise):
        w = _w_from_noise(model, tf.constant(attributes), tf.constant(noise[:, z_dim:]))
        return np.asarray(model.decode(noise[:, :z_dim], w))

    tflite = (
        common.tflite_decoder(decode_sig, out_images, decode_codes,
                              lambda z, w: np.asarray(model.decode(z, w)),
                              common.standard_normal_sample({"z": z_dim, "w": w_dim})),
        common.tflite_generator(attributes_arg, z_dim + w_dim, out_images,
                                lambda attributes, noise: generated(attributes, noise)["images"],
                                reference_generator, sample_generator),
    )
    return ExportSpec((generate_sig, manipulate_sig, encode_sig, decode_sig, reconstruct_sig),
                      tflite)


register(CSVAE)(csvae_spec)
