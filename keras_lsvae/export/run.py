"""``export_run``: a training run's ``model.keras`` to the layout TF Serving watches.

    OUT/<model_name>/<version>/                 SavedModel (saved_model.pb, variables/, ...)
    OUT/<model_name>/<version>/assets.extra/keras_lsvae_export.json   what was exported, from where
    OUT/<model_name>/tflite/<graph>_{float32,float16,int8}.tflite  (with tflite=True; graphs:
                                                the spec's, e.g. decoder, generator)
    OUT/<model_name>/tflite/parity.json         max |TFLite − Keras| of each file

Every check (a model to export, a known model type, a ``model_name`` that stays inside
``OUT``, nothing to overwrite without ``force``) runs before anything is written. Everything is
written into a staging folder ``OUT/<model_name>/.tmp-export-*`` (a name TF Serving ignores: not
a number), fsynced, and renamed into place only when complete, so a failed or killed export
leaves no half-written version and replaces nothing. Choosing the version and writing it is one
step: the complete staged SavedModel is renamed to ``<version>``, and if another export claimed
that number in the meantime (two exports into the same folder at once) the next free one is
taken, so concurrent exports get distinct versions and none is silently replaced.
"""

from __future__ import annotations

import json
import os
import zipfile

from keras_lsvae import io
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


def check_model_name(model_name):
    """``model_name`` must be one plain folder name: with a path separator, ``..`` or an
    absolute path the export would be written outside ``--export_dir``."""
    name = str(model_name)
    separators = [sep for sep in (os.sep, os.altsep, "/", "\\") if sep]
    if (not name.strip() or name in (".", "..") or os.path.isabs(name) or "\0" in name
            or any(sep in name for sep in separators) or name.startswith(io.TMP_PREFIX)):
        raise ExportError(f"--model_name={model_name!r} must be a plain folder name inside "
                          "--export_dir (no path separator, '..', absolute path or '.tmp-' "
                          "prefix)")
    return name


def _claim_version(staged, base, version, requested, force):
    """Rename the complete ``staged`` SavedModel to ``base/<version>``; returns the version.
    A ``requested`` one is replaced with ``force``, else refused if taken; a chosen one that
    another export took in the meantime moves on to the next free number."""
    if requested is not None:
        final = os.path.join(base, str(requested))
        if force:
            io.replace_directory(staged, final)
            return requested
        try:
            io.claim_directory(staged, final)
        except FileExistsError:
            raise ExportError(f"already exported: {final}; pass --force to replace it, or "
                              "choose another --version") from None
        return requested
    while True:
        try:
            io.claim_directory(staged, os.path.join(base, str(version)))
            return version
        except FileExistsError:
            version = max(version + 1, next_version(base))


def export_run(workdir, export_dir, version=None, tflite=False, force=False, model_name=None):
    """Export the run in ``workdir`` (module docstring); returns the paths and, with
    ``tflite``, the parity errors. Raises :class:`ExportError` for a request that cannot be
    done, before writing anything."""
    if version is not None and (not isinstance(version, int) or version < 1):
        raise ExportError(f"--version must be a positive integer, got {version!r}")
    if model_name is not None:
        check_model_name(model_name)
    model = load_run_model(workdir)
    spec = spec_for(model)
    model_name = check_model_name(model_name or model.name)
    base = os.path.join(export_dir, model_name)
    requested = version
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
    result = {"model_name": model_name, "version": version, "model_type": type(model).__name__}
    try:
        with io.staging_directory(base, "export") as staging:
            staged = {key: os.path.join(staging, key) for key in targets}
            export_saved_model(model, staged["saved_model"], spec)
            metadata = {"workdir": os.path.abspath(workdir), "model_type": type(model).__name__,
                        "signatures": [s.name for s in spec.signatures]}
            errors = None
            if tflite:
                flatbuffers = tflite_lib.convert(model, spec)
                errors = tflite_lib.parity(model, flatbuffers, spec)
                tflite_lib.check_float32(errors)
                os.makedirs(staged["tflite"])
                for stem, content in flatbuffers.items():
                    io.atomic_write_bytes(os.path.join(staged["tflite"], f"{stem}.tflite"),
                                          content)
                result["tflite_max_abs_error"] = errors
                metadata["tflite"] = sorted(flatbuffers)
            os.makedirs(os.path.join(staged["saved_model"], "assets.extra"), exist_ok=True)
            io.atomic_write_json(os.path.join(staged["saved_model"], METADATA), metadata,
                                 indent=1)
            version = _claim_version(staged["saved_model"], base, version, requested, force)
            result["version"] = version
            result["saved_model"] = os.path.join(base, str(version))
            if tflite:
                report = {"max_abs_error_vs_keras": errors, "rows": tflite_lib.PARITY_ROWS,
                          "seed": tflite_lib.PARITY_SEED, "from_version": version,
                          "float32_tolerance": tflite_lib.FLOAT32_TOLERANCE}
                io.atomic_write_json(os.path.join(staged["tflite"], "parity.json"), report,
                                     indent=1, sort_keys=True)
                _claim_tflite(staged["tflite"], targets["tflite"], result["saved_model"], force)
                result["tflite"] = targets["tflite"]
    finally:
        if created_base and os.path.isdir(base) and not os.listdir(base):
            os.rmdir(base)  # a failed first export leaves no empty model folder
    return result


def _claim_tflite(staged, final, claimed_version, force):
    """Put the TFLite folder in place (replacing it with ``force``). Without ``force``, if
    another export put one there meanwhile, the version this export just claimed is taken back
    (renamed aside, then removed) and the export is refused."""
    if force:
        io.replace_directory(staged, final)
        return
    try:
        io.claim_directory(staged, final)
    except FileExistsError:
        parent, name = os.path.split(claimed_version)
        aside = os.path.join(parent, f"{io.TMP_PREFIX}withdrawn-{name}-{os.getpid()}")
        os.rename(claimed_version, aside)
        io.remove(aside)
        raise ExportError(f"already exported: {final}; pass --force to replace it") from None
