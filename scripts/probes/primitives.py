"""oneDNN's own time per primitive in one training iteration of a model (CIFAR-shaped, batch 64,
width 32), and the MFU ceiling that TF's CPU conv kernels leave: the model FLOPs over the time of
the conv primitives alone, everything else taken as free.

    ONEDNN_VERBOSE=1 TF_NUM_INTEROP_THREADS=1 python scripts/probes/primitives.py lrlivae

One inter-op thread, so that primitives run one at a time and their times are their own (two
at once share the two cores). ONEDNN_VERBOSE prints one line per primitive execution, with its
shape and time in ms; the iterations after the marker line are parsed here from a copy of the
run's output, so the script re-runs itself with the variable set and its output captured."""
import collections, os, re, statistics, subprocess, sys

ITERATIONS = 5
if os.environ.get("ONEDNN_VERBOSE") != "1":
    name = sys.argv[1] if len(sys.argv) > 1 else "lrlivae"
    env = dict(os.environ, ONEDNN_VERBOSE="1", TF_NUM_INTEROP_THREADS="1")
    out = subprocess.run([sys.executable, __file__, name], env=env, capture_output=True,
                         text=True).stdout.splitlines()
    mark = out.index("MARK")
    lines = [l for l in out[mark:] if l.startswith("onednn_verbose") and ",exec," in l]
    summary = [l for l in out if l.startswith("RESULT")]
    time, count, flops, impl = (collections.Counter(), collections.Counter(),
                                collections.Counter(), {})
    for line in lines:
        p = line.split(",")
        kind, impl_name, prop, desc, ms = p[5], p[6], p[7], p[-2], float(p[-1])
        key = (kind, prop, desc)
        time[key] += ms / ITERATIONS
        count[key] += 1 / ITERATIONS
        impl[key] = impl_name
        m = re.match(r"mb(\d+)_ic(\d+)oc(\d+)_ih(\d+)oh(\d+)kh(\d+).*_iw(\d+)ow(\d+)kw(\d+)", desc)
        if m and kind == "convolution":
            mb, ic, oc, ih, oh, kh, iw, ow, kw = map(int, m.groups())
            flops[key] += 2 * mb * ic * oc * oh * ow * kh * kw / ITERATIONS
    model_gflop, peak = map(float, summary[0].split()[1:3])
    conv_ms = sum(v for k, v in time.items() if k[0] == "convolution")
    print(f"{name}: model {model_gflop:.2f} GFLOP per iteration, matmul peak {peak:.0f} GFLOP/s")
    print(f"primitive time per iteration {sum(time.values()):.1f} ms, of which convolutions "
          f"{conv_ms:.1f} ms ({sum(flops.values()) / 1e9:.2f} GFLOP, "
          f"{sum(flops.values()) / conv_ms / 1e6:.0f} GFLOP/s)")
    print(f"MFU ceiling with every other op free: {model_gflop / conv_ms * 1e3 / peak:.2f}")
    print("| ms / iter | calls | primitive | pass | shape | GFLOP/s | × peak |")
    for key, v in sorted(time.items(), key=lambda kv: -kv[1])[:int(os.environ.get("TOP", 25))]:
        rate = f"{flops[key] / v / 1e6:.0f} | {flops[key] / v / 1e6 / peak:.2f}" if flops[key] else "|"
        print(f"| {v:.2f} | {count[key]:.0f} | {key[0]} | {key[1]} | {key[2][:58]} | {rate} |")
    sys.exit()

import tensorflow as tf  # noqa: E402
from keras_lsvae.benchmarks import speed as S  # noqa: E402

model, batch = S.build(sys.argv[1], batch_size=64)
model_flops, _ = S.model_flops(model, 64)
run = S.iteration_runner(model)
iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
for _ in range(6):
    run(iterator)
peak = statistics.median(S.matmul_peak_gflops(2048, repeats=3) for _ in range(5))
print("MARK", flush=True)
for _ in range(ITERATIONS):
    run(iterator)
print("\nRESULT", model_flops / 1e9, peak, flush=True)
