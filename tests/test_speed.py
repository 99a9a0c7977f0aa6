"""The speed suite (keras_lsvae/benchmarks/speed.py) on tiny settings: its JSON keys, their
internal consistency and its counters (FLOPs, retraces). No timed assertion: the targets live in
the suite's output (scripts/benchmark.py --suite=speed)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae.benchmarks import run_suite
from keras_lsvae.benchmarks import speed as S
from tests.helpers import image_batch, tiny_lrlivae

TINY = dict(iterations=2, warmup=1, batch_size=8, image_size=8, width=8, matmul_size=128,
            pipeline_batches=3, pipeline_examples=64, scaling_batch_sizes=(4, 8))
# The digits run of the resident-memory numbers at its smallest (1 s per epoch: its callbacks
# and evaluation): measured on its own below; the suite's fixture gets fixed numbers.
TINY_DIGITS_RUN = dict(steps_per_epoch=1, batch_size=8, model_args={"width": 8})
RSS_MB = {2: 1000.0, 10: 1040.0}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("speed")
    runs = []

    def training_rss_mb(epochs, steps_per_epoch, batch_size, model_args, seed):
        runs.append((epochs, steps_per_epoch, batch_size, model_args))
        return RSS_MB

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(S, "training_rss_mb", training_rss_mb)
        run_suite("speed", str(out), models=["lrlivae", "cvae"], rss_steps_per_epoch=3,
                  rss_batch_size=8, rss_model_args={"width": 8}, **TINY)
    assert runs == [((2, 10), 3, 8, {"width": 8})]
    with open(os.path.join(out, "speed.json")) as f:
        return json.load(f)


def test_speed_json_has_every_key_and_consistent_numbers(report):
    assert report["matmul_peak_gflops"] > 0
    assert report["input_pipeline_images_per_s"] > 0
    for name in ("lrlivae", "cvae"):
        for key in ("ms_per_iter", "images_per_s", "model_gflops_per_iter",
                    "executed_gflops_per_iter", "mfu", "retraces"):
            assert f"{name}.{key}" in report, key
        ms = report[f"{name}.ms_per_iter"]
        model = report[f"{name}.model_gflops_per_iter"]
        assert report[f"{name}.mfu"] == pytest.approx(model / (ms / 1e3)
                                                      / report[f"{name}.matmul_peak_gflops"])
        low, high = report[f"{name}.matmul_peak_gflops_min_max"]
        assert 0 < low <= report[f"{name}.matmul_peak_gflops"] <= high
        assert report[f"{name}.images_per_s"] == pytest.approx(
            report[f"{name}.examples_per_iter"] / (ms / 1e3))
        assert report[f"{name}.executed_over_model"] == pytest.approx(
            report[f"{name}.executed_gflops_per_iter"] / model)
        # 3 × Σ passes × forward FLOPs of each network
        forward = report[f"{name}.forward_gflops"]
        assert model == pytest.approx(3 * sum(count * forward[network] for network, count
                                              in report[f"{name}.passes"].items()))
        # Executed ops are a subset of the graph's.
        assert 0 < report[f"{name}.executed_gflops_per_iter"] <= report[
            f"{name}.graph_gflops_per_iter"]
        assert report[f"{name}.retraces"] == 0
        assert report["targets"][f"{name}.retraces"]["met"]
        assert report["targets"][f"{name}.mfu"]["met"] == (
            report[f"{name}.mfu"] >= report["targets"][f"{name}.mfu"]["target"])
    assert report["lrlivae.examples_per_iter"] == 8 * 4  # n_gm + 1 = 4 batches per iteration
    assert report["lrlivae.passes"] == {"encoder_s": 4, "encoder_u": 1, "decoder": 2,
                                        "latent_classifier": 1, "discriminator": 3}
    assert report["targets"]["lrlivae.mfu"]["target"] == 0.75
    assert report["targets"]["cvae.mfu"]["target"] == 0.6
    assert report["targets"]["lrlivae.executed_over_model"]["target"] == 1.2
    for size in (4, 8):
        assert report[f"lrlivae.ms_per_image_batch{size}"] > 0
    assert report["input_pipeline_over_training"] == pytest.approx(
        report["input_pipeline_images_per_s"] / max(report["lrlivae.images_per_s"],
                                                    report["cvae.images_per_s"]))
    assert report["peak_rss_mb"] > 0
    assert (report["rss_mb_epoch2"], report["rss_mb_epoch10"]) == (1000.0, 1040.0)
    assert report["rss_growth_epoch2_to_10"] == pytest.approx(0.04)
    assert report["targets"]["rss_growth_epoch2_to_10"] == {"target": 0.05, "met": True}
    assert report["all_targets_met"] == all(t["met"] for t in report["targets"].values())


def test_report_names_the_cpu(report):
    assert report["cpu"] == S.cpu_description()
    assert report["cpu"]["count"] == os.cpu_count()


def test_cpuinfo_gives_the_first_processors_model_and_known_features():
    text = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
            "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16 sse4_2\n\n"
            "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n")
    assert S.parse_cpuinfo(text) == {
        "model": "Intel(R) Xeon(R) Processor",
        "features": ["avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"]}
    assert S.parse_cpuinfo("") == {"model": "", "features": []}


def test_current_rss_falls_when_memory_is_freed_and_peak_does_not():
    before = S.current_rss_mb()
    block = np.ones(25_000_000, np.float32)  # 95 MB, written: resident
    held = S.current_rss_mb()
    del block  # numpy returns a block this large to the system at once (mmap)
    after = S.current_rss_mb()
    assert held - before > 80 and held - after > 80
    assert S.peak_rss_mb() >= held - 1


def test_training_rss_is_read_at_the_end_of_the_asked_epochs_of_a_digits_run(monkeypatch):
    from keras_lsvae.training import loop

    configs = []
    train_model = loop.train_model
    monkeypatch.setattr(loop, "train_model", lambda config, callbacks: configs.append(
        config) or train_model(config, callbacks=callbacks))
    rss = S.training_rss_mb(epochs=(1, 3), **TINY_DIGITS_RUN)
    assert set(rss) == {1, 3}
    # At most the peak, up to the kernel's lazily synchronised per-thread RSS counters: late in
    # the whole suite the process sits at its peak, where a reading above ru_maxrss failed once.
    peak = S.peak_rss_mb()
    assert all(0 < mb <= peak + 16 for mb in rss.values()), (rss, peak)
    (config,) = configs
    assert (config.dataset, config.model, config.epochs, config.steps_per_epoch,
            config.batch_size) == ("digits", "lrlivae", 3, 1, 8)
    assert config.model_args["width"] == 8 and config.model_args["n_gm"] == 3  # digits.cfg's


def test_interleaved_ms_times_every_model_each_round():
    models = {name: S.build("cvae", image_size=8, batch_size=8, width=8) for name in "ab"}
    counters = {name: S.RetraceCounter(model) for name, (model, _) in models.items()}
    ms = S.interleaved_ms(models, iterations=2, warmup=1)
    assert set(ms) == {"a", "b"} and all(value > 0 for value in ms.values())
    assert all(counter.count == 1 for counter in counters.values())  # traced once, no retrace


def test_premade_runners_are_used_as_given():
    """A probe's own runner (its variant on while it traces) is called, not replaced."""
    model, batch = S.build("cvae", image_size=8, batch_size=8, width=8)
    step, calls = S.iteration_runner(model), []

    def runner(iterator):
        calls.append(1)
        step(iterator)

    other = S.build("cvae", image_size=8, batch_size=8, width=8)
    S.interleaved_ms({"a": (model, batch, runner), "b": other}, iterations=2, warmup=1)
    assert len(calls) == 3
    S.relative_weight_distance((model, batch, runner), other, steps=2)
    assert len(calls) == 5


def test_retrace_counter_counts_a_forced_retrace():
    model, batch = S.build("cvae", image_size=8, batch_size=8, width=8)
    other = S.build("cvae", image_size=8, batch_size=5, width=8)[1]
    assert S.time_training(model, batch, iterations=2, warmup=1)[1] == 0
    assert S.time_training(model, batch, iterations=2, warmup=1, retrace_batch=other)[1] >= 1


def test_executed_flops_leave_out_ops_nobody_uses():
    # The unused branch (a matmul whose result feeds nothing) is in the graph, not executed.
    a = tf.ones([16, 32])
    b = tf.ones([32, 8])

    @tf.function
    def f(x):
        tf.matmul(x, b * 2.0)  # dead
        return tf.matmul(x, b)

    total, executed = S.graph_flops(f.get_concrete_function(a).graph)
    assert executed == 2 * 16 * 32 * 8
    assert total == executed + 2 * 16 * 32 * 8 + 32 * 8


def test_network_forward_flops_count_a_dense_layer():
    import keras

    inputs = keras.Input((32,))
    network = keras.Model(inputs, keras.layers.Dense(8, use_bias=False)(inputs))
    assert S.network_forward_flops(network, 16) == 2 * 16 * 32 * 8
    assert np.isclose(S.matmul_peak_gflops(64, repeats=1) > 0, True)


# ------------------------------------------------------------------ mixed precision and XLA
def _fit_a_few_steps(model, steps=3):
    images, labels = image_batch(16, groups=model.data_group)
    history = model.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(8).repeat(),
                        steps_per_epoch=steps, epochs=1, verbose=0)
    for key, values in history.history.items():
        assert np.all(np.isfinite(values)), key
    for variable in model.variables:
        assert np.all(np.isfinite(np.asarray(variable.numpy(), np.float32))), variable.path


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_losses_and_scales_every_optimizer(policy):
    import keras

    keras.mixed_precision.set_global_policy(policy)
    try:
        model = tiny_lrlivae(hsic_weight=1.0, mmd_weight=1.0)
        reference = tiny_lrlivae(hsic_weight=1.0, mmd_weight=1.0)  # same weights and seeds
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile()
    reference.compile(auto_scale_loss=False)
    scaled = policy == "mixed_float16"
    for name, optimizer in model.objective_optimizers.items():
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == scaled, name
    assert model.encoder_s.layers[1].compute_dtype == policy.split("_")[1]  # inner layers
    images, labels = image_batch(8, groups=model.data_group)
    batch = (tf.constant(images), tf.constant(labels))
    losses = model.compute_losses(batch[0][:, -1], batch[1][:, -1], training=False)
    for key, value in losses.logs.items():
        assert value.dtype == tf.float32, key
    if scaled:
        # Each optimizer receives its gradients times its loss scale (2^15), which it divides
        # out: the same gradients as without loss scaling, up to float16 rounding.
        received, originals = {}, []
        for which, instance in (("scaled", model), ("plain", reference)):
            for name, optimizer in instance.objective_optimizers.items():
                originals.append((optimizer, optimizer.apply_gradients))
                def record(pairs, name=name, apply=optimizer.apply_gradients, which=which):
                    pairs = list(pairs)
                    received.setdefault((which, name), []).append(
                        np.sqrt(sum(float(tf.reduce_sum(tf.square(tf.cast(g, tf.float32))))
                                    for g, _ in pairs)))
                    return apply(pairs)
                optimizer.apply_gradients = record
            instance.train_step(batch)
        for optimizer, apply in originals:
            optimizer.apply_gradients = apply
        for name in model.OBJECTIVES:
            ratio = np.array(received[("scaled", name)]) / np.array(received[("plain", name)])
            np.testing.assert_allclose(ratio, 2.0**15, rtol=0.05, err_msg=name)
    _fit_a_few_steps(model)


def test_jit_compile_trains_without_nan():
    model = tiny_lrlivae()
    model.compile(jit_compile=True)
    assert model.jit_compile
    _fit_a_few_steps(model)


def test_mixed_precision_flag_is_checked():
    from keras_lsvae.training.config import TrainConfig

    assert TrainConfig(workdir="w", mixed_precision="mixed_bfloat16").validate()
    with pytest.raises(ValueError, match="--mixed_precision"):
        TrainConfig(workdir="w", mixed_precision="float8").validate()


def test_relative_weight_distance_of_two_runs():
    """0 for the same computation twice; > 0 when the second one trains differently."""
    def pair(**compile_args):
        model, batch = S.build("vae", image_size=8, batch_size=4, width=8)
        if compile_args:
            model.compile(**compile_args)
        return model, batch

    assert S.relative_weight_distance(pair(), pair()) == 0.0
    assert S.relative_weight_distance(pair(), pair(learning_rate=1e-2)) > 0.1
