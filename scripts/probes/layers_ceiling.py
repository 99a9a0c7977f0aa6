"""Per-layer fwd+bwd (weight and input gradients) MFU of Lr-LiVAE's convs, interleaved with the matmul peak."""
import statistics, time, numpy as np, tensorflow as tf, keras
from keras_lsvae.benchmarks import speed as S
B = 64
cases = {
 "conv 16x16x32->8x8x64": (keras.layers.Conv2D(64, 4, 2, "same", use_bias=False), (16, 16, 32)),
 "conv 8x8x64->4x4x128": (keras.layers.Conv2D(128, 4, 2, "same", use_bias=False), (8, 8, 64)),
 "deconv 4x4x128->8x8x64": (keras.layers.Conv2DTranspose(64, 4, 2, "same", use_bias=False), (4, 4, 128)),
 "deconv 8x8x64->16x16x32": (keras.layers.Conv2DTranspose(32, 4, 2, "same", use_bias=False), (8, 8, 64)),
 "deconv 16x16x32->32x32x16": (keras.layers.Conv2DTranspose(16, 4, 2, "same", use_bias=False), (16, 16, 32)),
 "conv3x3 32x32x16->3": (keras.layers.Conv2D(3, 3, 1, "same"), (32, 32, 16)),
}
rng = np.random.default_rng(0)
runs = {}
for name, (layer, shape) in cases.items():
    x = tf.constant(rng.normal(size=(B,) + shape).astype(np.float32))
    y = layer(x)
    c = tf.constant(rng.normal(size=y.shape).astype(np.float32))
    @tf.function(autograph=False)
    def step(x, layer=layer, c=c):
        with tf.GradientTape() as t:
            t.watch(x); loss = tf.reduce_sum(layer(x) * c)
        gx, gw = t.gradient(loss, [x, layer.kernel])
        return tf.reduce_sum(gx[:1, :1]) + tf.reduce_sum(gw[:1])
    @tf.function(autograph=False)
    def fwd(x, layer=layer):
        return tf.reduce_sum(layer(x)[:1, :1])
    flops = S.profiler_flops(fwd.get_concrete_function(tf.TensorSpec(x.shape, tf.float32)))
    step(x); fwd(x)
    runs[name] = (step, fwd, x, flops)
times = {k: ([], []) for k in runs}; peaks = []
for i in range(10):
    peaks.append(S.matmul_peak_gflops(2048, repeats=3))
    for k, (step, fwd, x, flops) in runs.items():
        for j, f in enumerate((step, fwd)):
            t = time.perf_counter()
            for _ in range(5): f(x).numpy()
            times[k][j].append((time.perf_counter() - t) / 5)
p = statistics.median(peaks)
print(f"peak {p:.0f} GFLOP/s ({min(peaks):.0f}-{max(peaks):.0f})")
for k, (step, fwd, x, flops) in runs.items():
    ts, tf_ = statistics.median(times[k][0]), statistics.median(times[k][1])
    print(f"{k:28s} fwd {flops/1e6:5.0f} MFLOP {tf_*1e3:6.2f} ms MFU {flops/tf_/1e9/p:.2f} | fwd+bwd {ts*1e3:6.2f} ms MFU {3*flops/ts/1e9/p:.2f}")
