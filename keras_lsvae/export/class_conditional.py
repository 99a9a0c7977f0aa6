"""The exports of paper A's baselines, cVAE, cVAE-GAN and cGAN: ``generate`` and ``decode``
for all three, ``encode``, ``reconstruct`` and ``inpaint`` where the model has an encoder
(``capabilities.Encodes``, ``Reconstructs``, ``Inpaints``), ``predict_labels`` where it has a
classifier (``capabilities.PredictsLabels``); TFLite: the decoder (z, labels) and the
generator (labels, noise).

Every graph runs the networks in inference mode and uses the posterior mean, as
:class:`keras_lsvae.models.cvae.ClassConditionalModel`'s Python API does:

* ``generate`` (= ``serving_default``): class ids (N,) -> G(z, one-hot c) with z = ε from the
  seeded sampler (:mod:`keras_lsvae.export.common`), paper A §4.2's sampling, as ``generate``;
* ``encode``, ``reconstruct``, ``inpaint`` take the class ids: required where the encoder
  q(z|x, c) needs them (cVAE), optional where the model predicts them (cVAE-GAN: C's argmax on
  the images, or on the corrupted images for ``inpaint``, as ``_labels_or_predicted``); the
  labels used are then an output too. ``inpaint`` is one encoder pass,
  M ⊙ reconstruct(corrupted) + (1 − M) ⊙ x (``inpaint(images, mask, labels, fill_value)``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_lsvae.export import common
from keras_lsvae.export.signatures import Arg, ExportSpec, Signature, register
from keras_lsvae.models import capabilities as caps
from keras_lsvae.models.cgan import CGAN
from keras_lsvae.models.cvae import CVAE
from keras_lsvae.models.cvaegan import CVAEGAN


def class_conditional_spec(model) -> ExportSpec:
    k, z_dim = model.num_classes, model.latent_dim
    out_images = common.images_out(model)
    images_arg = common.images_arg(model)
    labels_arg = common.class_ids_arg(k)
    z_arg = common.code_arg("z", z_dim, "Latent code z.")
    predicts = caps.supports(model, caps.PredictsLabels)
    # Labels where the encoder runs: required (cVAE) or predicted by the classifier (cVAE-GAN).
    given_arg = (common.class_ids_arg(k, f"Class ids in [0, {k}), one per image; omitted: "
                                         "predicted by the classifier C.", optional=True)
                 if predicts and not model.needs_labels
                 else common.class_ids_arg(k, f"Class ids in [0, {k}), one per image."))
    used_labels = Arg("labels", "int32", ("N",), "Class ids used (given, or predicted by C).")

    def one_hot(labels):
        return tf.one_hot(labels, k, dtype=tf.float32)

    def decode_codes(z, labels):
        return model._decode_batch(z, one_hot(labels))

    def probabilities(images):
        return tf.nn.softmax(model.classifier(images, training=False)["logits"], axis=-1)

    def predicted(images):
        return tf.argmax(probabilities(images), axis=-1, output_type=tf.int32)

    def labels_for(images, labels, labels_of=None):
        """The class ids to encode ``images`` with (``labels_of``: what C reads if none)."""
        if given_arg.optional:
            return common.optional_class_ids(labels, k, images if labels_of is None
                                             else labels_of, predicted)
        return common.checked_class_ids(labels, k, images)

    def with_labels(outputs, labels):
        if given_arg.optional:
            outputs["labels"] = labels
        return outputs

    def posterior(images, labels):
        return model.encoder([images, one_hot(labels)], training=False)

    # --------------------------------------------------------------------------- generate
    def generated(labels, noise):
        return {"images": decode_codes(noise, labels), "z": noise}

    signatures = [common.generate_signature(
        labels_arg, lambda labels: common.checked_class_ids(labels, k), z_dim,
        "Standard-normal noise ε per row (z = ε); replaces the seeds when given.", generated,
        (out_images, Arg("z", "float32", ("N", z_dim), "The code z decoded.")),
        "Images of the requested classes: G(z ~ N(0, I), one-hot c) (paper A §4.2).")]

    # ----------------------------------------------------------------------------- encode
    labels_out = (used_labels,) if given_arg.optional else ()
    if caps.supports(model, caps.Encodes):
        def encode(images, labels):
            images = common.checked_images(model, images, images_arg)
            labels = labels_for(images, labels)
            q = posterior(images, labels)
            return with_labels({"z": q["mean"], "z_mean": q["mean"],
                                "z_log_var": q["log_var"]}, labels)

        signatures.append(Signature(
            "encode", (images_arg, given_arg),
            (Arg("z", "float32", ("N", z_dim), "z = μ (posterior mode)."),
             Arg("z_mean", "float32", ("N", z_dim), "μ of q(z|x, c)."),
             Arg("z_log_var", "float32", ("N", z_dim), "log σ² of q(z|x, c)."), *labels_out),
            encode, f"Codes of images (as {type(model).__name__}.encode(images, labels))."))

    # ----------------------------------------------------------------------------- decode
    decode_inputs = (z_arg, Arg("labels", "int32", ("N",), f"Class ids in [0, {k}), one per "
                                                           "code."))

    def decode(z, labels):
        z = common.checked_codes(z, z_arg)
        return {"images": decode_codes(z, common.checked_class_ids(labels, k, z, "z"))}

    decode_sig = Signature("decode", decode_inputs, (out_images,), decode,
                           "G(concat(z, one-hot c)) (as decode).")
    signatures.append(decode_sig)

    # ------------------------------------------------------------------------ reconstruct
    def reconstructed(images, labels):
        return decode_codes(posterior(images, labels)["mean"], labels)

    if caps.supports(model, caps.Reconstructs):
        def reconstruct(images, labels):
            images = common.checked_images(model, images, images_arg)
            labels = labels_for(images, labels)
            return with_labels({"images": reconstructed(images, labels)}, labels)

        signatures.append(Signature(
            "reconstruct", (images_arg, given_arg), (out_images, *labels_out), reconstruct,
            "G(μ_φ(x, c), c): decode the posterior mean with the same labels."))

    # ---------------------------------------------------------------------- predict_labels
    if predicts:
        def predict_labels(images):
            p = probabilities(common.checked_images(model, images, images_arg))
            return {"probabilities": p,
                    "labels": tf.argmax(p, axis=-1, output_type=tf.int32)}

        signatures.append(Signature(
            "predict_labels", (images_arg,),
            (Arg("probabilities", "float32", ("N", k), "P(c | x) of the classifier C."),
             Arg("labels", "int32", ("N",), "argmax of the probabilities.")),
            predict_labels, "Class posterior of the classifier C (as predict_labels)."))

    # ---------------------------------------------------------------------------- inpaint
    if caps.supports(model, caps.Inpaints):
        mask_arg, fill_arg = common.inpaint_args(model)
        inpaint_inputs = (images_arg, mask_arg, given_arg, fill_arg)

        def inpaint(images, mask, labels, fill_value):
            images, mask, corrupted = common.corrupted_images(model, images, mask, fill_value,
                                                              images_arg, mask_arg)
            labels = labels_for(images, labels, labels_of=corrupted)
            result = common.inpainted(model, images, mask, reconstructed(corrupted, labels))
            return with_labels({"images": result}, labels)

        signatures.append(Signature(
            "inpaint", inpaint_inputs, (out_images, *labels_out), inpaint,
            "M ⊙ reconstruct(corrupted, c) + (1 − M) ⊙ images (one encoder pass, as "
            "inpaint(images, mask, labels, fill_value))."))

    # ----------------------------------------------------------------------------- TFLite
    def sample_decoder(n, rng):
        return {"z": rng.standard_normal((n, z_dim)).astype(np.float32),
                "labels": (np.arange(n) % k).astype(np.int32)}

    def sample_generator(n, rng):
        return {"labels": (np.arange(n) % k).astype(np.int32),
                "noise": rng.standard_normal((n, z_dim)).astype(np.float32)}

    tflite = (
        common.tflite_decoder(decode_sig, out_images, decode_codes,
                              lambda z, labels: np.asarray(model.decode(z, labels)),
                              sample_decoder),
        common.tflite_generator(labels_arg, z_dim, out_images, lambda labels, noise:
                                decode_codes(noise, labels),
                                lambda labels, noise: np.asarray(model.decode(noise, labels)),
                                sample_generator),
    )
    return ExportSpec(tuple(signatures), tflite)


for _model_class in (CVAE, CVAEGAN, CGAN):
    register(_model_class)(class_conditional_spec)
