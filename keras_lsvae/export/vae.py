"""The exports of paper B's baselines, VAE, CondVAE and CondVAE-info: five SavedModel
signatures each, and the decoder as a TFLite graph.

Every graph runs the networks in inference mode and uses the posterior mean, as the models'
Python API does (:class:`keras_lsvae.models.vae.GaussianVAEBase`). Which inputs a signature
takes follows the model's networks: q(z|x, y) (CondVAE) reads the attributes, q(z|x) (VAE,
CondVAE-info) does not; p(x|z, y) (CondVAE, CondVAE-info) decodes z with a label code.

* ``generate`` (= ``serving_default``): attribute rows (N, A) -> decode(z ~ N(0, I)[, y]) from
  the seeded sampler (:mod:`keras_lsvae.export.common`), z = ε; the VAE cannot condition: the
  attributes give the count N (and are checked), as ``VAE.generate``;
* ``manipulate``: paper B §4.3's G_ij. VAE: decode(μ_φ(x) + (t − y)(M¹ − M⁰)) with the saved
  per-attribute means (``VAE.manipulate(images, attributes, target_attributes)``; a request
  fails as INVALID_ARGUMENT when a changed attribute has a value without a fitted mean).
  CondVAE / CondVAE-info: decode(μ_φ(x[, y]), p·t) with the scale p (``scale``, default 1;
  ``manipulate(images, attributes, target_attributes, scale)``); CondVAE-info's q(z|x) does
  not read the source attributes, so its signature has no ``attributes`` input;
* ``encode``, ``decode``, ``reconstruct``: as the Python methods.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_lsvae.export import common
from keras_lsvae.export.signatures import (Arg, ExportSpec, Signature, assert_all, check_finite,
                                           register)
from keras_lsvae.models.condvae import CondVAE
from keras_lsvae.models.condvae_info import CondVAEInfo
from keras_lsvae.models.vae import VAE


def _signatures(model):
    """The signatures every GaussianVAEBase model shares, and the pieces ``manipulate`` uses:
    {"generate", "encode", "decode", "reconstruct": Signature, "parts": {...}}."""
    a, z_dim = model.num_attributes, model.z_dim
    out_images = common.images_out(model)
    images_arg = common.images_arg(model)
    attributes_arg = common.attributes_arg(a)
    z_arg = common.code_arg("z", z_dim, "Latent code z.")
    code_arg = common.code_arg("attributes", a, "Label code decoded with z: real values (§4.3 "
                               "decodes the scaled target p·t).")

    def decode_codes(z, codes=None):
        return model.decoder(model._decoder_inputs(z, codes), training=False)

    def checked_pair(images, attributes, args):
        images = common.checked_images(model, images, args[0])
        attributes = common.same_rows(args[0].name, images, args[1].name,
                                      common.checked_attributes(attributes, args[1]))
        return images, attributes

    def posterior(images, attributes=None):
        return model.encoder(model._encoder_inputs(images, attributes), training=False)

    # --------------------------------------------------------------------------- generate
    def generated(attributes, noise):
        return {"images": decode_codes(noise, attributes if model.condition_decoder else None),
                "z": noise}

    conditional = "decode(z ~ N(0, I), y)" if model.condition_decoder else (
        "decode(z ~ N(0, I)); the VAE cannot condition: the attributes give the count N")
    generate_sig = common.generate_signature(
        attributes_arg, lambda attributes: common.checked_attributes(attributes, attributes_arg),
        z_dim, "Standard-normal noise ε per row (z = ε); replaces the seeds when given.",
        generated, (out_images, Arg("z", "float32", ("N", z_dim), "The code z decoded.")),
        f"Images for the requested attribute rows: {conditional}.")

    # ----------------------------------------------------------------------------- encode
    encode_inputs = (images_arg, attributes_arg) if model.condition_encoder else (images_arg,)

    def checked_encoder_inputs(values, args):
        if model.condition_encoder:
            return checked_pair(values[args[0].name], values[args[1].name], args)
        return common.checked_images(model, values[args[0].name], args[0]), None

    def encode(**values):
        q = posterior(*checked_encoder_inputs(values, encode_inputs))
        return {"z": q["mean"], "z_mean": q["mean"], "z_log_var": q["log_var"]}

    given = "x, y" if model.condition_encoder else "x"
    encode_sig = Signature(
        "encode", encode_inputs,
        (Arg("z", "float32", ("N", z_dim), "z = μ (posterior mode)."),
         Arg("z_mean", "float32", ("N", z_dim), f"μ of q(z|{given})."),
         Arg("z_log_var", "float32", ("N", z_dim), f"log σ² of q(z|{given}).")),
        encode, f"Codes of images (as {type(model).__name__}.encode).")

    # ----------------------------------------------------------------------------- decode
    decode_inputs = (z_arg, code_arg) if model.condition_decoder else (z_arg,)

    def decode(**values):
        z = common.checked_codes(values["z"], z_arg)
        codes = None
        if model.condition_decoder:
            codes = common.same_rows("z", z, "attributes",
                                     common.checked_codes(values["attributes"], code_arg))
        return {"images": decode_codes(z, codes)}

    decode_sig = Signature("decode", decode_inputs, (out_images,), decode,
                           "μ_θ(z, attributes)." if model.condition_decoder else "μ_θ(z).")

    # ------------------------------------------------------------------------ reconstruct
    reconstruct_inputs = ((images_arg, attributes_arg) if model.needs_attributes
                          else (images_arg,))

    def reconstruct(**values):
        if model.needs_attributes:
            images, attributes = checked_pair(values["images"], values["attributes"],
                                              reconstruct_inputs)
        else:
            images, attributes = common.checked_images(model, values["images"],
                                                       images_arg), None
        mean = posterior(images, attributes if model.condition_encoder else None)["mean"]
        return {"images": decode_codes(mean, attributes)}

    reconstruct_sig = Signature("reconstruct", reconstruct_inputs, (out_images,), reconstruct,
                                "Decode the posterior mean (as reconstruct).")

    # ----------------------------------------------------------------------------- TFLite
    def sample_decoder(n, rng):
        sample = {"z": rng.standard_normal((n, z_dim)).astype(np.float32)}
        if model.condition_decoder:
            sample["attributes"] = rng.integers(0, 2, (n, a)).astype(np.float32)
        return sample

    tflite = (common.tflite_decoder(
        decode_sig, out_images, lambda **v: decode_codes(v["z"], v.get("attributes")),
        lambda **v: np.asarray(model.decode(v["z"], v.get("attributes"))), sample_decoder),)
    return {"generate": generate_sig, "encode": encode_sig, "decode": decode_sig,
            "reconstruct": reconstruct_sig, "tflite": tflite,
            "parts": dict(images_arg=images_arg, attributes_arg=attributes_arg,
                          out_images=out_images, checked_pair=checked_pair,
                          posterior=posterior, decode_codes=decode_codes)}


def _spec(shared, manipulate_sig):
    return ExportSpec((shared["generate"], manipulate_sig, shared["encode"], shared["decode"],
                       shared["reconstruct"]), shared["tflite"])


def _targets_arg(model):
    a = model.num_attributes
    return common.attributes_arg(a, "target_attributes", f"Target attribute rows ({a} values "
                                 "in {0, 1}), one per image.")


def vae_spec(model: VAE) -> ExportSpec:
    shared = _signatures(model)
    parts = shared["parts"]
    inputs = (parts["images_arg"], parts["attributes_arg"], _targets_arg(model))

    def manipulate(images, attributes, target_attributes):
        images, attributes = parts["checked_pair"](images, attributes, inputs[:2])
        targets = parts["checked_pair"](images, target_attributes, (inputs[0], inputs[2]))[1]
        counts = tf.convert_to_tensor(model.attribute_counts)  # (2, A)
        means = tf.convert_to_tensor(model.attribute_means)  # (2, A, z_dim)
        unknown = tf.logical_or(counts[0] == 0, counts[1] == 0)[None, :]
        checks = [
            tf.debugging.assert_equal(tf.reduce_any(counts > 0), True, message=(
                "manipulate: the model has no attribute means (VAE.fit_attribute_statistics, "
                "which training runs at its end)")),
            tf.debugging.assert_equal(
                tf.reduce_any(tf.logical_and(tf.not_equal(targets, attributes), unknown)),
                False, message="target_attributes: a changed attribute has a value that no "
                               "fitted example had: its mean m^v is unknown")]
        shift = assert_all(checks, tf.matmul(targets - attributes, means[1] - means[0]))
        z = parts["posterior"](images)["mean"] + shift
        return {"images": parts["decode_codes"](z)}

    return _spec(shared, Signature(
        "manipulate", inputs, (parts["out_images"],), manipulate,
        "§4.3's G_ij for the VAE: decode(μ_φ(x) + (t − y)(M¹ − M⁰)), as "
        "VAE.manipulate(images, attributes, target_attributes)."))


def conditional_vae_spec(model) -> ExportSpec:
    """CondVAE and CondVAE-info (``capabilities.ScalesManipulation``: G_ij with a scale p)."""
    shared = _signatures(model)
    parts = shared["parts"]
    sources = (parts["attributes_arg"],) if model.condition_encoder else ()
    inputs = (parts["images_arg"], *sources, _targets_arg(model),
              Arg("scale", "float32", (), "p: the target row is decoded as p·t (§4.3, §5.4 "
                  "sets p = 1).", default=np.float32(1.0)))

    def manipulate(**values):
        images_arg = inputs[0]
        if model.condition_encoder:
            images, attributes = parts["checked_pair"](values["images"], values["attributes"],
                                                       inputs[:2])
        else:
            images, attributes = common.checked_images(model, values["images"],
                                                       images_arg), None
        targets = parts["checked_pair"](images, values["target_attributes"],
                                        (images_arg, inputs[-2]))[1]
        scale = check_finite(values["scale"], "scale")
        z = parts["posterior"](images, attributes)["mean"]
        return {"images": parts["decode_codes"](z, scale * targets)}

    source = "y" if model.condition_encoder else "the images alone"
    call = ("images, attributes, target_attributes, scale" if model.condition_encoder
            else "images, None, target_attributes, scale")
    return _spec(shared, Signature(
        "manipulate", inputs, (parts["out_images"],), manipulate,
        f"§4.3's G_ij: decode(μ_φ(x) encoded with {source}, p·t), as "
        f"{type(model).__name__}.manipulate({call})."))


register(VAE)(vae_spec)
register(CondVAE)(conditional_vae_spec)
register(CondVAEInfo)(conditional_vae_spec)
