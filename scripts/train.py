"""Train a model: flags -> TrainConfig -> keras_lsvae.training.train.

    python scripts/train.py --flagfile=configs/digits.cfg

Without --workdir the run goes to runs/<flagfile name> (runs/digits here), printed at the start.
Rerunning the same command resumes from the last checkpoint; --restart starts over. See README.md.
"""

import sys

from absl import app, flags

from keras_lsvae.cli import run_or_exit
from keras_lsvae.training.flags import define_train_flags, run_from_flags

define_train_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Bad settings, unknown names and missing data: one "error:" line saying what to change.
    run_or_exit(run_from_flags, FLAGS, sys.argv)


if __name__ == "__main__":
    app.run(main)
