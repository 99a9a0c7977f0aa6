"""Export writing is crash safe and stays inside --export_dir.

* ``--model_name`` with a path separator, ``..`` or an absolute path is refused (ValueError
  naming the flag) before anything is written;
* two exports into the same folder at once get distinct versions: the version is claimed by
  renaming the complete staged SavedModel, and a number taken in the meantime moves the
  export on to the next one (none is silently replaced);
* a kill at any write point of an export leaves every numeric folder (what TF Serving loads) a
  complete SavedModel: checked in process on copies of the folder taken at each write point,
  and (``-m slow``) with real processes killed there.

A tiny Lr-LiVAE (8×8×1, 3 classes), built but not trained: only the writing is under test.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from keras_lsvae import export
from tests.helpers import count_write_points, tiny_lrlivae

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METADATA = os.path.join("assets.extra", "keras_lsvae_export.json")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    model = tiny_lrlivae(n_gm=1)
    model.reconstruct(np.zeros((1, 8, 8, 1), "float32"))
    path = tmp_path_factory.mktemp("run")
    model.save(str(path / "model.keras"))
    return str(path)


@pytest.fixture(scope="module")
def reference(workdir, tmp_path_factory):
    """The relative files of one complete export's version folder."""
    out = tmp_path_factory.mktemp("reference")
    return _files(export.export_run(workdir, str(out))["saved_model"])


def _files(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


def _tree(path):
    return sorted(os.path.relpath(os.path.join(root, name), path)
                  for root, dirs, names in os.walk(path) for name in dirs + names)


def _check_versions(base, reference):
    """Every numeric folder in ``base`` is a complete SavedModel; returns their numbers."""
    versions = sorted(int(n) for n in os.listdir(base) if n.isdigit()) if os.path.isdir(base) \
        else []
    for version in versions:
        folder = os.path.join(base, str(version))
        assert _files(folder) == reference, f"version {version} is incomplete: {_files(folder)}"
        with open(os.path.join(folder, METADATA)) as f:
            assert json.load(f)["model_type"] == "LrLiVAE"
    return versions


@pytest.mark.parametrize("name", ["../../x", "../x", "a/b", "..", ".", "", "x/../../y",
                                  "ABSOLUTE", ".tmp-export-1"])
def test_model_name_cannot_write_outside_the_export_dir(workdir, tmp_path, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    if name == "ABSOLUTE":
        name = str(outside / "x")
    out = tmp_path / "a" / "b" / "exports"
    out.mkdir(parents=True)
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match=r"--model_name=.*plain folder name inside "
                                         r"--export_dir"):
        export.export_run(workdir, str(out), model_name=name)
    assert _tree(tmp_path) == before


def _race(monkeypatch, workdir, out, **other_options):
    """Make the next export_run run another export (``other_options``) to its end while it
    writes its own SavedModel; returns the list that receives the other's result."""
    write = export.saved_model.export_saved_model
    other, started = [], []

    def racing(model, path, spec=None):
        if not started:
            started.append(True)
            other.append(export.export_run(workdir, out, **other_options))
            with open(os.path.join(other[0]["saved_model"], "marker"), "w") as f:
                f.write("the other export's")
        return write(model, path, spec)

    monkeypatch.setattr(export.run, "export_saved_model", racing)
    return other


def test_two_exports_at_once_get_distinct_versions(workdir, reference, tmp_path, monkeypatch):
    """The second export runs to the end while the first is writing its SavedModel (both chose
    version 1 before either had written): the first then finds 1 taken and claims 2."""
    out = str(tmp_path)
    base = os.path.join(out, "lrlivae")
    other = _race(monkeypatch, workdir, out)
    first = export.export_run(workdir, out)
    assert (other[0]["version"], first["version"]) == (1, 2)
    assert first["saved_model"] == os.path.join(base, "2")
    assert os.path.exists(os.path.join(base, "1", "marker"))  # not silently replaced
    assert sorted(os.listdir(base)) == ["1", "2"]  # no staging folder left
    os.remove(os.path.join(base, "1", "marker"))
    assert _check_versions(base, reference) == [1, 2]
    # An explicit --version taken meanwhile is refused, not replaced ...
    other = _race(monkeypatch, workdir, out, version=5)
    with pytest.raises(export.ExportError, match="already exported: .*lrlivae/5; pass --force"):
        export.export_run(workdir, out, version=5)
    assert os.path.exists(os.path.join(base, "5", "marker"))
    assert sorted(os.listdir(base)) == ["1", "2", "5"]
    # ... and replaced with --force.
    other = _race(monkeypatch, workdir, out, version=6)
    assert export.export_run(workdir, out, version=6, force=True)["version"] == 6
    assert not os.path.exists(os.path.join(base, "6", "marker"))
    os.remove(os.path.join(base, "5", "marker"))
    assert _check_versions(base, reference) == [1, 2, 5, 6]
    assert sorted(os.listdir(base)) == ["1", "2", "5", "6"]


def test_every_write_point_of_an_export_leaves_only_complete_versions(workdir, reference,
                                                                      tmp_path, monkeypatch):
    """Version 1 exists; a second export (version 2) is "killed" at each of its write points:
    the export folder is copied just before that write (what a SIGKILL there leaves). Every
    copy holds version 1 and, once claimed, a complete version 2, and nothing else numeric."""
    out = tmp_path / "out"
    export.export_run(workdir, str(out))
    base = out / "lrlivae"
    copies = []

    def snapshot():
        copy = tmp_path / f"kill_{len(copies) + 1}"
        shutil.copytree(base, copy, symlinks=True)
        copies.append(copy)

    active = count_write_points(monkeypatch.setattr, snapshot)
    active[0] = True
    result = export.export_run(workdir, str(out))
    active[0] = False
    monkeypatch.undo()
    assert result["version"] == 2 and len(copies) >= 5
    seen = [tuple(_check_versions(copy, reference)) for copy in copies]
    assert set(seen) == {(1,), (1, 2)} and seen == sorted(seen)
    assert _check_versions(base, reference) == [1, 2] and sorted(os.listdir(base)) == ["1", "2"]


#: export_run in a child that dies (``os._exit``: no clean-up, as under SIGKILL) at its
#: KILL_AT_WRITE-th write point; prints the number of write points when KILL_AT_WRITE=0.
KILLED_EXPORT = """
import os, sys
from keras_lsvae import export
from tests.helpers import count_write_points

kill_at, calls = int(os.environ["KILL_AT_WRITE"]), [0]

def kill_point():  # os._exit: no clean-up runs, as under SIGKILL
    calls[0] += 1
    if calls[0] == kill_at:
        sys.stdout.flush()
        os._exit(86)

active = count_write_points(setattr, kill_point)
model = export.run.load_run_model(sys.argv[1])
export.run.load_run_model = lambda workdir: model
active[0] = True
result = export.export_run(sys.argv[1], sys.argv[2])
active[0] = False
print(f"WRITE_POINTS={calls[0]} VERSION={result['version']}", flush=True)
"""


def _killed_export(workdir, out, kill_at):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2",
               KILL_AT_WRITE=str(kill_at))
    proc = subprocess.run([sys.executable, "-c", KILLED_EXPORT, workdir, str(out)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert proc.returncode == (86 if kill_at else 0), proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow  # one exporting process per write point
def test_export_killed_at_every_write_point_leaves_only_complete_versions(workdir, reference,
                                                                          tmp_path):
    out = tmp_path / "count"
    export.export_run(workdir, str(out))
    points = int(_killed_export(workdir, out, 0).split("WRITE_POINTS=")[1].split()[0])
    assert points >= 5
    for k in range(1, points + 1):
        out = tmp_path / f"killed_{k}"
        export.export_run(workdir, str(out))
        _killed_export(workdir, out, k)
        base = str(out / "lrlivae")
        assert _check_versions(base, reference) in ([1], [1, 2]), k
        again = export.export_run(workdir, str(out))  # the next export works as ever
        assert again["version"] == max(_check_versions(base, reference)), k
