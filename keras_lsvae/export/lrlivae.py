"""Lr-LiVAE's exports: seven SavedModel signatures and two TFLite graphs.

Every graph runs the networks in inference mode (``training=False``: batch norm on its moving
statistics) and uses z_u = μ_u (the posterior mode), as the model's Python API does.

``generate`` (= ``serving_default``) draws z_s ~ N(μ_c, σ_c²) and z_u ~ N(0, I) from standard
normal noise ε (zs_dim + zu_dim values per row): z_s = μ_c + σ_c ⊙ ε[:zs_dim], z_u = ε[zs_dim:],
with the prior's own bijector, as ``LrLiVAE.sample_latents`` does. The noise is the ``noise``
input when given, else drawn without state from per-row seeds: row i's ε is
``tf.random.stateless_normal([zs_dim + zu_dim], seed=[s_i, 0])``, so an image depends only on
its label and its row seed s_i, never on the other rows of the batch or on earlier requests.
Row seeds: one ``seed`` per row, or one seed s for the whole request (rows get s, s+1, ...,
s+N-1), or none: fresh random seeds (a non-deterministic op), returned in the ``seed`` output so
that any image can be drawn again.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_lsvae import losses
from keras_lsvae.export import common
from keras_lsvae.export.common import SEED_RANGE, row_noise  # noqa: F401  (documented here)
from keras_lsvae.export.signatures import (Arg, ExportSpec, Signature, assert_all, check_finite,
                                           check_inputs, check_labels, check_same_batch,
                                           register)
from keras_lsvae.models.lrlivae import LrLiVAE


def _latents_from_noise(model, labels, noise):
    """z_s = μ_c + σ_c ⊙ ε_s (the prior component's bijector), z_u = ε_u."""
    z_s = model.prior.components(labels).bijector.forward(noise[:, :model.zs_dim])
    return z_s, noise[:, model.zs_dim:]


def _image_checks(model, images):
    """Finite values in [0, 1] (the model's own in-graph batch checks)."""
    return model.check_batch(images)[0]


def lrlivae_spec(model: LrLiVAE) -> ExportSpec:
    height, width, channels = model.example_shape
    zs, zu, k = model.zs_dim, model.zu_dim, model.num_classes
    image_shape = ("N", height, width, channels)

    def images_arg(name, doc="Images, float32 in [0, 1]."):
        return Arg(name, "float32", image_shape, doc)

    out_images = Arg("images", "float32", image_shape, "Images in [0, 1].")
    z_s_arg = Arg("z_s", "float32", ("N", zs), "Label-relevant code z_s.")
    z_u_arg = Arg("z_u", "float32", ("N", zu), "Label-irrelevant code z_u.")

    def encode_images(images):
        enc_u = model.encoder_u(images, training=False)
        return model.encoder_s(images, training=False)["z_s"], enc_u["mean"], enc_u["log_var"]

    def decode_codes(z_s, z_u):
        return model.decoder([z_s, z_u], training=False)

    # --------------------------------------------------------------------------- generate
    def generated(labels, noise):
        z_s, z_u = _latents_from_noise(model, labels, noise)
        return {"images": decode_codes(z_s, z_u), "z_s": z_s, "z_u": z_u}

    labels_arg = common.class_ids_arg(k)
    generate_sig = common.generate_signature(
        labels_arg, lambda labels: check_labels(labels, k), zs + zu,
        "Standard-normal noise ε per row (z_s = μ_c + σ_c ε[:zs], z_u = ε[zs:]); replaces the "
        "seeds when given.", generated, (out_images, z_s_arg, z_u_arg),
        "Images of the requested classes (z_s ~ N(μ_c, σ_c²), z_u ~ N(0, I)).")

    # ----------------------------------------------------------------------------- encode
    def encode(images):
        images = _image_checks(model, check_inputs({"images": images}, encode_sig.inputs)
                               ["images"])
        z_s, mean, log_var = encode_images(images)
        return {"z_s": z_s, "z_u": mean, "z_u_mean": mean, "z_u_log_var": log_var}

    encode_sig = Signature(
        "encode", (images_arg("images"),),
        (z_s_arg, Arg("z_u", "float32", ("N", zu), "z_u = μ_u (posterior mode)."),
         Arg("z_u_mean", "float32", ("N", zu), "μ_u of q(z_u|x)."),
         Arg("z_u_log_var", "float32", ("N", zu), "log σ_u² of q(z_u|x).")),
        encode, "Codes of images (as LrLiVAE.encode).")

    # ----------------------------------------------------------------------------- decode
    def decode(z_s, z_u):
        codes = {name: check_finite(code, name) for name, code in
                 check_inputs({"z_s": z_s, "z_u": z_u}, decode_sig.inputs).items()}
        z_s = assert_all([check_same_batch("z_s", z_s, "z_u", z_u)], codes["z_s"])
        return {"images": decode_codes(z_s, codes["z_u"])}

    decode_sig = Signature("decode", (z_s_arg, z_u_arg), (out_images,), decode,
                           "Decoder(concat(z_s, z_u)).")

    # ------------------------------------------------------------------------ reconstruct
    def reconstruct_images(images):
        z_s, mean, _ = encode_images(images)
        return decode_codes(z_s, mean)

    def reconstruct(images):
        images = _image_checks(model, check_inputs({"images": images}, reconstruct_sig.inputs)
                               ["images"])
        return {"images": reconstruct_images(images)}

    reconstruct_sig = Signature("reconstruct", (images_arg("images"),), (out_images,),
                                reconstruct, "decode(encode(images)).")

    # --------------------------------------------------------------------- predict_labels
    def predict_labels(images):
        images = _image_checks(model, check_inputs({"images": images},
                                                   predict_sig.inputs)["images"])
        z_s = model.encoder_s(images, training=False)["z_s"]
        probabilities = tf.nn.softmax(losses.gm_logits(z_s, model.prior.components()), axis=-1)
        return {"probabilities": probabilities,
                "labels": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    predict_sig = Signature(
        "predict_labels", (images_arg("images"),),
        (Arg("probabilities", "float32", ("N", k), "q(c | z_s) (Eq. 8)."),
         Arg("labels", "int32", ("N",), "argmax of the probabilities.")),
        predict_labels, "Class posterior under the mixture prior.")

    # ---------------------------------------------------------------------------- inpaint
    inpaint_inputs = (images_arg("images"), *common.inpaint_args(model))

    def inpaint(images, mask, fill_value):
        images, mask, corrupted = common.corrupted_images(model, images, mask, fill_value,
                                                          *inpaint_inputs[:2])
        return {"images": common.inpainted(model, images, mask, reconstruct_images(corrupted))}

    inpaint_sig = Signature("inpaint", inpaint_inputs, (out_images,), inpaint,
                            "M ⊙ reconstruct(corrupted) + (1 − M) ⊙ images (§4.5, one encoder "
                            "pass, as LrLiVAE.inpaint(method='encode')).")

    # ------------------------------------------------------------------------------- swap
    def swap(images_s, images_u):
        checked = check_inputs({"images_s": images_s, "images_u": images_u}, swap_sig.inputs)
        images_s = _image_checks(model, checked["images_s"])
        images_u = assert_all([check_same_batch("images_s", images_s, "images_u", images_u)],
                              _image_checks(model, checked["images_u"]))
        z_s = encode_images(images_s)[0]
        z_u = encode_images(images_u)[1]
        return {"images": decode_codes(z_s, z_u)}

    swap_sig = Signature(
        "swap", (images_arg("images_s", "Images giving z_s (identity)."),
                 images_arg("images_u", "Images giving z_u (style); as many as images_s.")),
        (out_images,), swap, "Decoder(z_s of images_s, z_u of images_u), pairwise (Fig. 6).")

    # ----------------------------------------------------------------------------- TFLite
    def sample_generator(n, rng):
        return {"labels": (np.arange(n) % k).astype(np.int32),
                "noise": rng.standard_normal((n, zs + zu)).astype(np.float32)}

    def reference_generator(labels, noise):
        z_s, z_u = _latents_from_noise(model, tf.constant(labels), tf.constant(noise))
        return np.asarray(model.decode(z_s, z_u))

    tflite = (
        common.tflite_decoder(decode_sig, out_images, decode_codes,
                              lambda z_s, z_u: np.asarray(model.decode(z_s, z_u)),
                              common.standard_normal_sample({"z_s": zs, "z_u": zu})),
        common.tflite_generator(labels_arg, zs + zu, out_images,
                                lambda labels, noise: decode_codes(
                                    *_latents_from_noise(model, labels, noise)),
                                reference_generator, sample_generator),
    )
    return ExportSpec((generate_sig, encode_sig, decode_sig, reconstruct_sig, predict_sig,
                       inpaint_sig, swap_sig), tflite)


register(LrLiVAE)(lrlivae_spec)
