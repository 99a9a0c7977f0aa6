"""Exact resume: a run killed with SIGKILL mid-epoch and restarted with the same command ends with
the weights of the same run never interrupted.

What must survive the kill: weights, every optimizer's state, the mixture prior, the seed
generators' states (in-step sampling noise) and the data order: the stream of training batches
is a pure function of (seed, position) (`keras_lsvae.data.pipeline.train_stream`) and the
restarted run opens it at the checkpoint's step. Before, the restarted process replayed the
first epoch's order, so resumed runs trained on other batches.

The runs are real processes: the killed one is ``scripts/train.py``'s own code with a hook
that sends SIGKILL to its process right after a chosen step (one step after its last
checkpoint, so that step's work is lost and must be redone); the restart is the plain command.
Equality is bitwise: the same ops on the same data in the same order on one CPU device give
the same floats (the issue measured the same run twice at distance 0), so any difference means
something was not restored.
"""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_lsvae.models  # noqa: F401  (registers the classes model.keras files name)
from keras_lsvae.training.callbacks import checkpoint_folders, checkpoint_state
from keras_lsvae.training.flags import run_from_argv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: train.py run in a child that SIGKILLs itself right after train step KILL_AFTER_STEP
KILLED_RUN = """
import os, signal, sys
from keras_lsvae.training import callbacks
from keras_lsvae.training.flags import run_from_argv

kill_after = int(os.environ["KILL_AFTER_STEP"])
original = callbacks.Checkpointer.on_train_batch_end

def on_train_batch_end(self, batch, logs=None):
    original(self, batch, logs)
    if self.step == kill_after:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

callbacks.Checkpointer.on_train_batch_end = on_train_batch_end
run_from_argv(["train.py", *sys.argv[1:]])
"""


def _train_argv(workdir, *extra):
    """A tiny Lr-LiVAE on 8x8 digits (tests/test_training.py's tiny_config), sampling on."""
    return [f"--workdir={workdir}", "--model=lrlivae", "--dataset=digits", "--image_size=8",
            "--batch_size=8", "--samples_per_class=2", "--verbose=0", "--seed=3",
            "--model_arg=width=8", "--model_arg=zs_dim=3", "--model_arg=zu_dim=2",
            "--model_arg=n_gm=1", "--model_arg=latent_classifier_units=(8,)", *extra]


#: train.py run in a child that dies (``os._exit``: no clean-up runs, as under SIGKILL) at
#: its KILL_AT_WRITE-th write point (folder creation, open for writing, fsync, rename,
#: removal) inside the checkpoint save at train step KILL_SAVE_AT_STEP; it prints how many
#: write points that save has when it survives them all (KILL_AT_WRITE=0).
KILLED_AT_WRITE = """
import os, sys
from keras_lsvae.training import callbacks
from keras_lsvae.training.flags import run_from_argv
from tests.helpers import count_write_points

target, kill_at = int(os.environ["KILL_SAVE_AT_STEP"]), int(os.environ["KILL_AT_WRITE"])
calls = [0]

def kill_point():  # os._exit: no clean-up runs, as under SIGKILL
    calls[0] += 1
    if calls[0] == kill_at:
        sys.stdout.flush()
        os._exit(86)

active = count_write_points(setattr, kill_point)
save = callbacks.Checkpointer.save

def counted_save(self, *args, **kwargs):
    active[0] = self.step == target
    try:
        return save(self, *args, **kwargs)
    finally:
        if active[0]:
            print(f"WRITE_POINTS={calls[0]}", flush=True)
        active[0] = False

callbacks.Checkpointer.save = counted_save
run_from_argv(["train.py", *sys.argv[1:]])
"""


def _run(argv, kill_after=None, kill_at_write=None):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    expected = 0
    if kill_at_write is not None:
        command = [sys.executable, "-c", KILLED_AT_WRITE, *argv]
        env["KILL_SAVE_AT_STEP"], env["KILL_AT_WRITE"] = map(str, kill_at_write)
        expected = 86 if kill_at_write[1] else 0
    elif kill_after is None:
        command = [sys.executable, os.path.join(REPO, "scripts", "train.py"), *argv]
    else:
        command = [sys.executable, "-c", KILLED_RUN, *argv]
        env["KILL_AFTER_STEP"] = str(kill_after)
        expected = -signal.SIGKILL
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=REPO,
                            env=env)
    assert result.returncode == expected, (
        f"{' '.join(command[:2])} ... exited with {result.returncode}, expected {expected}\n"
        f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-4000:]}")
    return result


def _weights(workdir):
    """Every variable of the saved model and of its optimizers, in their (fixed) order, with
    its last name part (layer-name counters differ between processes)."""
    model = keras.models.load_model(os.path.join(workdir, "model.keras"))
    variables = list(model.weights)
    for optimizer in model.optimizer_list:
        variables += list(optimizer.variables)
    return [(v.path.split("/")[-1].split("_")[-1], np.asarray(v.numpy())) for v in variables]


def test_killed_and_restarted_run_equals_the_uninterrupted_run(tmp_path):
    # 2 epochs of 3 steps, a checkpoint every 2 steps: killed after step 5, the restart
    # continues from the checkpoint at step 4 (epoch 1, step 1) and redoes step 5.
    extra = ["--epochs=2", "--steps_per_epoch=3", "--checkpoint_every_steps=2", "--classes=0-1"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _run(_train_argv(killed, *extra), kill_after=5)
    assert not (killed / "model.keras").exists()  # it really died mid-run
    state = checkpoint_state(str(killed))
    assert (state["epoch"], state["batch"], state["step"]) == (1, 1, 4)  # a mid-epoch one
    _run(_train_argv(killed, *extra))  # the same command again
    metrics = json.loads((killed / "metrics.json").read_text())
    assert (metrics["resumed_from_epoch"], metrics["resumed_from_step_in_epoch"]) == (1, 1)
    # The uninterrupted run, in this process (one process start less; same kernels on CPU).
    run_from_argv(["train.py", *_train_argv(whole, *extra)])

    expected, resumed = _weights(str(whole)), _weights(str(killed))
    assert [name for name, _ in expected] == [name for name, _ in resumed]
    different = [f"{i}:{name}" for i, ((name, a), (_, b)) in enumerate(zip(expected, resumed))
                 if not np.array_equal(a, b)]
    assert not different, f"{len(different)} of {len(expected)} variables differ: {different[:8]}"
    iterations = [int(value) for name, value in resumed if name == "iteration"]
    assert iterations and set(iterations) == {6}  # every optimizer: 2 epochs x 3 steps
    history = json.loads((killed / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def _variables(model):
    """Like `_weights`, for a model in memory."""
    variables = list(model.weights)
    for optimizer in model.optimizer_list:
        variables += list(optimizer.variables)
    return [(v.path.split("/")[-1].split("_")[-1], np.asarray(v.numpy())) for v in variables]


def _differences(expected, resumed):
    assert [name for name, _ in expected] == [name for name, _ in resumed]
    return [f"{i}:{name}" for i, ((name, a), (_, b)) in enumerate(zip(expected, resumed))
            if not np.array_equal(a, b)]


#: 2 epochs of 2 steps, a checkpoint after every step (ckpt-1 .. ckpt-4; two kept)
EVERY_STEP = ["--epochs=2", "--steps_per_epoch=2", "--checkpoint_every_steps=1",
              "--classes=0-1", "--samples_per_class=1"]


@pytest.mark.slow  # ~4 min: one killed process and one resumed run per write point
def test_kill_at_every_write_point_of_a_checkpoint_save_resumes_exactly(tmp_path, caplog):
    """The save at step 3 (mid-epoch 2: ckpt-1 and ckpt-2 exist, ckpt-1 is pruned after it) is
    killed at each of its write points in turn; every restart resumes from a complete
    checkpoint (step 2 or 3) without a fallback warning and ends with the uninterrupted run's
    weights."""
    whole = tmp_path / "whole"
    # The uninterrupted run, with the counting hooks in place but no kill: how many points.
    output = _run(_train_argv(whole, *EVERY_STEP), kill_at_write=(3, 0)).stdout
    points = int(output.split("WRITE_POINTS=")[1].split()[0])
    assert points >= 6, output  # staging, state, manifest, fsyncs, the rename, pruning
    expected = _weights(str(whole))
    assert [step for step, _ in checkpoint_folders(str(whole / "checkpoints"))] == [4, 3]
    resumed_from = set()
    for k in range(1, points + 1):
        killed = tmp_path / f"killed_{k}"
        _run(_train_argv(killed, *EVERY_STEP), kill_at_write=(3, k))
        assert not (killed / "model.keras").exists()
        state = checkpoint_state(str(killed))
        assert state["step"] in (2, 3), (k, state)
        resumed_from.add(state["step"])
        caplog.clear()
        with caplog.at_level("WARNING"):
            run_from_argv(["train.py", *_train_argv(killed, *EVERY_STEP)])  # the same command
        assert not [r for r in caplog.records if "cannot be read" in r.getMessage()], k
        metrics = json.loads((killed / "metrics.json").read_text())
        assert metrics["resumed_from_epoch"] == 1, (k, metrics)
        different = _differences(expected, _weights(str(killed)))
        assert not different, f"kill at write point {k}/{points}: {different[:8]} differ"
        assert [s for s, _ in checkpoint_folders(str(killed / "checkpoints"))] == [4, 3]
        assert not [n for n in os.listdir(killed / "checkpoints") if n.startswith(".tmp-")]
    assert resumed_from == {2, 3}  # kills before and after the checkpoint was put in place


def test_every_write_point_of_a_checkpoint_save_leaves_a_complete_checkpoint(tmp_path,
                                                                             monkeypatch):
    """The fast, in-process twin of the killed-process test above: at each write point of the
    save at step 3 the checkpoints folder is copied just before the write happens (what a
    SIGKILL there leaves on disk: every earlier call done, nothing after), then the run goes on.
    Each copy restores a complete checkpoint, step 2's or step 3's, with exactly the weights,
    optimizer state and seed states the run had at that step."""
    import shutil

    from keras_lsvae import data
    from keras_lsvae.training import TrainConfig, build_model, train
    from keras_lsvae.training import callbacks
    from tests.helpers import count_write_points

    config = TrainConfig(workdir=str(tmp_path / "run"), model="lrlivae", dataset="digits",
                         epochs=2, steps_per_epoch=2, checkpoint_every_steps=1, batch_size=8,
                         image_size=8, samples_per_class=1, verbose=0, seed=3,
                         model_args={"width": 8, "zs_dim": 3, "zu_dim": 2, "n_gm": 1,
                                     "latent_classifier_units": (8,)})
    checkpoints = os.path.join(config.workdir, "checkpoints")
    snapshots, saved = [], {}

    def snapshot():  # what a SIGKILL just before this write leaves on disk
        copy = tmp_path / f"kill_{len(snapshots) + 1}"
        shutil.copytree(checkpoints, copy / "checkpoints", symlinks=True)
        snapshots.append(copy)

    active = count_write_points(monkeypatch.setattr, snapshot)
    save = callbacks.Checkpointer.save

    def recorded_save(self, model, *args, **kwargs):
        active[0] = self.step == 3
        try:
            return save(self, model, *args, **kwargs)
        finally:
            active[0] = False
            saved[self.step] = (_variables(model), {
                k: np.asarray(g.state.numpy()).tolist()
                for k, g in callbacks.seed_generators(model).items()})

    monkeypatch.setattr(callbacks.Checkpointer, "save", recorded_save)
    train(config)
    monkeypatch.undo()
    assert len(snapshots) >= 6 and sorted(saved) == [1, 2, 3, 4]
    restored_steps = []
    for copy in snapshots:
        model = build_model(config, data.info("digits", image_size=8))
        model.compile()
        state = callbacks.Checkpointer(str(copy)).restore(model)
        restored_steps.append(state["step"])
        variables, seed_states = saved[state["step"]]
        assert state["seed_states"] == seed_states
        different = _differences(variables, _variables(model))
        assert not different, f"{copy.name} (step {state['step']}): {different[:8]} differ"
    # Killed before the rename: step 2's; after it: step 3's (the pruning of ckpt-1 comes last).
    assert restored_steps == sorted(restored_steps) and set(restored_steps) == {2, 3}


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    """A newest checkpoint whose weights no longer match its manifest (a torn write, a bad
    disk) is skipped with a warning; the run resumes from the one before and still ends with
    the uninterrupted run's weights."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run_from_argv(["train.py", *_train_argv(whole, *EVERY_STEP)])
    _run(_train_argv(killed, *EVERY_STEP), kill_after=3)  # checkpoints 2 and 3 kept
    newest = dict(checkpoint_folders(str(killed / "checkpoints")))[3]
    weights = os.path.join(newest, "ckpt.weights.h5")
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)
    caplog.clear()
    with caplog.at_level("WARNING"):
        run_from_argv(["train.py", *_train_argv(killed, *EVERY_STEP)])
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("ckpt-00000003" in w and "falling back" in w for w in warnings), warnings
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 1 and "resumed_from_step_in_epoch" not in metrics
    different = _differences(_weights(str(whole)), _weights(str(killed)))
    assert not different, different[:8]
    assert [s for s, _ in checkpoint_folders(str(killed / "checkpoints"))] == [4, 3]


def test_old_layout_checkpoint_still_restores(tmp_path):
    """``checkpoints/ckpt.weights.h5`` + ``checkpoints/state.json`` (the layout before
    checkpoint folders) restore; the first new save replaces them with a folder."""
    from keras_lsvae.training.callbacks import Checkpointer
    from tests.helpers import tiny_lrlivae

    def built(seed):
        model = tiny_lrlivae(n_gm=1, seed=seed)
        model.compile()
        model.reconstruct(np.zeros((1, 8, 8, 1), "float32"))
        return model

    source, target = built(0), built(1)
    legacy = tmp_path / "checkpoints"
    legacy.mkdir()
    source.save_weights(str(legacy / "ckpt.weights.h5"))
    (legacy / "state.json").write_text(json.dumps({"epoch": 3, "batch": 0, "step": 12}))
    checkpointer = Checkpointer(str(tmp_path))
    state = checkpointer.restore(target)
    assert (state["epoch"], state["step"], checkpointer.step) == (3, 12, 12)
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    checkpointer.step = 13
    checkpointer.save(target, 3, batch=1)
    assert sorted(os.listdir(legacy)) == ["ckpt-00000013"]
    assert checkpoint_state(str(tmp_path))["step"] == 13
    # An unreadable one of either layout: a clear error, not a silent fresh start.
    (legacy / "ckpt-00000013" / "manifest.json").write_text("{")
    with pytest.raises(RuntimeError, match="cannot be read.*manifest.json.*--restart"):
        Checkpointer(str(tmp_path)).restore(target)


def test_stream_opened_at_a_step_continues_the_stream():
    """`train_stream(start_step=s)` yields what the stream from 0 yields from its s-th batch on,
    across pass boundaries, in both modes, with flips; and each pass has a new order."""
    from keras_lsvae.data.pipeline import train_stream

    options = dict(seed=5, group=2, flip=True, image_size=8)
    for continuous in (False, True):
        stream, per_pass = train_stream("digits", 64, continuous=continuous, **options)
        whole = [(x.numpy(), y.numpy()) for x, y in stream.take(2 * per_pass + 3)]
        assert not np.array_equal(whole[0][1], whole[per_pass][1])  # pass 1 is reshuffled
        for start in (1, per_pass - 1, per_pass, per_pass + 2):
            opened, _ = train_stream("digits", 64, continuous=continuous, start_step=start,
                                     **options)
            for (x, y), (ex, ey) in zip(opened.take(len(whole) - start), whole[start:]):
                np.testing.assert_array_equal(y.numpy(), ey)
                np.testing.assert_array_equal(x.numpy(), ex)
