"""Draw a finished training run's figures: paper A's (Lr-LiVAE) for class models, paper B's
(CSVAE and its baselines VAE, CondVAE, CondVAE-info: Fig. 2 latents, Fig. 3/4 manipulation with
the W_i sampling grid, Fig. 5 style products, p in [0, 3] grids) for attribute models.

    python scripts/visualize.py --workdir=runs/digits [--out_dir=runs/digits/figures] [--seed=0]

Writes the PNGs and an ``index.json`` (default into ``<workdir>/figures``) and prints one
``name: path`` line per figure. See :func:`keras_lsvae.viz.run.visualize_run` for the figures.
"""

import json
import os

from absl import app, flags

# Defined here, not shared with train.py: this script reads a run, it does not configure one.
flags.DEFINE_string("workdir", None, "Run directory written by scripts/train.py (model.keras, "
                    "config.json).")
flags.DEFINE_string("out_dir", None, "Where to write the figures; default <workdir>/figures.")
flags.DEFINE_integer("seed", 0, "Seed of every random choice (samples, latents, test images).")
flags.DEFINE_integer("num_steps", 8, "Columns of Fig. 3/4, traversal values of Fig. 5, images "
                     "of Fig. 7; paper B: samples per target, W_i grid side, values of p.")
flags.DEFINE_integer("max_classes", 10, "At most this many classes in Fig. 3 and Fig. 6 "
                     "(paper B: attributes with a W_i grid, rows of the p grid).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from keras_lsvae.cli import run_or_exit
    from keras_lsvae.viz.run import visualize_run  # imported late: TF starts after flag parsing

    # A missing or unfinished run, bad numbers: one "error:" line saying what to change.
    paths = run_or_exit(visualize_run, FLAGS.workdir, out_dir=FLAGS.out_dir, seed=FLAGS.seed,
                        num_steps=FLAGS.num_steps, max_classes=FLAGS.max_classes)
    for name, path in paths.items():
        print(f"{name}: {path}")
    index_path = os.path.join(FLAGS.out_dir or os.path.join(FLAGS.workdir, "figures"),
                              "index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            for name, reason in json.load(f).get("skipped", {}).items():
                print(f"skipped {name}: {reason}")


if __name__ == "__main__":
    flags.mark_flag_as_required("workdir")
    app.run(main)
