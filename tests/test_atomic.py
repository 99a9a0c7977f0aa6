"""Atomic writes: a reader never sees half a file, a failed write keeps the old one.

* `keras_lsvae.io`'s helpers: an exception while writing, or in the final rename, leaves the
  previous file as it was and no temporary file behind;
* a training run writes every file it writes (config.json, flags.txt, history.json, sample
  grids, checkpoints, model.keras, metrics.json) under a temporary name first;
* no module of the package or script writes a file any other way (a source scan, so a new
  writer that bypasses the helpers fails here).
"""

import builtins
import json
import os
import re

import keras
import numpy as np
import pytest

from keras_lsvae import io

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(io.TMP_PREFIX)]


def test_temporary_names_keep_the_extension_and_sit_beside_the_file(tmp_path):
    for name, extension in [("model.keras", ".keras"), ("ckpt.weights.h5", ".weights.h5"),
                            ("epoch_0001.png", ".png"), ("flags.txt", ".txt"), ("x", "")]:
        tmp = io.temporary_path(tmp_path / name)
        assert os.path.dirname(tmp) == str(tmp_path)
        assert os.path.basename(tmp).startswith(f".tmp-{name.split('.')[0]}-{os.getpid()}-")
        assert tmp.endswith(extension)
    assert io.temporary_path(tmp_path / "a.json") != io.temporary_path(tmp_path / "a.json")


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    io.atomic_write_json(path, {"version": 1})
    with pytest.raises(RuntimeError, match="interrupted"):
        with io.atomic_write(path) as f:
            f.write('{"version": ')
            raise RuntimeError("interrupted")
    with pytest.raises(TypeError):  # not serialisable: nothing is written at all
        io.atomic_write_json(path, {"version": object()})
    real_replace = os.replace

    def failing_replace(source, destination):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        io.atomic_write_text(path, '{"version": 2}')
    monkeypatch.setattr(os, "replace", real_replace)
    assert json.loads(path.read_text()) == {"version": 1}
    assert _leftovers(tmp_path) == []
    io.atomic_write_bytes(path, b'{"version": 3}')
    assert json.loads(path.read_text()) == {"version": 3} and _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="mode"):
        with io.atomic_write(path, "a"):
            pass


def test_interrupted_model_save_keeps_the_previous_model(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = str(tmp_path / "model.keras")
    io.atomic_save_model(model, path)
    expected = [w.numpy() for w in model.weights]

    def half_written(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # as a signal arriving in the middle

    monkeypatch.setattr(keras.Model, "save", half_written)
    with pytest.raises(KeyboardInterrupt):
        io.atomic_save_model(model, path)
    monkeypatch.undo()
    loaded = keras.models.load_model(path)
    for a, b in zip(expected, loaded.weights):
        np.testing.assert_array_equal(a, b.numpy())
    assert _leftovers(tmp_path) == []


def test_figures_arrays_and_copies_are_written_whole(tmp_path):
    from keras_lsvae.viz.grid import plt, save_array_png, save_figure

    image = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    save_array_png(str(tmp_path / "grid.png"), image)
    assert plt.imread(str(tmp_path / "grid.png")).shape[:2] == (3, 4)
    fig = plt.figure()
    save_figure(fig, str(tmp_path / "figure.png"))
    assert (tmp_path / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert io.atomic_savez(str(tmp_path / "points"), a=np.arange(3)).endswith("points.npz")
    np.testing.assert_array_equal(np.load(tmp_path / "points.npz")["a"], np.arange(3))
    io.atomic_copy(tmp_path / "points.npz", tmp_path / "copy.npz")
    assert (tmp_path / "copy.npz").read_bytes() == (tmp_path / "points.npz").read_bytes()
    assert _leftovers(tmp_path) == []


def test_a_training_run_writes_every_file_under_a_temporary_name(tmp_path, monkeypatch):
    """Every file a run opens for writing in its workdir is a ``.tmp-`` file or sits in a
    ``.tmp-`` staging folder: its final name appears only by a rename."""
    from keras_lsvae.training import TrainConfig, train

    written = []
    real_open = builtins.open

    def recording_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
            written.append(os.path.abspath(os.fspath(file)))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    workdir = tmp_path / "run"
    train(TrainConfig(workdir=str(workdir), model="lrlivae", dataset="digits", epochs=1,
                      steps_per_epoch=2, checkpoint_every_steps=1, batch_size=8, image_size=8,
                      samples_per_class=1, verbose=0,
                      model_args={"width": 8, "zs_dim": 3, "zu_dim": 2, "n_gm": 1,
                                  "latent_classifier_units": (8,)}))
    monkeypatch.undo()
    mine = [p for p in written if p.startswith(str(workdir) + os.sep)]
    direct = [os.path.relpath(p, workdir) for p in mine
              if not any(part.startswith(io.TMP_PREFIX) for part in
                         os.path.relpath(p, workdir).split(os.sep))]
    assert not direct, f"written in place: {direct}"
    names = {os.path.relpath(p, workdir).split(os.sep)[0] for p in mine}
    assert len(mine) >= 8 and any(n.startswith(io.TMP_PREFIX) for n in names)
    for name in ("model.keras", "metrics.json", "config.json", "history.json"):
        assert (workdir / name).exists(), name
    assert sorted(os.listdir(workdir / "samples")) == ["epoch_0001.png"]
    for folder in (workdir, workdir / "samples", workdir / "checkpoints"):
        assert _leftovers(folder) == [], folder


#: writes that bypass `keras_lsvae.io` on purpose, (file, text of the line): each one writes
#: into a staging folder that is renamed into place whole, or into a TemporaryDirectory.
ALLOWED = {
    ("keras_lsvae/training/callbacks.py", "model.save_weights(os.path.join(staged, WEIGHTS_FILE))"),
    ("keras_lsvae/training/callbacks.py", "json.dump(state, f)"),
    ("keras_lsvae/training/callbacks.py", "json.dump(manifest, f)"),
    ("keras_lsvae/training/callbacks.py", 'with open(os.path.join(staged, STATE_FILE), "w") as f:'),
    ("keras_lsvae/training/callbacks.py",
     'with open(os.path.join(staged, MANIFEST_FILE), "w") as f:  # last: marks it complete'),
    ("keras_lsvae/export/saved_model.py",
     "build_archive(model, spec).write_out(str(path), verbose=False)"),
    ("keras_lsvae/export/tflite.py",
     "build_archive(model, graphs=[g.signature for g in spec.tflite], static=True).write_out("),
    ("keras_lsvae/export/run.py", "os.rename(claimed_version, aside)"),
    ("keras_lsvae/benchmarks/speed.py",
     "np.savez(path, images=rng.integers(0, 256, (examples, image_size, image_size, 3),"),
    ("keras_lsvae/benchmarks/export.py", "model.decoder.save(path)"),
}
WRITE = re.compile(
    r"(?<![\w.])open\([^)]*['\"][wax]b?\+?['\"]|json\.dump\(|\.savefig\(|(?<!atomic_)imsave\(|"
    r"np\.savez|np\.save\(|(?<!self)\.save\(|\.save_weights\(|(?<!atomic_)write_bytes\(|"
    r"(?<!atomic_)write_text\(|shutil\.copy|os\.replace\(|os\.rename\(|\.write_out\(|\.tofile\(|"
    r"pickle\.dump\(")


def test_no_module_writes_a_file_except_through_the_atomic_helpers():
    found = []
    for top in ("keras_lsvae", "scripts"):
        for root, _, names in os.walk(os.path.join(REPO, top)):
            for name in names:
                path = os.path.join(root, name)
                relative = os.path.relpath(path, REPO)
                if not name.endswith(".py") or relative == os.path.join("keras_lsvae", "io.py"):
                    continue
                with open(path) as f:
                    for number, line in enumerate(f, 1):
                        text = line.strip()
                        if (WRITE.search(text) and not text.startswith(("#", "``", "*"))
                                and '"' not in text.split("(")[0]
                                and (relative, text) not in ALLOWED):
                            found.append(f"{relative}:{number}: {text}")
    # docstrings that mention np.savez/model.save as text are not writes
    found = [f for f in found if not re.search(r"e\.g\. np\.savez|``model\.save", f)]
    assert not found, "write without keras_lsvae.io:\n" + "\n".join(found)
