"""``--strategy=multi_worker``: 2 worker processes on 127.0.0.1 (``TF_CONFIG``, one CPU replica
each) train 3 steps with the `keras_lsvae.training.distributed` loop (Keras 3's ``fit`` fails
under ``MultiWorkerMirroredStrategy``, keras-team/keras#20585) and must end with

* identical weights on both workers (bitwise: both apply the same all-reduced update);
* the weights of one process training on the same global batches with ``fit``, within the
  issue's criterion ‖w₁ − w₂‖ ≤ 1e-3 · ‖w₁ − w₀‖ (all-reduce sums in another order than one
  device, so float noise remains);
* the same logged epoch means and test losses as that process (metrics are averaged over the
  replicas of all workers, i.e. over the global batch);
* files from the chief only: worker 1 gets its own ``--workdir`` here and must leave it unwritten
  (its saves go to a scratch directory that is deleted);
* a refused resume when the workers would resume from different checkpoints (a ``--workdir``
  that is not shared), instead of a hang.
* the coordination service's heartbeat timeout raised from TF's 10 s on both workers
  (`keras_lsvae.training.strategy.HEARTBEAT_TIMEOUT_SECONDS`; with TF's, a worker busy
  compiling the conv step on a loaded machine was declared dead and both aborted).

Two cases, Lr-LiVAE both times:

* toy2d: MLP networks (no batch norm) and ``train_sampling="mode"``, so the comparison with
  one process is exact up to float noise whatever way the batch is split; this case also checks
  the chief-only files and the refused resume;
* digits at 16x16: conv networks with batch norm (the encoders' second block, the decoders)
  and posterior sampling on (the default ``train_sampling``), width 8. Each worker holds half
  of every global batch, so this holds only if the batch-norm statistics are those of the
  global batch (an all-reduce across the workers, not just the local replicas) and an
  example's noise does not depend on which worker draws it (keras_lsvae/layers.py, "Replica
  invariance"); the batch-norm moving statistics are compared too. Measured ‖w₁ − w₂‖ /
  ‖w₁ − w₀‖: 1.2e-5.

The same mechanisms are tested across the models under MirroredStrategy (one process, 2 CPU
replicas) in tests/test_distribute.py.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile

import keras
import numpy as np

from keras_lsvae.training.strategy import HEARTBEAT_TIMEOUT_SECONDS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 480  # seconds for the 2 workers (each ~30 s alone on 2 idle cores, up to 175 s
#               measured on 2 cores shared with other jobs)

#: one worker: train.py's flags -> train_model, then its final weights to $WEIGHTS_OUT
WORKER = """
import os, sys
import numpy as np
from keras_lsvae.training.flags import config_from_flags, parse_argv
from keras_lsvae.training.loop import train_model

values = parse_argv(["train.py", *sys.argv[1:]])
model, metrics = train_model(config_from_flags(values), values.flags_into_string())
np.savez(os.environ["WEIGHTS_OUT"], *[np.asarray(v.numpy()) for v in model.weights])
print("replicas", metrics["replicas"], flush=True)
from tensorflow.python.eager import context
print("heartbeat timeout ms", context.context().coordination_service.heartbeat_timeout_in_ms,
      flush=True)
"""


#: The cases' flags. The test batches must divide the test split: with 2 replicas the loop
#: drops an incomplete last test batch (tests/test_training.py), one process would not.
#: toy2d (1500 test points, batch 20): MLP networks without batch norm, no sampling.
TOY2D = ("--dataset=toy2d", "--batch_size=20", "--model_arg=zs_dim=2", "--model_arg=zu_dim=2",
         "--model_arg=n_gm=1", "--model_arg=train_sampling='mode'")
#: digits at 16x16 (360 test images, batch 20): conv networks with batch norm (the encoders'
#: second block, the decoders), posterior sampling on (the default), width 8.
DIGITS = ("--dataset=digits", "--batch_size=20", "--model_arg=width=8", "--model_arg=zs_dim=3",
          "--model_arg=zu_dim=2", "--model_arg=n_gm=1", "--model_arg=mlp_units=(8,)",
          "--model_arg=latent_classifier_units=(8,)")


def _argv(workdir, strategy, case):
    return [f"--workdir={workdir}", f"--strategy={strategy}", "--model=lrlivae", "--epochs=1",
            "--steps_per_epoch=3", "--seed=4", "--samples_per_class=2", "--verbose=0", *case]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_workers(tmp_path, case, *extra, expect_success=True):
    """Start both workers, wait for both; fail with both outputs if either fails (or, with
    ``expect_success=False``, succeeds) or hangs. Returns the weights, or the outputs."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2",
                   WEIGHTS_OUT=str(tmp_path / f"weights_{index}.npz"),
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": index}}))
        log = tempfile.TemporaryFile(mode="w+")
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER,
             *_argv(tmp_path / f"run_{index}", "multi_worker", case), *extra],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, text=True)
        workers.append((process, log))
    failures, hung = [], False
    for index, (process, log) in enumerate(workers):
        try:
            process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            hung = True
            for other, _ in workers:
                other.kill()
            process.wait()
        if process.returncode != 0:
            failures.append(index)
    outputs = []
    for index, (process, log) in enumerate(workers):
        log.seek(0)
        outputs.append(f"--- worker {index} (exit {process.returncode}) ---\n"
                       + log.read()[-5000:])
        log.close()
    if not expect_success:
        assert not hung and failures == [0, 1], (
            f"expected both workers to fail (hung: {hung}):\n" + "\n".join(outputs))
        return outputs
    assert not failures, (f"workers {failures} failed or hung (timeout {TIMEOUT} s):\n"
                          + "\n".join(outputs))
    # TF's 10 s heartbeat timeout was raised (keras_lsvae.training.strategy): both workers
    # were declared dead on this loaded machine without it
    for output in outputs:
        assert f"heartbeat timeout ms {HEARTBEAT_TIMEOUT_SECONDS * 1000}\n" in output, output
    return [list(np.load(tmp_path / f"weights_{i}.npz").values()) for i in range(2)]


def _check_like_one_process(tmp_path, case, weights):
    """Both workers' final ``weights`` are identical, and those of one process training with
    ``fit`` on the same seed and global batches: trainable weights within the issue's
    criterion, batch-norm moving statistics, logged epoch means and test losses within float
    noise. Returns ‖w₁ − w₂‖ / ‖w₁ − w₀‖."""
    from keras_lsvae import data
    from keras_lsvae.training.flags import config_from_flags, parse_argv
    from keras_lsvae.training.loop import build_model, train_model

    chief_weights, other_weights = weights
    for a, b in zip(chief_weights, other_weights):
        np.testing.assert_array_equal(a, b)  # the two workers hold the same model

    config = config_from_flags(parse_argv(["train.py",
                                           *_argv(tmp_path / "single", "default", case)]))
    keras.utils.set_random_seed(config.seed)
    initial = build_model(config, data.info(config.dataset))
    w0 = [np.asarray(v.numpy()) for v in initial.trainable_variables]
    model, single = train_model(config)
    trainable = {id(v) for v in model.trainable_variables}
    positions = [i for i, v in enumerate(model.weights) if id(v) in trainable]
    w1 = [np.asarray(model.weights[i].numpy()) for i in positions]
    w2 = [chief_weights[i] for i in positions]
    assert [w.shape for w in w1] == [w.shape for w in w0]
    moved = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(w1, w0)))
    apart = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(w1, w2)))
    assert moved > 0.01
    assert apart <= 1e-3 * moved, f"|w1 - w2| = {apart:.3g}, |w1 - w0| = {moved:.3g}"
    # The other float weights (batch-norm moving statistics) follow the global batch too.
    for i, v in enumerate(model.weights):
        if id(v) not in trainable and v.dtype.startswith("float"):
            np.testing.assert_allclose(chief_weights[i], v.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=v.path)

    # Logged metrics are means over the global batch: the same as one process's.
    chief = tmp_path / "run_0"
    logs = json.loads((chief / "history.json").read_text())[-1]
    single_logs = json.loads((tmp_path / "single" / "history.json").read_text())[-1]
    assert sorted(logs) == sorted(single_logs)
    for key in single_logs:
        np.testing.assert_allclose(logs[key], single_logs[key], rtol=1e-3, atol=1e-5,
                                   err_msg=key)
    metrics = json.loads((chief / "metrics.json").read_text())
    assert metrics["replicas"] == 2
    for key in (k for k in single if k.startswith("test_")):
        np.testing.assert_allclose(metrics[key], single[key], rtol=1e-3, atol=1e-5, err_msg=key)
    return apart / moved


def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path):
    weights = _run_workers(tmp_path, TOY2D)
    chief, other = tmp_path / "run_0", tmp_path / "run_1"
    assert not other.exists(), sorted(os.listdir(other))  # the non-chief wrote nothing
    for name in ("model.keras", "metrics.json", "history.json", "config.json", "flags.txt",
                 "checkpoints", "points"):
        assert (chief / name).exists(), name
    assert list((chief / "checkpoints").glob("ckpt-*/manifest.json"))  # a complete one
    _check_like_one_process(tmp_path, TOY2D, weights)

    # Resuming: worker 1's --workdir (not shared here) has no checkpoint while the chief's has
    # epoch 1's. Starting over on one worker only would hang the cluster in mismatched
    # collectives; both must stop with a message instead.
    outputs = _run_workers(tmp_path, TOY2D, "--epochs=2", expect_success=False)
    for output in outputs:
        assert "the workers resume from different checkpoints" in output, output


def test_two_workers_train_conv_networks_with_batch_norm_and_sampling_like_one_process(
        tmp_path):
    """Each worker holds half of every global batch: the batch-norm statistics must be those of
    the global batch (an all-reduce across the workers) and an example's sampling noise must
    not depend on which worker holds it, or the update differs from one process's."""
    ratio = _check_like_one_process(tmp_path, DIGITS, _run_workers(tmp_path, DIGITS))
    print(f"digits: |w1 - w2| / |w1 - w0| = {ratio:.2g}")  # shown with -s
