"""Callbacks of a training run: per-epoch sample grids (PNG + TensorBoard image), per-epoch
attribute-manipulation grids (attribute models), generated points (point data), resumable
checkpoints and the metrics history.

Class models (Lr-LiVAE) are asked for class ids, attribute models (paper B's CSVAE, VAE,
CondVAE, CondVAE-info; ``label_kind == "attributes"``) for (N, A) attribute vectors:
`keras_lsvae.viz.attributes.attribute_targets` (A = 1: the attribute off and on; else the A
one-hot vectors)."""

from __future__ import annotations

import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from keras_lsvae import io
from keras_lsvae.models import capabilities as caps
from keras_lsvae.viz import attributes as attr
from keras_lsvae.viz.grid import image_grid, save_image_grid


def sample_labels(model, per_class):
    """``(labels to generate from, int ids for colouring)``, ``per_class`` per class / target:
    class ids for class models, `attribute_targets` rows for attribute models."""
    if attr.is_attribute_model(model):
        targets = attr.attribute_targets(model.num_classes)
        labels = np.repeat(targets, per_class, axis=0)
        return labels, np.repeat(np.arange(len(targets), dtype=np.int32), per_class)
    labels = np.repeat(np.arange(model.num_classes), per_class).astype(np.int32)
    return labels, labels


def sample_images(model, per_class=8, seed=0):
    """A fixed-seed batch of samples per class (rows = classes; attribute models: rows =
    `attribute_targets`). Returns (images, nrow)."""
    labels, _ = sample_labels(model, per_class)
    return np.asarray(model.generate(labels, seed=seed)), per_class


class SampleGrid(keras.callbacks.Callback):
    """Writes ``samples/epoch_XXXX.png`` and a TensorBoard image after every epoch (fixed seed, so
    the grids of successive epochs are comparable)."""

    def __init__(self, workdir, per_class=8, seed=0, log_dir=None):
        super().__init__()
        self.directory = os.path.join(workdir, "samples")
        self.per_class, self.seed = per_class, seed
        self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None

    def on_epoch_end(self, epoch, logs=None):
        if not self.model.is_image:
            return
        os.makedirs(self.directory, exist_ok=True)
        images, nrow = sample_images(self.model, self.per_class, self.seed)
        save_image_grid(os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png"), images, nrow)
        if self.writer is not None:
            grid = image_grid(images, nrow)
            with self.writer.as_default():
                tf.summary.image("samples", grid[None], step=epoch + 1)
            self.writer.flush()


class ManipulationGrid(keras.callbacks.Callback):
    """Attribute models on images: ``samples/manipulation_XXXX.png`` (+ TensorBoard image) after
    every epoch: fixed test ``images`` (rows), each as given (first column) and switched to
    every `attribute_targets` vector (columns) with the model's ``manipulate`` (paper B §4.3).

    Models that declare ``FitsAttributeStatistics`` (VAE, CSVAE: ``manipulate`` uses
    per-attribute latent means) get them refit first on ``statistics`` = (train images, train
    attributes), so each epoch's grid uses that epoch's encoder; the model's ``after_training``
    refits on more data before saving.
    """

    def __init__(self, workdir, images, attributes, statistics=None, log_dir=None):
        super().__init__()
        self.directory = os.path.join(workdir, "samples")
        self.images = np.asarray(images, np.float32)
        self.attributes = np.asarray(attributes, np.float32)
        self.statistics = statistics
        self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None

    def on_epoch_end(self, epoch, logs=None):
        if not self.model.is_image or not attr.is_attribute_model(self.model):
            return
        if self.statistics is not None:
            attr.fit_statistics(self.model, *self.statistics)
        os.makedirs(self.directory, exist_ok=True)
        tiles = attr.manipulation_tiles(self.model, self.images, self.attributes,
                                        attr.attribute_targets(self.model.num_classes))
        rows, cols = tiles.shape[:2]
        flat = tiles.reshape(rows * cols, *tiles.shape[2:])
        save_image_grid(os.path.join(self.directory, f"manipulation_{epoch + 1:04d}.png"), flat,
                        cols)
        if self.writer is not None:
            with self.writer.as_default():
                tf.summary.image("manipulation", image_grid(flat, cols)[None], step=epoch + 1)
            self.writer.flush()


class ToyPoints(keras.callbacks.Callback):
    """For point data (toy2d, swiss_roll): ``points/epoch_XXXX.npz`` with ``points`` generated for
    ``per_class`` requested labels per class (fixed seed) and those ``labels`` (int ids; for
    attribute models also the requested ``attributes``, `attribute_targets` rows): the material
    of Lr-LiVAE's Fig. 2 (generated points over epochs)."""

    def __init__(self, workdir, per_class=300, seed=0):
        super().__init__()
        self.directory = os.path.join(workdir, "points")
        self.per_class, self.seed = per_class, seed

    def on_epoch_end(self, epoch, logs=None):
        if self.model.is_image or not caps.supports(self.model, caps.Generates):
            return
        os.makedirs(self.directory, exist_ok=True)
        requested, labels = sample_labels(self.model, self.per_class)
        points = np.asarray(self.model.generate(requested, seed=self.seed))
        extra = {"attributes": requested} if attr.is_attribute_model(self.model) else {}
        io.atomic_savez(os.path.join(self.directory, f"epoch_{epoch + 1:04d}.npz"),
                        points=points, labels=labels, **extra)


def seed_generators(model):
    """Every ``keras.random.SeedGenerator`` of the model, by a stable path (their state is not
    part of Keras weight files, so checkpoints store it beside them)."""
    found = {}
    for layer in [model, *model._flatten_layers(include_self=False)]:
        for attr, value in sorted(vars(layer).items()):
            if isinstance(value, keras.random.SeedGenerator):
                found[f"{layer.name}.{attr}"] = value
    return found


def learning_rate_factor(schedule, epoch, epochs, final_fraction):
    """The rate of (0-based) ``epoch`` over the base rate, for ``epochs`` supervised epochs:
    1 for ``"constant"``; for ``"cosine"`` a half cosine from 1 at epoch 0 to
    ``final_fraction`` at the last epoch, f(e) = a + (1 − a) · ½ (1 + cos(π e / (E − 1))) with
    a = ``final_fraction`` (Loshchilov & Hutter's SGDR without restarts, per epoch). Epochs
    past ``epochs`` (semi-supervised fine-tuning, §3.6) run at the base rate: fine-tuning
    adapts to new data and starts afresh. Not in either paper, which train at one rate."""
    if schedule == "constant" or epoch >= epochs:
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; known: constant, cosine")
    progress = epoch / (epochs - 1) if epochs > 1 else 1.0
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + np.cos(np.pi * progress))


class LearningRateSchedule(keras.callbacks.Callback):
    """Sets every objective's optimizer to its base rate × :func:`learning_rate_factor` at the
    start of each epoch. The base rates are read when the callback is made (after ``compile``,
    before a checkpoint is restored: a restored optimizer holds a decayed rate). The rate is a
    function of the epoch alone, so a resumed run (``fit(initial_epoch=...)``, also mid-epoch)
    trains at the same rates as an uninterrupted one."""

    def __init__(self, model, schedule, epochs, final_fraction):
        super().__init__()
        self.schedule, self.epochs, self.final_fraction = schedule, epochs, final_fraction
        # (a MirroredVariable under a strategy: converted, not float()-ed)
        self.base_rates = {name: float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                           for name, optimizer in model.objective_optimizers.items()}

    def on_epoch_begin(self, epoch, logs=None):
        factor = learning_rate_factor(self.schedule, epoch, self.epochs, self.final_fraction)
        for name, optimizer in self.model.objective_optimizers.items():
            optimizer.learning_rate = self.base_rates[name] * factor


#: file names inside a checkpoint folder ``checkpoints/ckpt-<step>/``
WEIGHTS_FILE = "ckpt.weights.h5"
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
CHECKPOINT_PREFIX = "ckpt-"
#: complete checkpoints kept: the newest and the one before (the fallback)
KEEP_CHECKPOINTS = 2


def checkpoint_folders(directory):
    """``[(step, path)]`` of the ``ckpt-<step>`` folders in ``directory``, newest first (the
    staging ``.tmp-*`` folders of a save in progress or killed are not among them)."""
    found = []
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        number = name[len(CHECKPOINT_PREFIX):]
        if name.startswith(CHECKPOINT_PREFIX) and number.isdigit():
            found.append((int(number), os.path.join(directory, name)))
    return sorted(found, reverse=True)


def verify_checkpoint(path):
    """The state dict of the checkpoint folder ``path`` after checking it against its manifest
    (every listed file present with its size and sha256); raises ValueError naming what is
    wrong (no manifest: the save did not finish)."""
    manifest_path = os.path.join(path, MANIFEST_FILE)
    if not os.path.isfile(manifest_path):
        raise ValueError(f"no {MANIFEST_FILE} (an incomplete checkpoint)")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"unreadable {MANIFEST_FILE} ({error})") from None
    for name in (WEIGHTS_FILE, STATE_FILE):
        if name not in files:
            raise ValueError(f"{MANIFEST_FILE} lists no {name}")
    for name, expected in files.items():
        file_path = os.path.join(path, name)
        if not os.path.isfile(file_path):
            raise ValueError(f"{name} is missing")
        actual = io.file_digest(file_path)
        if actual != {"bytes": expected.get("bytes"), "sha256": expected.get("sha256")}:
            raise ValueError(f"{name} does not match {MANIFEST_FILE} ({actual['bytes']} bytes, "
                             f"sha256 {actual['sha256'][:12]}..., expected "
                             f"{expected.get('bytes')} bytes, sha256 "
                             f"{str(expected.get('sha256'))[:12]}...)")
    with open(os.path.join(path, STATE_FILE)) as f:
        return json.load(f)


def checkpoint_state(workdir):
    """The position (``state.json``) of the newest complete checkpoint of the run in
    ``workdir`` (an old-layout ``checkpoints/state.json`` if there is no folder), or None."""
    directory = os.path.join(workdir, "checkpoints")
    for _, path in checkpoint_folders(directory):
        try:
            return verify_checkpoint(path)
        except (ValueError, OSError):
            continue
    legacy = os.path.join(directory, STATE_FILE)
    if os.path.isfile(legacy):
        with open(legacy) as f:
            return json.load(f)
    return None


class Checkpointer(keras.callbacks.Callback):
    """Resumable checkpoints, each one folder ``checkpoints/ckpt-<step>/`` (``step``: train steps
    done, 8 digits) holding ``ckpt.weights.h5`` (weights, every optimizer's state, the mixture
    prior, the loss trackers), ``state.json`` (position and seed-generator states) and
    ``manifest.json`` (size and sha256 of both). A save writes the three into a staging folder
    ``checkpoints/.tmp-ckpt-...`` (the manifest last), fsyncs them and renames the folder into
    place: a checkpoint appears whole or not at all, so a kill at any point of a save leaves the
    previous checkpoint as the newest complete one. The newest :data:`KEEP_CHECKPOINTS` are
    kept; older ones (and stale staging folders of a killed save) are removed after a save.

    Restoring takes the newest folder whose files match its manifest; a corrupt or incomplete
    one is skipped with a ``logging.warning`` and the previous one is used. Checkpoints of the
    old layout (``checkpoints/ckpt.weights.h5`` + ``checkpoints/state.json``, no manifest) are
    still read when there is no folder, and removed by the first new save.

    ``state.json`` holds the run's position: ``epoch`` (epochs completed), ``batch`` (steps done
    in epoch ``epoch``: 0 after an epoch's end, more after a mid-epoch checkpoint) and ``step``
    (train steps done in all). With the data order a pure function of (seed, position)
    (`keras_lsvae.data.pipeline.train_stream`) that is all a restarted run needs to continue
    exactly where the checkpoint was taken (tests/test_resume.py).

    Saves after every epoch and, with ``every_steps=N``, after every N-th train step (except an
    epoch's last, which the epoch's end saves): a run killed by SIGKILL loses at most the last
    interval. ``directory`` is where checkpoints are written; ``restore_from`` (default: the
    same) where they are read: a multi-worker run's non-chief workers read the chief's
    checkpoint but write into a scratch directory (`keras_lsvae.training.strategy.is_chief`).
    """

    def __init__(self, workdir, every_steps=None, restore_from=None):
        super().__init__()
        self.directory = os.path.join(workdir, "checkpoints")
        self.restore_directory = os.path.join(restore_from or workdir, "checkpoints")
        self.every_steps = int(every_steps) if every_steps else None
        #: the loop sets these per fit call: steps of a full epoch, steps already done in the
        #: first epoch of the call (a resumed partial epoch), train steps done before the call
        self.steps_per_epoch = None
        self.batch_offset = 0
        self.step = 0
        self._epoch = 0

    def checkpoint_path(self, step):
        return os.path.join(self.directory, f"{CHECKPOINT_PREFIX}{int(step):08d}")

    def save(self, model, epoch, extra=None, batch=0):
        state = {"epoch": int(epoch), "batch": int(batch), "step": int(self.step),
                 "seed_states": {k: np.asarray(g.state.numpy()).tolist()
                                 for k, g in seed_generators(model).items()}}
        state.update(extra or {})
        final = self.checkpoint_path(self.step)
        with io.staging_directory(self.directory, "ckpt") as staged:
            model.save_weights(os.path.join(staged, WEIGHTS_FILE))
            with open(os.path.join(staged, STATE_FILE), "w") as f:
                json.dump(state, f)
            manifest = {"format": 2, "step": int(self.step),
                        "files": {name: io.file_digest(os.path.join(staged, name))
                                  for name in (WEIGHTS_FILE, STATE_FILE)}}
            with open(os.path.join(staged, MANIFEST_FILE), "w") as f:  # last: marks it complete
                json.dump(manifest, f)
            io.replace_directory(staged, final)  # the same step saved again replaces it
        self._prune()
        return final

    def _prune(self):
        """Remove all but the newest KEEP_CHECKPOINTS folders, folders of later steps than the
        one just saved (a corrupt checkpoint the restore skipped), stale staging folders (this
        directory has one writer, and it is not saving now) and old-layout files."""
        folders = checkpoint_folders(self.directory)
        for step, path in folders:
            if step > self.step:
                io.remove(path)
        kept = [(step, path) for step, path in folders if step <= self.step]
        for _, path in kept[KEEP_CHECKPOINTS:]:
            io.remove(path)
        for name in os.listdir(self.directory):
            if name.startswith(io.TMP_PREFIX) or name in (WEIGHTS_FILE, STATE_FILE):
                io.remove(os.path.join(self.directory, name))

    def _restore_legacy(self, model):
        """``(state, None)`` from an old-layout checkpoint, None if there is none."""
        state_path = os.path.join(self.restore_directory, STATE_FILE)
        if not os.path.exists(state_path):
            return None
        try:
            with open(state_path) as f:
                state = json.load(f)
            model.load_weights(os.path.join(self.restore_directory, WEIGHTS_FILE))
        except Exception as error:  # noqa: BLE001 - any failure here means a corrupt checkpoint
            raise RuntimeError(
                f"the checkpoint in {self.restore_directory} cannot be read "
                f"({type(error).__name__}: {error}); delete that directory (or pass --restart) "
                "to start over") from error
        return state

    def restore(self, model):
        """Load the newest complete checkpoint into ``model`` (class docstring); returns its
        state dict (with ``batch`` and ``step`` filled in for checkpoints written before they
        existed), or None if there is none. Raises RuntimeError if checkpoints exist but none
        can be read."""
        state, failures = None, []
        for _, path in checkpoint_folders(self.restore_directory):
            try:
                candidate = verify_checkpoint(path)
                model.load_weights(os.path.join(path, WEIGHTS_FILE))
            except Exception as error:  # noqa: BLE001 - any failure: corrupt or incomplete
                failures.append(f"{os.path.basename(path)}: {type(error).__name__}: {error}")
                logging.warning("checkpoint %s cannot be read (%s: %s); falling back to the "
                                "previous checkpoint", path, type(error).__name__, error)
                continue
            state = candidate
            break
        if state is None and failures:
            raise RuntimeError(
                f"the checkpoint in {self.restore_directory} cannot be read "
                f"({'; '.join(failures)}); delete that directory (or pass --restart) "
                "to start over")
        if state is None:
            state = self._restore_legacy(model)
        if state is None:
            return None
        generators = seed_generators(model)
        for key, value in state.get("seed_states", {}).items():
            if key in generators:
                generators[key].state.assign(np.asarray(value, dtype="uint32")
                                             .astype(generators[key].state.dtype))
        state.setdefault("batch", 0)
        state.setdefault("step", None)
        self.step = int(state["step"] or 0)
        return state

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        done = self.batch_offset + batch + 1  # steps done in this epoch
        if (self.every_steps and self.step % self.every_steps == 0
                and done != self.steps_per_epoch):
            self.save(self.model, self._epoch, batch=done)

    def on_epoch_end(self, epoch, logs=None):
        self.batch_offset = 0  # only the first epoch of a fit call can be a partial one
        self.save(self.model, epoch + 1)


class MetricsHistory(keras.callbacks.Callback):
    """Keeps the per-epoch logs (``history.json`` in the workdir, appended across resumes)."""

    def __init__(self, workdir):
        super().__init__()
        self.path = os.path.join(workdir, "history.json")
        self.history = []
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.history = json.load(f)

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        self.history = [h for h in self.history if h["epoch"] < epoch + 1] + [record]
        io.atomic_write_json(self.path, self.history, indent=1)
