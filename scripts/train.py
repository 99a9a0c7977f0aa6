"""Train a model: flags -> TrainConfig -> keras_lsvae.training.train.

    python scripts/train.py --flagfile=configs/digits.cfg --workdir=runs/digits

Rerunning the same command resumes from the last checkpoint. See README.md.
"""

import os

from absl import app, flags

from keras_lsvae.training.flags import config_from_flags, define_train_flags

define_train_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = config_from_flags(FLAGS)
    os.makedirs(config.workdir, exist_ok=True)
    with open(os.path.join(config.workdir, "flags.txt"), "w") as f:
        f.write(FLAGS.flags_into_string())
    from keras_lsvae.training import train  # imported late: TF starts after flag parsing
    metrics = train(config)
    summary = {k: v for k, v in metrics.items() if k.startswith("test_")}
    print("metrics:", summary)


if __name__ == "__main__":
    flags.mark_flag_as_required("workdir")
    app.run(main)
