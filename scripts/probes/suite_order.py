"""The speed suite on a few models in a given order (one process per call), to tell a model's own
speed from its place in the suite (docs/speed.md).

    python scripts/probes/suite_order.py cvae,lrlivae,vae OUT_DIR
"""
import sys

from keras_lsvae.benchmarks import run_suite

models, out_dir = sys.argv[1].split(","), sys.argv[2]
result = run_suite("speed", out_dir, models=models, rss_steps_per_epoch=1,
                   scaling_models=[m for m in models if m == "lrlivae"])
print(sys.argv[1], {m: (round(result[f"{m}.ms_per_iter"], 1), round(result[f"{m}.mfu"], 3))
                    for m in models})
