"""Does grappler's remapper (which fails on the train step) matter? Lr-LiVAE's train function
optimized with remapping off vs on (default), interleaved in one process."""
import sys, tensorflow as tf
from keras_lsvae.benchmarks import speed as S
NAME = sys.argv[2] if len(sys.argv) > 2 else "lrlivae"
runs = {}
for label, remap in (("remap_off", False), ("remap_on", True)):
    tf.config.optimizer.set_experimental_options({"remapping": remap})
    model, batch = S.build(NAME)
    step = S.iteration_runner(model)
    it = iter(tf.data.Dataset.from_tensors(batch).repeat())
    step(it)  # instantiates (optimizes) the function under this setting
    runs[label] = (step, it)
print(tf.config.optimizer.get_experimental_options())
import time, statistics
times = {k: [] for k in runs}
for i in range(int(sys.argv[1])):
    for k, (step, it) in runs.items():
        t = time.perf_counter(); step(it); times[k].append(time.perf_counter() - t)
ms = {k: 1e3 * statistics.median(v[2:]) for k, v in times.items()}
print(NAME, ms, "on/off", round(ms["remap_on"] / ms["remap_off"], 3))
