"""Deployment: SavedModel for TF Serving (one signature per use) and TFLite decoders.

* :func:`export_run` — what ``scripts/export.py`` does: a training run's ``model.keras`` to
  ``OUT/<model_name>/<version>/`` (and ``OUT/<model_name>/tflite/``), staged in a temporary
  folder and renamed into place.
* :func:`export_saved_model`, :func:`keras_lsvae.export.tflite.convert` — the same for a model
  in memory.
* What a model exports is declared per model class (:mod:`keras_lsvae.export.signatures`),
  one builder per model family: :mod:`~keras_lsvae.export.lrlivae`,
  :mod:`~keras_lsvae.export.csvae`, :mod:`~keras_lsvae.export.vae` (VAE, CondVAE,
  CondVAE-info), :mod:`~keras_lsvae.export.class_conditional` (cVAE, cVAE-GAN, cGAN), built
  from the shared pieces of :mod:`~keras_lsvae.export.common`.

See README "Serving: TF Serving and TFLite" and docs/export.md.
"""

# Importing the builders registers every model class's signatures.
from keras_lsvae.export import class_conditional, csvae, lrlivae, vae  # noqa: F401
from keras_lsvae.export.run import ExportError, export_run, next_version  # noqa: F401
from keras_lsvae.export.saved_model import export_saved_model  # noqa: F401
from keras_lsvae.export.signatures import (Arg, ExportSpec, Signature, TFLiteGraph,  # noqa: F401
                                           describe, register, spec_for)
