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

import keras_lsvae.models  # noqa: F401  (registers the classes model.keras files name)
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


def _run(argv, kill_after=None):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    if kill_after is None:
        command = [sys.executable, os.path.join(REPO, "scripts", "train.py"), *argv]
    else:
        command = [sys.executable, "-c", KILLED_RUN, *argv]
        env["KILL_AFTER_STEP"] = str(kill_after)
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=REPO,
                            env=env)
    expected = 0 if kill_after is None else -signal.SIGKILL
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
    state = json.loads((killed / "checkpoints" / "state.json").read_text())
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
