"""Evaluate trained models: flags -> keras_lsvae.evaluation.evaluate_workdirs.

    python scripts/evaluate.py --workdirs=runs/digits,runs/cvae_digits --out=eval_digits
    python scripts/evaluate.py --workdirs=runs/a_seed0,runs/a_seed1 --dataset=digits --out=DIR

Writes DIR/evaluation.json and DIR/evaluation.md: one row per model (runs of one model grouped,
mean ± std over their seeds), every applicable metric (IS, FID, intra-class FID, intra-class
MS-SSIM diversity, conditional accuracy, leakage probes, reconstruction and inpainting error),
the evaluation classifier's test accuracy, settings and versions. The evaluation classifier of a
data set is trained once and cached (--classifier_dir). See docs/evaluation.md.
"""

from absl import app, flags

from keras_lsvae.cli import run_or_exit
from keras_lsvae.evaluation import define_flags, run_from_flags

define_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Missing workdirs / model.keras, unknown data sets, mismatched shapes: say what to do.
    output = run_or_exit(run_from_flags, FLAGS)
    print(f"wrote {FLAGS.out}/evaluation.md and {FLAGS.out}/evaluation.json "
          f"({len(output['models'])} models, {len(output['runs'])} runs)")


if __name__ == "__main__":
    app.run(main)
