"""Benchmark suites, picked by name (``scripts/benchmark.py --suite=NAME --out=DIR``).

Each suite trains what it needs, measures quality with the papers' protocols and returns a dict
of numbers, settings and versions that ``run_suite`` writes to ``DIR/NAME.json``. Speed and
quality targets live here, never in timed tests.
"""

import inspect
import os
import time

# noqa: F401 below: imported to register their suites
from keras_lsvae.benchmarks import csvae, export, lrlivae, paper_a, speed  # noqa: F401
from keras_lsvae import io
from keras_lsvae.registry import BENCHMARKS


def run_suite(name, out_dir, **options):
    """Run suite ``name`` and write ``out_dir/name.json``; returns the result dict."""
    suite = BENCHMARKS.get(name)
    accepted = inspect.signature(suite).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"suite {name!r} does not take {', '.join(unknown)}; it takes "
                         f"{', '.join(p for p in accepted if p != 'out_dir')}")
    for key in ("num_seeds", "epochs"):  # counts: positive integers, checked before training
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ValueError(f"--{key}: must be a positive integer, got {value!r}")
    if "seed" in options and (isinstance(options["seed"], bool)
                              or not isinstance(options["seed"], int) or options["seed"] < 0):
        raise ValueError(f"--seed: must be a non-negative integer, got {options['seed']!r}")
    created = not os.path.isdir(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    started = time.time()
    try:
        result = suite(out_dir, **options)
    except Exception:
        if created and not os.listdir(out_dir):  # e.g. a missing data file: leave no trace
            os.rmdir(out_dir)
        raise
    result["suite"] = name
    result["wall_seconds"] = round(time.time() - started, 1)
    path = os.path.join(out_dir, f"{name}.json")
    io.atomic_write_json(path, result, indent=1, sort_keys=True)
    return result
