"""``export``: size and speed of the TFLite files next to the Keras decoder.

Trains configs/digits.cfg (the main job; ``--epochs`` shortens it), converts its decoder and
generator (:mod:`keras_lsvae.export.tflite`) and reports, per file: size in bytes, max abs
error against Keras on the fixed parity inputs, and per-image latency, the median over
``repeats`` timed calls of one image (batch 1) and of a batch of ``batch_size`` images (divided
by the batch), after ``warmup`` untimed calls. The Keras rows time ``model.decode`` (the public
API: eager, with its input checks) and the decoder network called in a ``tf.function``; their
size is the decoder's ``.keras`` file. LiteRT runs with its default CPU delegate (XNNPACK).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from keras_lsvae.export import tflite as tflite_lib
from keras_lsvae.export.signatures import spec_for
from keras_lsvae.registry import BENCHMARKS


def _median_seconds(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _latencies(make_call, batch_size, repeats, warmup):
    """{"ms_per_image_batch1", "ms_per_image_batchB"} for ``make_call(n) -> fn()``."""
    return {"ms_per_image_batch1": 1e3 * _median_seconds(make_call(1), repeats, warmup),
            f"ms_per_image_batch{batch_size}":
                1e3 * _median_seconds(make_call(batch_size), repeats, warmup) / batch_size}


def tflite_call(content, graph, n, seed=0):
    """``fn() -> images`` running ``graph``'s file on ``n`` fixed rows: tensors resized and
    allocated once, so a call times set_tensor + invoke + get_tensor only (the signature
    runner's ``__call__`` resizes and re-allocates on every call)."""
    interpreter = tflite_lib.interpreter(content)
    runner = interpreter.get_signature_runner(graph.signature.name)
    indices = {k: v["index"] for k, v in runner.get_input_details().items()}
    output = runner.get_output_details()[graph.output]["index"]
    del runner  # it holds the interpreter's tensors, which resizing would invalidate
    inputs = graph.sample(n, np.random.default_rng(seed))
    for key, value in inputs.items():
        interpreter.resize_tensor_input(indices[key], value.shape)
    interpreter.allocate_tensors()

    def call():
        for key, value in inputs.items():
            interpreter.set_tensor(indices[key], value)
        interpreter.invoke()
        return interpreter.get_tensor(output)

    return call


def measure(model, flatbuffers=None, repeats=50, warmup=5, batch_size=64, seed=0):
    """Sizes, parity errors and latencies of every TFLite file and of the Keras decoder."""
    spec = spec_for(model)
    flatbuffers = flatbuffers or tflite_lib.convert(model, spec)
    errors = tflite_lib.parity(model, flatbuffers, spec)
    rows = {}
    for name, content in sorted(flatbuffers.items()):
        graph = tflite_lib.graph_by_stem(spec, name.rsplit("_", 1)[0])
        rows[name] = {"bytes": len(content), "max_abs_error_vs_keras": errors[name],
                      **_latencies(lambda n, c=content, g=graph: tflite_call(c, g, n, seed),
                                   batch_size, repeats, warmup)}

    decoder_graph = tflite_lib.graph_by_stem(spec, "decoder")
    compiled = tf.function(lambda z_s, z_u: model.decoder([z_s, z_u], training=False))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "decoder.keras")
        model.decoder.save(path)
        keras_bytes = os.path.getsize(path)

    def keras_call(fn):
        def make_call(n):
            inputs = decoder_graph.sample(n, np.random.default_rng(seed))
            return lambda: np.asarray(fn(**inputs))
        return make_call

    rows["keras_decoder_decode_api"] = {
        "bytes": keras_bytes, **_latencies(keras_call(model.decode), batch_size, repeats, warmup)}
    rows["keras_decoder_tf_function"] = {
        "bytes": keras_bytes, **_latencies(keras_call(compiled), batch_size, repeats, warmup)}
    return {"files": rows, "settings": {"repeats": repeats, "warmup": warmup,
                                        "batch_size": batch_size, "seed": seed,
                                        "parity_rows": tflite_lib.PARITY_ROWS,
                                        "threads": "LiteRT default; TF default"}}


@BENCHMARKS.register("export")
def export_suite(out_dir, seed=0, epochs=None, repeats=50):
    from keras_lsvae.benchmarks.common import suite_config, train_and_load
    from keras_lsvae.training.loop import versions

    config = suite_config("digits.cfg", os.path.join(out_dir, "export_digits"), seed=seed,
                          epochs=epochs)
    model, _ = train_and_load(config)
    result = measure(model, repeats=repeats, seed=seed)
    result.update(config={"flagfile": "configs/digits.cfg", "epochs": config.epochs,
                          "seed": seed, "workdir": config.workdir},
                  versions=versions())
    return result
