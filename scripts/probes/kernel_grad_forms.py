"""The 4x4 stride-2 "same" conv's kernel gradient (the slowest primitives, docs/speed.md)
in three forms, timed interleaved in one process: TF's Conv2DBackpropFilter; the
same gradient as the 2x2 stride-1 "valid" conv of space_to_depth(pad(x)) with the kernel
regrouped; and im2col (`tf.image.extract_patches`) + one matmul. Prints the relative error
of each form against TF's and the median ms per call.

    python scripts/probes/kernel_grad_forms.py
"""
import time

import numpy as np
import tensorflow as tf

SHAPES = [(64, 16, 32, 64), (64, 8, 64, 128), (64, 32, 16, 32)]  # batch, size, in, out


def median_ms(fn, n=10):
    fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


for batch, size, cin, cout in SHAPES:
    x = tf.random.normal([batch, size, size, cin])
    dy = tf.random.normal([batch, size // 2, size // 2, cout])

    @tf.function
    def tf_form():
        return tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=[4, 4, cin, cout], out_backprop=dy, strides=[1, 2, 2, 1],
            padding="SAME")

    @tf.function
    def space_to_depth_form():
        blocks = tf.nn.space_to_depth(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), 2)
        grad = tf.raw_ops.Conv2DBackpropFilter(
            input=blocks, filter_sizes=[2, 2, 4 * cin, cout], out_backprop=dy,
            strides=[1, 1, 1, 1], padding="VALID")
        # grad[a, b, (p, q, c), o] is the kernel's [2a + p, 2b + q, c, o]
        grad = tf.transpose(tf.reshape(grad, [2, 2, 2, 2, cin, cout]), [0, 2, 1, 3, 4, 5])
        return tf.reshape(grad, [4, 4, cin, cout])

    @tf.function
    def matmul_form():
        patches = tf.image.extract_patches(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]),
                                           [1, 4, 4, 1], [1, 2, 2, 1], [1, 1, 1, 1], "VALID")
        grad = tf.matmul(tf.reshape(patches, [-1, 16 * cin]), tf.reshape(dy, [-1, cout]),
                         transpose_a=True)
        return tf.reshape(grad, [4, 4, cin, cout])

    reference = tf_form()
    forms = {"tf": tf_form, "space_to_depth": space_to_depth_form, "matmul": matmul_form}
    times = {name: [] for name in forms}
    for _ in range(5):
        for name, fn in forms.items():
            times[name].append(median_ms(fn))
    def error(fn):
        return float(tf.reduce_max(tf.abs(fn() - reference)) / tf.reduce_max(tf.abs(reference)))

    line = {name: (round(float(np.median(t)), 3), f"{error(forms[name]):.1e}")
            for name, t in times.items()}
    print((batch, size, cin, cout), "ms, rel. error:", line, flush=True)
