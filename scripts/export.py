"""Export a finished training run for TF Serving (and TFLite): flags -> keras_lsvae.export.

    python scripts/export.py --workdir=runs/digits --export_dir=exported
    python scripts/export.py --workdir=runs/digits --export_dir=exported --version=2 --tflite

Writes OUT/<model_name>/<version>/ (a SavedModel with one signature per use; the version
defaults to one more than the highest there) and, with --tflite,
OUT/<model_name>/tflite/<graph>_{float32,float16,int8}.tflite (the decoder, and a generator for
the models that have one) after checking them against Keras. Every registered model exports.
Nothing existing is replaced without --force. See docs/export.md.
"""

import json

from absl import app, flags, logging

flags.DEFINE_string("workdir", None, "Run directory written by scripts/train.py (model.keras).")
flags.DEFINE_string("export_dir", None, "Base directory: OUT/<model_name>/<version>/.")
flags.DEFINE_integer("version", None, "Version folder (positive integer); default: one more "
                     "than the highest existing one, or 1.")
flags.DEFINE_string("model_name", None, "Model name for TF Serving; default: the model's "
                    "registered name (lrlivae, csvae, cvae, ...).")
flags.DEFINE_bool("tflite", False, "Also convert the decoder (and the generator, where the "
                  "model has one) to TFLite.")
flags.DEFINE_bool("force", False, "Replace an existing version (and tflite/ folder).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # TF's SavedModel writer logs every step at INFO
    from keras_lsvae.cli import run_or_exit  # imported late: TF after flags
    from keras_lsvae.export import ExportError, export_run

    result = run_or_exit(export_run, FLAGS.workdir, FLAGS.export_dir, version=FLAGS.version,
                         tflite=FLAGS.tflite, force=FLAGS.force, model_name=FLAGS.model_name,
                         errors=(ExportError,))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir", "export_dir"])
    app.run(main)
