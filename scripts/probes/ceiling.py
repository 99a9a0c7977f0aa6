"""Ceiling of MFU with TF's CPU kernels at Lr-LiVAE's shapes (CIFAR 32x32x3, batch 64, width 32):
forward + backward (gradients w.r.t. the network's weights, and its inputs where training needs
them) of each network alone in a tf.function, timed interleaved with the 2048^2 matmul peak; plus
the full train step. MFU = 3 x forward FLOPs (speed.network_forward_flops) / time / peak."""
import statistics, sys, time
import numpy as np, tensorflow as tf, keras
from keras_lsvae import layers as L
from keras_lsvae.benchmarks import speed as S

B = 64
model, batch = S.build("lrlivae", batch_size=B)
rng = np.random.default_rng(0)

def network_step(network, input_grads):
    specs = [tf.TensorSpec((B,) + tuple(x.shape[1:]), tf.float32) for x in network.inputs]
    inputs = [tf.constant(rng.uniform(size=s.shape).astype(np.float32)) for s in specs]
    if len(network.inputs) == 2 and network.name == "discriminator":
        inputs[1] = tf.one_hot(rng.integers(0, 10, B), 10)
    outputs = network(inputs if len(inputs) > 1 else inputs[0], training=True)
    cotangents = [tf.constant(rng.normal(size=o.shape).astype(np.float32)) for o in tf.nest.flatten(outputs)]
    weights = network.trainable_variables

    @tf.function(autograph=False)
    def step(*xs):
        with tf.GradientTape() as tape:
            tape.watch(xs)
            out = tf.nest.flatten(network(list(xs) if len(xs) > 1 else xs[0], training=True))
            loss = tf.add_n([tf.reduce_sum(o * c) for o, c in zip(out, cotangents)])
        grads = tape.gradient(loss, weights + (list(xs[:1]) if input_grads else []))
        return tf.add_n([tf.reduce_sum(g[..., :1]) for g in grads if g is not None])

    concrete = step.get_concrete_function(*specs)
    executed = S.graph_flops(concrete.graph)[1]
    forward = S.network_forward_flops(network, B)
    return (lambda: step(*inputs).numpy()), 3 * forward, executed

# (network, input gradient needed in training: decoder output -> D; D's input -> decoder)
nets = {"encoder_s": (model.encoder_s, False), "encoder_u": (model.encoder_u, False),
        "decoder": (model.decoder, False), "discriminator": (model.discriminator, True)}
runs = {name: network_step(net, ig) for name, (net, ig) in nets.items()}
train_step = S.iteration_runner(model)
iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
model_total, _ = S.model_flops(model, B)
runs["train_step"] = (lambda: train_step(iterator), model_total, S.train_step_flops(model, batch)[1])
peak = lambda: S.matmul_peak_gflops(2048, repeats=3)
for f, _, _ in runs.values():
    f(); f()
times = {k: [] for k in runs}; peaks = []
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
for i in range(rounds):
    peaks.append(peak())
    for k, (f, _, _) in runs.items():
        reps = 1 if k == "train_step" else 4
        t = time.perf_counter()
        for _ in range(reps):
            f()
        times[k].append((time.perf_counter() - t) / reps)
p = statistics.median(peaks)
print(f"matmul peak median {p:.0f} GFLOP/s (min {min(peaks):.0f}, max {max(peaks):.0f})")
for k, (f, flops, executed) in runs.items():
    t = statistics.median(times[k])
    print(f"{k:14s} {t*1e3:7.2f} ms  model {flops/1e9:6.2f} GFLOP  executed {executed/1e9:6.2f}  "
          f"MFU {flops/t/1e9/p:.2f}  executed/s over peak {executed/t/1e9/p:.2f}")
