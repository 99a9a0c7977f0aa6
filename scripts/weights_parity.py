"""Train shipped configs for a few steps and compare the weights between two checkouts.

    python scripts/weights_parity.py --out=/tmp/before.npz            # on the old commit
    python scripts/weights_parity.py --out=/tmp/after.npz             # on the new one
    python scripts/weights_parity.py --compare=/tmp/before.npz,/tmp/after.npz

Each config trains ``--steps`` steps (one epoch, fixed seed, in a scratch workdir); the file
holds every model variable and every optimizer variable, in order. ``--compare`` prints, per
config, the number of tensors, the largest absolute difference and whether all are
bit-identical, and exits non-zero above ``--tolerance``. A refactoring that claims "no change
in behaviour" shows it with this script.
"""

import os
import sys
import tempfile

import numpy as np
from absl import app, flags

DEFAULT_CONFIGS = ("debug", "mnist_dev", "digits", "csvae_digits", "vae_digits",
                   "condvae_digits", "condvae_info_digits", "cvae_digits", "cvaegan_digits",
                   "cgan_digits", "swiss_roll")

flags.DEFINE_list("configs", list(DEFAULT_CONFIGS), "config names under configs/")
flags.DEFINE_integer("steps", 50, "training steps per config")
flags.DEFINE_string("out", None, "npz to write the weights to")
flags.DEFINE_list("compare", None, "two npz files written by --out")
flags.DEFINE_float("tolerance", 1e-6, "largest allowed absolute difference")
FLAGS = flags.FLAGS


def collect(config_name, steps):
    from keras_lsvae.training.flags import config_from_flagfile
    from keras_lsvae.training.loop import train_model

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as workdir:
        config = config_from_flagfile(os.path.join(root, "configs", f"{config_name}.cfg"),
                                      workdir=workdir, epochs=1, steps_per_epoch=steps,
                                      finetune_epochs=0, verbose=0)
        model, _ = train_model(config)
    arrays = {}
    for i, variable in enumerate(model.weights):
        arrays[f"{config_name}/model/{i:04d}"] = np.asarray(variable)
    for name in getattr(model, "OBJECTIVES", ()):
        for i, variable in enumerate(model.objective_optimizers[name].variables):
            arrays[f"{config_name}/opt_{name}/{i:04d}"] = np.asarray(variable)
    return arrays


def compare(path_a, path_b, tolerance):
    a, b = np.load(path_a), np.load(path_b)
    worst = 0.0
    for config in sorted({key.split("/")[0] for key in a.files}):
        keys_a = sorted(k for k in a.files if k.startswith(config + "/"))
        keys_b = sorted(k for k in b.files if k.startswith(config + "/"))
        if keys_a != keys_b or any(a[k].shape != b[k].shape for k in keys_a):
            print(f"{config}: different variables ({len(keys_a)} vs {len(keys_b)})")
            worst = np.inf
            continue
        diff = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]), initial=0.0))
                   for k in keys_a)
        same = all(np.array_equal(a[k], b[k]) for k in keys_a)
        worst = max(worst, diff)
        print(f"{config}: {len(keys_a)} tensors, max |a - b| = {diff:.3g}, "
              f"bit-identical: {same}")
    return 0 if worst <= tolerance else 1


def main(argv):
    del argv
    if FLAGS.compare:
        sys.exit(compare(*FLAGS.compare, FLAGS.tolerance))
    if not FLAGS.out:
        raise app.UsageError("--out or --compare is required")
    arrays = {}
    for name in FLAGS.configs:
        arrays.update(collect(name, FLAGS.steps))
        print(f"{name}: done", flush=True)
    from keras_lsvae import io

    io.atomic_savez(FLAGS.out, **arrays)


if __name__ == "__main__":
    app.run(main)
