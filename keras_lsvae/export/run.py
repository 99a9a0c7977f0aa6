"""``export_run``: a training run's ``model.keras`` to the layout TF Serving watches.

    OUT/<model_name>/<version>/                 SavedModel (saved_model.pb, variables/, ...)
    OUT/<model_name>/<version>/assets.extra/keras_lsvae_export.json   what was exported, from where
    OUT/<model_name>/tflite/{decoder,generator}_{float32,float16,int8}.tflite  (with tflite=True)
    OUT/<model_name>/tflite/parity.json         max |TFLite − Keras| of each file

Every check (a model to export, a known model type, nothing to overwrite without ``force``)
runs before anything is written. Everything is written into a temporary folder inside
``OUT/<model_name>/`` (a name TF Serving ignores: not a number) and renamed into place only when
complete, so a failed export leaves no half-written version and replaces nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile

from keras_lsvae.export import tflite as tflite_lib
from keras_lsvae.export.saved_model import export_saved_model
from keras_lsvae.export.signatures import exportable_types, spec_for

MODEL_FILE = "model.keras"
METADATA = os.path.join("assets.extra", "keras_lsvae_export.json")


class ExportError(ValueError):
    """An export that cannot be done as asked; the message says what to change."""


def _model_class_name(model_path):
    """The registered class name stored in a ``.keras`` file, without building the model."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise ExportError(f"{model_path} is not a Keras model file ({error})") from None
    return config.get("registered_name") or config.get("class_name", "?")


def load_run_model(workdir):
    """The run's model (inference only: not compiled, so no optimizer exists)."""
    import keras

    import keras_lsvae.models  # noqa: F401  (registers the model classes for deserialisation)

    if not os.path.isdir(workdir):
        raise ExportError(f"--workdir={workdir} does not exist")
    model_path = os.path.join(workdir, MODEL_FILE)
    if not os.path.exists(model_path):
        raise ExportError(f"no {MODEL_FILE} in {workdir}: scripts/train.py writes it at the end "
                          "of a run (an unfinished run has only checkpoints)")
    class_name = _model_class_name(model_path)
    if keras.saving.get_registered_object(class_name) is None:
        raise ExportError(f"unknown model type {class_name!r} in {model_path}; exportable "
                          f"types: {', '.join(exportable_types())}")
    try:
        from keras_lsvae.evaluation import load_model  # the one run loader

        model = load_model(model_path, compile=False)
    except (ValueError, TypeError, OSError) as error:
        raise ExportError(f"cannot load {model_path}: {error}") from error
    try:
        spec_for(model)
    except TypeError as error:
        raise ExportError(f"{model_path}: {error}") from None
    return model


def next_version(base):
    """1 + the highest numeric version folder in ``base`` (1 for none)."""
    versions = [int(name) for name in (os.listdir(base) if os.path.isdir(base) else [])
                if name.isdigit()]
    return max(versions, default=0) + 1


def _replace(staged, final):
    """Move ``staged`` to ``final``; an existing ``final`` is removed only after the move."""
    old = None
    if os.path.exists(final):
        old = f"{staged}.old"
        os.rename(final, old)
    os.rename(staged, final)
    if old:
        shutil.rmtree(old)


def export_run(workdir, export_dir, version=None, tflite=False, force=False, model_name=None):
    """Export the run in ``workdir`` (module docstring); returns the paths and, with
    ``tflite``, the parity errors. Raises :class:`ExportError` for a request that cannot be
    done, before writing anything."""
    if version is not None and (not isinstance(version, int) or version < 1):
        raise ExportError(f"--version must be a positive integer, got {version!r}")
    model = load_run_model(workdir)
    spec = spec_for(model)
    model_name = model_name or model.name
    base = os.path.join(export_dir, model_name)
    version = version or next_version(base)
    targets = {"saved_model": os.path.join(base, str(version))}
    if tflite:
        targets["tflite"] = os.path.join(base, "tflite")
    existing = [path for path in targets.values() if os.path.exists(path)]
    if existing and not force:
        raise ExportError(f"already exported: {', '.join(existing)}; pass --force to replace "
                          "it" + ("" if tflite else ", or choose another --version"))

    created_base = not os.path.exists(base)
    os.makedirs(base, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=base)
    result = {"model_name": model_name, "version": version, "model_type": type(model).__name__}
    try:
        staged = {key: os.path.join(staging, key) for key in targets}
        export_saved_model(model, staged["saved_model"], spec)
        metadata = {"workdir": os.path.abspath(workdir), "model_type": type(model).__name__,
                    "signatures": [s.name for s in spec.signatures]}
        if tflite:
            flatbuffers = tflite_lib.convert(model, spec)
            errors = tflite_lib.parity(model, flatbuffers, spec)
            tflite_lib.check_float32(errors)
            os.makedirs(staged["tflite"])
            for stem, content in flatbuffers.items():
                with open(os.path.join(staged["tflite"], f"{stem}.tflite"), "wb") as f:
                    f.write(content)
            report = {"max_abs_error_vs_keras": errors, "rows": tflite_lib.PARITY_ROWS,
                      "seed": tflite_lib.PARITY_SEED, "from_version": version,
                      "float32_tolerance": tflite_lib.FLOAT32_TOLERANCE}
            with open(os.path.join(staged["tflite"], "parity.json"), "w") as f:
                json.dump(report, f, indent=1, sort_keys=True)
            result["tflite_max_abs_error"] = errors
            metadata["tflite"] = sorted(flatbuffers)
        os.makedirs(os.path.join(staged["saved_model"], "assets.extra"), exist_ok=True)
        with open(os.path.join(staged["saved_model"], METADATA), "w") as f:
            json.dump(metadata, f, indent=1)
        for key, final in targets.items():
            _replace(staged[key], final)
            result[key] = final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created_base and not os.listdir(base):
            os.rmdir(base)  # a failed first export leaves no empty model folder
    return result
