"""A/B: every SAME-padded 2-D conv / transposed conv's backward with its two gradients in a fixed
order (a control dependency: kernel gradient first, or input gradient first), vs TF's gradients
(both may run at once): does keeping a layer's two backward convs from overlapping on the two
cores help? Measured: no (docs/speed.md).

    python scripts/probes/ab_serial_conv_grads.py vae,condvae,lrlivae 25 dk_first|dx_first
"""
import sys, tensorflow as tf, keras
from keras.src.backend.tensorflow import nn as knn
from keras_lsvae.benchmarks import speed as S

ORDER = sys.argv[3] if len(sys.argv) > 3 else "dk_first"

def _serial(first, second):
    if ORDER == "dk_first":
        dk = first()
        with tf.control_dependencies([dk]):
            dx = second()
    else:
        dx = second()
        with tf.control_dependencies([dx]):
            dk = first()
    return dx, dk

def serial_conv(x, k, strides):
    s = [1, strides[0], strides[1], 1]
    @tf.custom_gradient
    def f(x, k):
        y = tf.nn.conv2d(x, k, s, "SAME")
        def grad(dy):
            return _serial(
                lambda: tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(k), out_backprop=dy, strides=s, padding="SAME"),
                lambda: tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=k, out_backprop=dy, strides=s, padding="SAME"))
        return y, grad
    return f(x, k)

def serial_conv_t(x, k, out_shape, strides):
    s = [1, strides[0], strides[1], 1]
    @tf.custom_gradient
    def f(x, k):
        y = tf.raw_ops.Conv2DBackpropInput(input_sizes=out_shape, filter=k, out_backprop=x, strides=s, padding="SAME")
        def grad(dy):
            return _serial(
                lambda: tf.raw_ops.Conv2DBackpropFilter(input=dy, filter_sizes=tf.shape(k), out_backprop=x, strides=s, padding="SAME"),
                lambda: tf.nn.conv2d(dy, k, s, "SAME"))
        return y, grad
    return f(x, k)

orig_conv, orig_convt = knn.conv, knn.conv_transpose
def _tup(v, n=2):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n
CALLS = {"conv": 0, "conv_transpose": 0}  # layers patched (counted while tracing)
def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    if (len(inputs.shape) == 4 and padding.lower() == "same" and _tup(dilation_rate) == (1, 1)
            and data_format in (None, "channels_last") and kernel.shape[2] == inputs.shape[-1]):
        CALLS["conv"] += 1
        return serial_conv(inputs, kernel, _tup(strides))
    return orig_conv(inputs, kernel, strides, padding, data_format, dilation_rate)
def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None, dilation_rate=1):
    st = _tup(strides)
    if (len(inputs.shape) == 4 and padding.lower() == "same" and output_padding is None
            and _tup(dilation_rate) == (1, 1) and data_format in (None, "channels_last")):
        b = tf.shape(inputs)[0]
        out = tf.stack([b, inputs.shape[1] * st[0], inputs.shape[2] * st[1], kernel.shape[2]])
        CALLS["conv_transpose"] += 1
        return serial_conv_t(inputs, kernel, out, st)
    return orig_convt(inputs, kernel, strides, padding, output_padding, data_format, dilation_rate)


# The patch is on only inside the serial variant's runner, so its train function traces with
# it whenever it traces; both runners go to speed's helpers as made here (a new runner would
# retrace without the patch).
PATCH = {"on": False}
def conv_d(*a, **k):
    return (conv if PATCH["on"] else orig_conv)(*a, **k)
def convt_d(*a, **k):
    return (conv_transpose if PATCH["on"] else orig_convt)(*a, **k)
knn.conv, knn.conv_transpose = conv_d, convt_d

def patched(step):
    def run(iterator):
        PATCH["on"] = True
        try:
            step(iterator)
        finally:
            PATCH["on"] = False
    return run

names = sys.argv[1].split(",")
models = {}
for name in names:
    for variant in ("tf", "serial"):
        model, batch = S.build(name)
        step = S.iteration_runner(model)
        models[name + "_" + variant] = (model, batch, patched(step) if variant == "serial" else step)
    print(name, "weight distance",
          S.relative_weight_distance(models[name + "_tf"], models[name + "_serial"]), flush=True)
res = S.interleaved_ms(models, iterations=int(sys.argv[2]))
print("serial conv calls", CALLS)
print(ORDER, {k: round(v, 1) for k, v in res.items()})
for name in names:
    print(name, "serial/tf", round(res[name + "_serial"] / res[name + "_tf"], 3))
