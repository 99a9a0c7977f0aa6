"""Run a benchmark suite: flags -> keras_lsvae.benchmarks.run_suite.

    python scripts/benchmark.py --suite=lrlivae_digits --out=bench
    python scripts/benchmark.py --suite=lrlivae_digits_seeds --num_seeds=3 --out=bench
    python scripts/benchmark.py --suite=lrlivae_mnist --data=../shared/data/mnist_dev.npz --out=bench
    python scripts/benchmark.py --suite=lrlivae_semi --data=../shared/data/mnist_dev.npz --out=bench
    python scripts/benchmark.py --suite=csvae --data=../shared/data/mnist_dev.npz --out=bench
    python scripts/benchmark.py --suite=paper_a_digits --out=bench
    python scripts/benchmark.py --suite=paper_a_mnist --data=../shared/data/mnist_dev.npz --out=bench

Writes DIR/NAME.json (numbers, settings, versions). Suites: see keras_lsvae/benchmarks/.
paper_a_digits / paper_a_mnist (paper A's comparison: cVAE, cVAE-GAN, cGAN, Lr-LiVAE trained
under one schedule) also write DIR/NAME.md, keys "<model>.<metric>" and whether paper A's
orderings hold; their evaluation classifier is cached (docs/evaluation.md). --epochs=1 is a
quick check of the whole pipeline.
"""

import json

from absl import app, flags

flags.DEFINE_string("suite", None, "Benchmark suite name.")
flags.DEFINE_string("out", "bench", "Output directory (DIR/NAME.json).")
flags.DEFINE_integer("seed", 0, "Seed of training and evaluation.")
flags.DEFINE_integer("epochs", None, "Override the suite's training epochs (quick checks).")
#: The data file of the suites that need one when --data is not given (relative to the
#: working directory: the repository root), the shared development copy of real MNIST.
MNIST_DEV = "../shared/data/mnist_dev.npz"
DEFAULT_DATA = {"lrlivae_mnist": MNIST_DEV, "csvae": MNIST_DEV, "paper_a_mnist": MNIST_DEV}

flags.DEFINE_string("data", None, "Data file of suites that take one (lrlivae_mnist, csvae, "
                    f"paper_a_mnist: mnist_dev.npz; default {MNIST_DEV}; "
                    "lrlivae_semi: digits unless given).")
flags.DEFINE_integer("num_seeds", None,
                     "Number of seeds (seed, seed+1, ...) of multi-seed suites (*_seeds, "
                     "lrlivae_mnist, lrlivae_semi, paper_a_*).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from keras_lsvae.benchmarks import run_suite
    from keras_lsvae.cli import run_or_exit

    options = {"seed": FLAGS.seed}
    if FLAGS.epochs is not None:
        options["epochs"] = FLAGS.epochs
    if FLAGS.num_seeds is not None:
        options["num_seeds"] = FLAGS.num_seeds
    data_path = FLAGS.data or DEFAULT_DATA.get(FLAGS.suite)
    if data_path:
        options["data_path"] = data_path
    # Unknown suite or option, missing data file: one "error:" line saying what to pass.
    result = run_or_exit(run_suite, FLAGS.suite, FLAGS.out, **options)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=1))


if __name__ == "__main__":
    flags.mark_flag_as_required("suite")
    app.run(main)
