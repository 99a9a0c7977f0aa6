"""Fused vs Keras batch norm, fwd + bwd alone, at the shapes of the Dense layers (2-D) and as (B, 1, 1, C)."""
import numpy as np, tensorflow as tf, keras, time, statistics
from keras_lsvae import layers as L
rng = np.random.default_rng(0)
for shape in [(64,1,1,2048),(64,2048),(64,1,1,256)]:
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    fns = {}
    for kind, cls in (("keras", keras.layers.BatchNormalization), ("fused", L.BatchNormalization)):
        l = cls(synchronized=True, momentum=0.9); l.build(shape)
        @tf.function
        def f(x, l=l):
            with tf.GradientTape() as t:
                t.watch(x); y = l(x, training=True); loss = tf.reduce_sum(y * y)
            return t.gradient(loss, [x, l.gamma, l.beta])[0][0,0]
        f(x); fns[kind] = f
    times = {k: [] for k in fns}
    for _ in range(30):
        for k, f in fns.items():
            s = time.perf_counter(); f(x).numpy(); times[k].append(time.perf_counter() - s)
    m = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(shape, {k: round(v, 3) for k, v in m.items()}, "fused/keras", round(m["fused"] / m["keras"], 2))
