"""``speed``: how close each model's training iteration runs to what the machine allows
(numbers and their reading in docs/speed.md).

For every registered model on CIFAR-shaped data (32×32×3, batch 64, width 32, 10 classes; the
attribute models get 10 one-hot attributes), in one process:

* ``<model>.ms_per_iter``: median wall time of one full training iteration (Keras' own train
  function, as ``fit`` runs it, on a fixed in-memory batch so that the input pipeline is
  measured apart) over ``iterations`` iterations after ``warmup`` untimed ones. An iteration is
  one ``train_step``: for Lr-LiVAE Algorithm 1's n_gm GM steps plus the joint step.
  ``<model>.images_per_s``: examples consumed per second (batch × ``data_group``: Lr-LiVAE
  reads n_gm + 1 batches per iteration).
* ``<model>.model_gflops_per_iter``: the model's own work, 3 × (forward FLOPs of each network
  pass Algorithm 1 / the paper makes), the forward FLOPs of each network from the TF profiler
  (``tf.compat.v1.profiler``, float_operation) on a concrete function of that network at the
  pass's batch; 3 = forward + a backward of twice the forward. Passes per model:
  :func:`network_passes` (also in docs/speed.md).
* ``<model>.executed_gflops_per_iter``: the profiler's FLOPs of every op of the whole traced
  ``train_step`` that runs, i.e. that an output or a stateful op (a variable update) depends
  on; ``<model>.graph_gflops_per_iter`` counts every op in the graph, also the gradient ops
  whose results nobody uses (TF prunes them before running; the profiler alone counts them).
* ``matmul_peak_gflops``: the same run's speed of a ``matmul_size``² fp32 matmul (the median
  over the run); ``<model>.matmul_peak_gflops``: the median of the peaks measured before and
  between that model's timed iterations (every 5), so that on a shared machine each model's MFU
  divides by the speed available in the same minutes. ``<model>.mfu`` = model FLOPs per second
  / ``<model>.matmul_peak_gflops``; ``<model>.executed_over_model``.
* ``input_pipeline_images_per_s``: ``keras_lsvae.data.load`` on an npz of CIFAR-shaped uint8
  images (decode to float, shuffle, batch, as training reads it), after one epoch of warm-up;
  ``input_pipeline_over_training``: that over the fastest model's ``images_per_s``.
* ``<model>.ms_per_image_batch{32,64,128}`` (the ``scaling_models``): ms per image at each batch.
* ``<model>.retraces``: how often the train step was traced again during the timed iterations.
* ``peak_rss_mb``: the process's peak resident memory.
* ``cpu``: the CPU's model name and the vector / matrix extensions that decide which kernels
  oneDNN runs (:func:`cpu_description`): machines differ between runs (an AMD EPYC with
  AVX-512 and an Intel Xeon with AMX have both been measured), and numbers are compared on
  the same kind only.
* ``rss_mb_epoch2``, ``rss_mb_epoch10``: the process's current resident memory (not the peak)
  at the end of epochs 2 and 10 of a configs/digits.cfg training run (``train_model``, as
  ``scripts/train.py`` runs it: its callbacks, per-epoch evaluation and checkpoints) with
  ``rss_steps_per_epoch`` steps per epoch; ``rss_growth_epoch2_to_10`` = epoch 10 / epoch 2
  − 1. It runs first, before any other model exists in the process, so that the ratio is
  not diluted by their memory.

``targets``: Lr-LiVAE MFU ≥ 0.75 with executed/model ≤ 1.2; every other model MFU ≥ 0.6; input
pipeline ≥ 5× training; batch-128 per-image cost ≤ 1.1× batch 64; no retrace after warm-up;
resident memory growth from epoch 2 to epoch 10 ≤ 5%.
"""

from __future__ import annotations

import dataclasses
import math
import os
import resource
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_lsvae.registry import BENCHMARKS

MFU_TARGETS = {"lrlivae": 0.75}
DEFAULT_MFU_TARGET = 0.6
EXECUTED_OVER_MODEL_TARGET = {"lrlivae": 1.2}
INPUT_OVER_TRAINING_TARGET = 5.0
BATCH128_OVER_BATCH64_TARGET = 1.1
RSS_GROWTH_TARGET = 0.05
RSS_EPOCHS = (2, 10)


#: /proc/cpuinfo flags that decide oneDNN's kernels (AVX-512 fp32, bf16 and fp16; AMX tiles).
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def parse_cpuinfo(text):
    """{"model": model name, "features": the CPU_FEATURES present} from /proc/cpuinfo's text
    (its first processor's entry)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name", ""),
            "features": [name for name in CPU_FEATURES if name in flags]}


def cpu_description(path="/proc/cpuinfo"):
    """:func:`parse_cpuinfo` of this machine (``platform.processor()`` where there is no
    /proc/cpuinfo), with ``count`` = ``os.cpu_count()``."""
    import platform

    try:
        with open(path) as f:
            description = parse_cpuinfo(f.read())
    except OSError:
        description = {"model": platform.processor(), "features": []}
    return dict(description, count=os.cpu_count())


def network_passes(model):
    """{network attribute: passes of one training iteration, in batches of B examples}: the
    network forward passes the algorithm makes (each counted × 3 for its backward).

    Lr-LiVAE (Algorithm 1): Encoder^s once per GM step and once in the joint step; Encoder^u
    once; the decoder on x'_f and x'_p (+ the swaps of the consistency term); D on x, x'_f,
    x'_p (3B); ω once per adversary step. Unlabeled data are not part of the benchmark."""
    name = type(model).__name__
    boost = model.extension("adversary_boost")
    adversary_steps = boost.steps if boost else 1
    if name == "LrLiVAE":
        passes = {"encoder_s": model.n_gm + 1, "encoder_u": 1, "decoder": 2,
                  "latent_classifier": adversary_steps}
        if model.extension("consistency"):
            passes["decoder"] += 1
            passes["encoder_s"] += 2  # samples and swaps through Encoder^s
        if model.gan_weight > 0:
            passes["discriminator"] = 3
        hsic = model.extension("hsic")
        if hsic and hsic.all_groups:
            passes["encoder_u"] += model.n_gm
        return passes
    if name == "CVAEGAN":  # E; G on z and z_p (2B); D and C on x, x_f, x_p (3B each)
        return {"encoder": 1, "generator": 2, "discriminator": 3, "classifier": 3}
    if name == "CGAN":  # G on z; D on x and G(z)
        return {"generator": 1, "discriminator": 2}
    if name == "CSVAE":  # q(z|x), q(w|x,y), decoder; the adversary on z (M2) and on sg(z) (N)
        return {"encoder_z": 1, "encoder_w": 1, "decoder": 1,
                "adversary": 1 + adversary_steps}
    if name == "CondVAEInfo":  # + the adversary on z (info) and on sg(z)
        return {"encoder": 1, "decoder": 1, "adversary": 1 + adversary_steps}
    return {"encoder": 1, "decoder": 1}  # VAE, CondVAE, cVAE


# ------------------------------------------------------------------------------------ FLOPs
def _flops(op):
    from tensorflow.python.framework import ops as tf_ops

    try:
        stats = tf_ops.get_stats_for_node_def(op.graph, op.node_def, "flops")
    except ValueError:  # shapes unknown
        return 0
    return int(stats.value or 0)


def live_operations(graph):
    """The ops of a function graph that run: those a graph output or a stateful op (variable
    updates, random state, asserts) depends on, through data or control edges. TF prunes the
    rest (e.g. the filter gradient of a conv whose input gradient alone is asked for) before
    executing the function."""
    operations = graph.get_operations()
    live, stack = {}, [t.op for t in graph.outputs]
    stack += [op for op in operations if op._is_stateful]  # pylint: disable=protected-access
    while stack:
        op = stack.pop()
        if op.name in live:
            continue
        live[op.name] = op
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return list(live.values())


def graph_flops(graph):
    """(every op's FLOPs, the FLOPs of the ops that run: :func:`live_operations`) of a function
    graph."""
    counts = {op.name: _flops(op) for op in graph.get_operations()}
    return sum(counts.values()), sum(counts[op.name] for op in live_operations(graph))


def profiler_flops(concrete_function):
    """Total float ops of a concrete function's graph by ``tf.compat.v1.profiler``."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(concrete_function.graph, options=options).total_float_ops


def network_forward_flops(network, batch):
    """The profiler's forward FLOPs of ``network`` (a functional Keras model) in training mode
    on ``batch`` examples."""
    specs = [tf.TensorSpec((batch,) + tuple(x.shape[1:]), tf.float32) for x in network.inputs]

    @tf.function(autograph=False)
    def forward(*inputs):
        return network(list(inputs) if len(inputs) > 1 else inputs[0], training=True)

    return profiler_flops(forward.get_concrete_function(*specs))


def model_flops(model, batch):
    """(3 × Σ passes × forward FLOPs, {network: forward FLOPs at ``batch``})."""
    per_network = {name: network_forward_flops(getattr(model, name), batch)
                   for name in network_passes(model)}
    total = 3 * sum(count * per_network[name]
                    for name, count in network_passes(model).items())
    return total, per_network


def train_step_flops(model, batch):
    """(graph FLOPs, executed FLOPs) of ``model.train_step`` traced on ``batch``."""
    specs = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), batch)
    # As Keras runs it: without autograph (its train function is do_not_convert).
    concrete = tf.function(model.train_step, autograph=False).get_concrete_function(specs)
    return graph_flops(concrete.graph)


# ----------------------------------------------------------------------------------- timing
def matmul_peak_gflops(size=2048, repeats=10):
    """Median GFLOP/s of a ``size``² fp32 matmul (2·size³ FLOPs) in a tf.function."""
    a = tf.random.stateless_normal([size, size], seed=[1, 2])
    b = tf.random.stateless_normal([size, size], seed=[3, 4])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)[:1, :1]))
    matmul().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul().numpy()
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 / statistics.median(times) / 1e9


def build(name, image_size=32, batch_size=64, width=32, num_classes=10, seed=0,
          jit_compile=False, backward_once=True, mixed_precision="off", **model_args):
    """(compiled model, one fixed training batch) for model ``name`` on CIFAR-shaped data,
    built under the ``mixed_precision`` policy ("off" = float32), as ``--mixed_precision``."""
    import keras

    from keras_lsvae import models

    keras.utils.set_random_seed(seed)
    shape = (image_size, image_size, 3)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        "float32" if mixed_precision == "off" else mixed_precision)
    try:
        model = models.get(name, input_shape=shape, num_classes=num_classes, width=width,
                           seed=seed, **model_args)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    model.backward_once = backward_once
    model.compile(jit_compile=jit_compile)
    rng = np.random.default_rng(seed)
    lead = (batch_size,) if model.data_group == 1 else (batch_size, model.data_group)
    images = rng.uniform(size=lead + shape).astype(np.float32)
    labels = rng.integers(0, num_classes, size=lead).astype(np.int32)
    if model.label_kind == "attributes":
        labels = np.eye(num_classes, dtype=np.float32)[labels]
    return model, (tf.constant(images), tf.constant(labels))


class RetraceCounter:
    """Counts the Python executions of ``model.train_step``: inside Keras' ``tf.function`` the
    body runs only when the step is traced, so every call after warm-up is a retrace."""

    def __init__(self, model):
        self.count = 0
        step = model.train_step

        def counted(data):
            self.count += 1
            return step(data)

        model.train_step = counted


def iteration_runner(model):
    """A function running one training iteration of ``model`` on the next batch of an
    iterator, as ``fit`` does (Keras' train function, made anew), and waiting for it to end."""
    model.make_train_function(force=True)

    def step(iterator):
        logs = model.train_function(iterator)
        float(next(iter(logs.values())))  # wait for the step to finish

    return step


def _runner_and_batches(entry):
    """(iteration runner, endless iterator over the batch) of ``(model, batch)`` or of
    ``(model, batch, runner)``: a probe whose variant is switched on while its train function
    traces (scripts/probes/ab_serial_conv_grads.py) passes its own runner, which a new
    :func:`iteration_runner` would replace by a trace without the variant."""
    model, batch = entry[:2]
    step = entry[2] if len(entry) > 2 else iteration_runner(model)
    return step, iter(tf.data.Dataset.from_tensors(batch).repeat())


def relative_weight_distance(first, second, steps=3):
    """‖w₁ − w₂‖ / ‖w₁ − w₀‖ over the trainable weights after ``steps`` training iterations of
    two models (``(model, batch)`` pairs, or ``(model, batch, runner)``) built from the same
    weights (w₀): how far a variant of a computation (scripts/probes/ab_*.py) moves training
    from the reference."""
    model, other = first[0], second[0]
    initial = [v.numpy() for v in model.trainable_variables]
    for entry in (first, second):
        step, iterator = _runner_and_batches(entry)
        for _ in range(steps):
            step(iterator)
    squared = lambda pairs: sum(float(np.sum((np.asarray(x) - np.asarray(y)) ** 2))
                                for x, y in pairs)
    return math.sqrt(squared(zip(model.trainable_variables, other.trainable_variables))
                     / squared(zip(model.trainable_variables, initial)))


def interleaved_ms(models, iterations=20, warmup=3):
    """{name: median ms per iteration} of ``models`` ({name: (model, batch)}, or
    ``(model, batch, runner)``) timed in turn, one iteration of each per round, in one process:
    an A/B whose ratio contention on a shared machine affects alike (absolute times drift from
    minute to minute there)."""
    runs = {name: _runner_and_batches(entry) for name, entry in models.items()}
    times = {name: [] for name in runs}
    for i in range(warmup + iterations):
        for name, (step, iterator) in runs.items():
            start = time.perf_counter()
            step(iterator)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(values) for name, values in times.items()}


def time_training(model, batch, iterations=20, warmup=3, retrace_batch=None, peak=None):
    """(median ms per iteration, retraces after warm-up, [peak GFLOP/s]) of Keras' train
    function on ``batch``; ``retrace_batch`` (tests) runs once after warm-up to force a retrace.
    ``peak`` (a function returning GFLOP/s, e.g. :func:`matmul_peak_gflops`) is measured
    before the timed iterations and after every 5 of them, so that MFU divides by the peak of
    the same minutes: on a shared machine the available speed drifts."""
    counter = RetraceCounter(model)
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    step = iteration_runner(model)
    for _ in range(warmup):
        step(iterator)
    traced = counter.count
    if retrace_batch is not None:
        step(iter(tf.data.Dataset.from_tensors(retrace_batch)))
    times, peaks = [], []
    for i in range(iterations):
        if peak is not None and i % 5 == 0:
            peaks.append(peak())
        start = time.perf_counter()
        step(iterator)
        times.append(time.perf_counter() - start)
    if peak is not None:
        peaks.append(peak())
    return 1e3 * statistics.median(times), counter.count - traced, peaks


def input_pipeline_images_per_s(image_size=32, batch_size=64, examples=4096, batches=200,
                                seed=0):
    """Examples per second that ``keras_lsvae.data.load`` delivers from an npz of uint8
    CIFAR-shaped images (shuffled, decoded to float, batched), after one epoch of warm-up."""
    from keras_lsvae import data

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cifar_shaped.npz")
        np.savez(path, images=rng.integers(0, 256, (examples, image_size, image_size, 3),
                                           dtype=np.uint8),
                 labels=rng.integers(0, 10, examples).astype(np.int64))
        dataset = data.load(f"npz:{path}", "train", batch_size, repeat=True, seed=seed)
        iterator = iter(dataset)
        for _ in range(max(1, examples // batch_size)):
            next(iterator)
        start = time.perf_counter()
        for _ in range(batches):
            images, _ = next(iterator)
        images.numpy()
        return batches * batch_size / (time.perf_counter() - start)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb():
    """The process's resident memory now (``/proc/self/statm``: resident pages), unlike
    :func:`peak_rss_mb`, so that memory given back or kept between epochs shows."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class ResidentMemory(keras.callbacks.Callback):
    """``mb[epoch]``: :func:`current_rss_mb` at the end of each epoch (1-based), after the
    callbacks before it (a run's own: checkpoints, sample grids) and the epoch's evaluation."""

    def __init__(self):
        super().__init__()
        self.mb = {}

    def on_epoch_end(self, epoch, logs=None):
        self.mb[epoch + 1] = current_rss_mb()


def training_rss_mb(epochs=RSS_EPOCHS, steps_per_epoch=20, batch_size=None, model_args=None,
                    seed=0):
    """{epoch: :func:`current_rss_mb` at its end} for ``epochs`` of one configs/digits.cfg run
    of max(epochs) epochs of ``steps_per_epoch`` steps (``batch_size`` and ``model_args``,
    merged into the config's, shrink it for tests), in a temporary workdir."""
    from keras_lsvae.benchmarks.common import suite_config
    from keras_lsvae.training.loop import train_model

    with tempfile.TemporaryDirectory() as workdir:
        config = suite_config("digits.cfg", workdir, seed, epochs=max(epochs),
                              steps_per_epoch=steps_per_epoch)
        config = dataclasses.replace(config, batch_size=batch_size or config.batch_size,
                                     model_args={**config.model_args, **(model_args or {})})
        memory = ResidentMemory()
        train_model(config, callbacks=[memory])
    return {epoch: memory.mb[epoch] for epoch in epochs}


def measure_model(name, iterations=20, warmup=3, batch_size=64, image_size=32, width=32,
                  seed=0, jit_compile=False, backward_once=True, retrace_batch_size=None,
                  matmul_size=2048, mixed_precision="off"):
    """Every number of one model (module docstring)."""
    model, batch = build(name, image_size, batch_size, width, seed=seed,
                         jit_compile=jit_compile, backward_once=backward_once,
                         mixed_precision=mixed_precision)
    model_total, per_network = model_flops(model, batch_size)
    graph_total, executed = train_step_flops(model, batch)
    retrace_batch = None
    if retrace_batch_size:
        retrace_batch = build(name, image_size, retrace_batch_size, width, seed=seed)[1]
    ms, retraces, peaks = time_training(
        model, batch, iterations, warmup, retrace_batch,
        peak=lambda: matmul_peak_gflops(matmul_size, repeats=3))
    examples = batch_size * model.data_group
    peak = statistics.median(peaks)
    return {"ms_per_iter": ms, "images_per_s": examples / (ms / 1e3),
            "matmul_peak_gflops": peak, "matmul_peak_gflops_min_max": [min(peaks), max(peaks)],
            "mfu": model_total / 1e9 / (ms / 1e3) / peak,
            "model_gflops_per_iter": model_total / 1e9,
            "executed_gflops_per_iter": executed / 1e9,
            "graph_gflops_per_iter": graph_total / 1e9,
            "executed_over_model": executed / model_total,
            "forward_gflops": {k: v / 1e9 for k, v in per_network.items()},
            "passes": network_passes(model), "retraces": retraces,
            "examples_per_iter": examples}


@BENCHMARKS.register("speed")
def speed(out_dir, seed=0, models=None, iterations=20, warmup=3, batch_size=64, image_size=32,
          width=32, scaling_models=("lrlivae",), scaling_batch_sizes=(32, 64, 128),
          matmul_size=2048, pipeline_batches=200, pipeline_examples=4096, jit_compile=False,
          backward_once=True, mixed_precision="off", retrace_batch_size=None,
          rss_steps_per_epoch=20, rss_batch_size=None, rss_model_args=None):
    """The speed suite (module docstring). ``models`` (default: every registered model),
    ``iterations``, ``warmup``, ``batch_size``, ``image_size``, ``width``, ``matmul_size``,
    ``pipeline_*``, ``scaling_*`` and ``rss_*`` (:func:`training_rss_mb`) shrink it for quick
    checks; ``jit_compile``, ``mixed_precision`` and ``backward_once`` measure the switches;
    ``retrace_batch_size`` (tests) forces one retrace per model after warm-up."""
    from keras_lsvae import models as registry
    from keras_lsvae.training.loop import versions

    names = list(models) if models else registry.names()
    result = {"settings": dict(models=names, iterations=iterations, warmup=warmup,
                               batch_size=batch_size, image_size=image_size, width=width,
                               matmul_size=matmul_size, jit_compile=jit_compile,
                               mixed_precision=mixed_precision,
                               backward_once=backward_once, seed=seed,
                               scaling_batch_sizes=list(scaling_batch_sizes),
                               rss_steps_per_epoch=rss_steps_per_epoch,
                               rss_batch_size=rss_batch_size, rss_model_args=rss_model_args),
              "versions": versions(), "cpu_count": os.cpu_count(), "cpu": cpu_description(),
              "targets": {}}
    targets = result["targets"]
    first, last = RSS_EPOCHS
    rss = training_rss_mb(RSS_EPOCHS, rss_steps_per_epoch, rss_batch_size, rss_model_args, seed)
    result[f"rss_mb_epoch{first}"], result[f"rss_mb_epoch{last}"] = rss[first], rss[last]
    growth = rss[last] / rss[first] - 1.0
    result[f"rss_growth_epoch{first}_to_{last}"] = growth
    targets[f"rss_growth_epoch{first}_to_{last}"] = {"target": RSS_GROWTH_TARGET,
                                                     "met": growth <= RSS_GROWTH_TARGET}
    peaks = [matmul_peak_gflops(matmul_size)]
    common = dict(iterations=iterations, warmup=warmup, image_size=image_size, width=width,
                  seed=seed, jit_compile=jit_compile, backward_once=backward_once,
                  mixed_precision=mixed_precision)
    for name in names:
        numbers = measure_model(name, batch_size=batch_size,
                                retrace_batch_size=retrace_batch_size,
                                matmul_size=matmul_size, **common)
        peaks.append(numbers["matmul_peak_gflops"])
        for key, value in numbers.items():
            result[f"{name}.{key}"] = value
        mfu_target = MFU_TARGETS.get(name, DEFAULT_MFU_TARGET)
        targets[f"{name}.mfu"] = {"target": mfu_target, "met": numbers["mfu"] >= mfu_target}
        if name in EXECUTED_OVER_MODEL_TARGET:
            limit = EXECUTED_OVER_MODEL_TARGET[name]
            targets[f"{name}.executed_over_model"] = {
                "target": limit, "met": numbers["executed_over_model"] <= limit}
        targets[f"{name}.retraces"] = {"target": 0, "met": numbers["retraces"] == 0}
        if name in scaling_models:
            per_image = {}
            for size in scaling_batch_sizes:
                ms = (numbers["ms_per_iter"] if size == batch_size else
                      time_training(*build(name, image_size, size, width, seed=seed,
                                           jit_compile=jit_compile,
                                           backward_once=backward_once,
                                           mixed_precision=mixed_precision),
                                    iterations, warmup)[0])
                per_image[size] = ms / (size * numbers["examples_per_iter"] / batch_size)
                result[f"{name}.ms_per_image_batch{size}"] = per_image[size]
            if 128 in per_image and 64 in per_image:
                ratio = per_image[128] / per_image[64]
                result[f"{name}.batch128_over_batch64"] = ratio
                targets[f"{name}.batch128_over_batch64"] = {
                    "target": BATCH128_OVER_BATCH64_TARGET,
                    "met": ratio <= BATCH128_OVER_BATCH64_TARGET}
    result["input_pipeline_images_per_s"] = pipeline = input_pipeline_images_per_s(
        image_size, batch_size, pipeline_examples, pipeline_batches, seed)
    fastest = max(result[f"{name}.images_per_s"] for name in names)
    result["input_pipeline_over_training"] = pipeline / fastest
    targets["input_pipeline_over_training"] = {
        "target": INPUT_OVER_TRAINING_TARGET,
        "met": pipeline / fastest >= INPUT_OVER_TRAINING_TARGET}
    result["matmul_peak_gflops"] = statistics.median(peaks)
    result["peak_rss_mb"] = peak_rss_mb()
    result["all_targets_met"] = all(t["met"] for t in targets.values())
    return result
