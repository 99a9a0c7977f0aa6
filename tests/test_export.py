"""Export: the SavedModel's signatures against the model's Python API and the
documented sampler, in a fresh process that never imports keras_lsvae; bad requests as
INVALID_ARGUMENT; the serving guide's (docs/export.md) REST bodies and gRPC snippet replayed; TFLite parity with LiteRT;
scripts/export.py's layout, versions and refusals.

One digits-sized Lr-LiVAE (16×16×1, 10 classes, z_s and z_u of 16, as configs/digits.cfg) is
trained for 60 steps, so that the quantisation bounds are measured on trained weights, and
exported once through scripts/export.py.
"""

import json
import os
import re
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import data, export, models
from keras_lsvae.benchmarks import export as export_bench
from keras_lsvae.export import lrlivae as lrlivae_export
from keras_lsvae.export import tflite as tflite_lib
from keras_lsvae.export.signatures import (Arg, ExportSpec, Signature, check_shape, register,
                                           spec_for)
from keras_lsvae.models.capabilities import ExportsSignatures
from keras_lsvae.registry import BENCHMARKS
from tests.test_export_client import Server, signature_defs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = os.path.join(REPO, "tests", "test_export_client.py")
with open(os.path.join(REPO, "docs", "export.md")) as _f:  # the serving guide the README links
    EXPORT_DOC = _f.read()
SECTION = re.search(r"## Serving: TF Serving and TFLite\n(.*?)\n## ", EXPORT_DOC, re.S).group(1)
DIGITS = dict(input_shape=(16, 16, 1), num_classes=10, zs_dim=16, zu_dim=16, width=32, n_gm=1,
              seed=0)
TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "int8": 5e-2}


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", SECTION, re.S)


SERVING_BODIES = [json.loads(block) for block in _blocks("json")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(workdir with model.keras, the model, test images)."""
    keras.utils.set_random_seed(0)
    model = models.get("lrlivae", **DIGITS)
    model.compile(learning_rate=1e-3)
    train = data.load("digits", "train", batch_size=64, group=model.data_group).repeat()
    model.fit(train, epochs=1, steps_per_epoch=60, verbose=0)
    workdir = tmp_path_factory.mktemp("run")
    model.save(os.path.join(workdir, "model.keras"))
    images, _ = data.load_arrays("digits", "test")
    return str(workdir), model, images[:8]


def _script(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", "export.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """scripts/export.py --tflite on the trained run: (printed result, export_dir)."""
    out = str(tmp_path_factory.mktemp("exported"))
    proc = _script(f"--workdir={trained[0]}", f"--export_dir={out}", "--tflite")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):]), out


@pytest.fixture(scope="module")
def server(exported):
    return Server(exported[0]["saved_model"])


def _reference_generate(model, labels, seeds):
    """The documented sampler, re-derived: ε_i = stateless_normal([32], [s_i, 0]),
    z_s = μ_c + σ_c ε[:16], z_u = ε[16:], decoded by the Keras model."""
    noise = np.stack([tf.random.stateless_normal([32], seed=[int(s), 0]).numpy() for s in seeds])
    means = np.asarray(model.prior_means())[labels]
    stds = np.sqrt(np.asarray(model.prior_variances()))[labels]
    return np.asarray(model.decode(means + stds * noise[:, :16], noise[:, 16:])), noise


# ------------------------------------------------------------------------------- layout
def test_export_writes_the_tf_serving_layout(exported, trained):
    result, out = exported
    base = os.path.join(out, "lrlivae")
    assert result["saved_model"] == os.path.join(base, "1") and result["version"] == 1
    assert sorted(os.listdir(base)) == ["1", "tflite"]  # no temporary folder left
    assert os.path.exists(os.path.join(base, "1", "saved_model.pb"))
    with open(os.path.join(base, "1", "assets.extra", "keras_lsvae_export.json")) as f:
        metadata = json.load(f)
    assert metadata["signatures"] == ["generate", "encode", "decode", "reconstruct",
                                      "predict_labels", "inpaint", "swap"]
    assert metadata["workdir"] == os.path.abspath(trained[0])
    names = [f"{g}_{v}.tflite" for g in ("decoder", "generator") for v in tflite_lib.VARIANTS]
    assert sorted(os.listdir(os.path.join(base, "tflite"))) == sorted(names + ["parity.json"])


def test_saved_model_cli_lists_every_signature(exported, trained):
    # TensorFlow's console script, next to this interpreter (also when the venv is not on PATH).
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    proc = subprocess.run([cli if os.path.exists(cli) else "saved_model_cli", "show", "--dir",
                           exported[0]["saved_model"], "--all"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    blocks = dict(re.findall(r"signature_def\['(\w+)'\]:\n(.*?)Method name", proc.stdout, re.S))
    spec = spec_for(trained[1])
    dtypes = {"float32": "DT_FLOAT", "int32": "DT_INT32", "int64": "DT_INT64"}
    assert sorted(blocks) == sorted(["__saved_model_init_op", "serving_default"]
                                    + [s.name for s in spec.signatures])
    for name, signature in [("serving_default", spec.signatures[0])] + [
            (s.name, s) for s in spec.signatures]:
        for kind, args in (("inputs", signature.inputs), ("outputs", signature.outputs)):
            assert len(re.findall(rf"{kind}\['", blocks[name])) == len(args)
            for arg in args:
                entry = re.search(rf"{kind}\['{arg.name}'\] tensor_info:\n\s+dtype: (\w+)\n"
                                  rf"\s+shape: (.*)\n", blocks[name])
                assert entry, (name, kind, arg.name)
                assert entry.group(1) == dtypes[arg.dtype]
                # Inputs: every dimension open (checked in the graph); outputs: N is -1.
                dims = ["-1" if kind == "inputs" or not isinstance(d, int) else str(d)
                        for d in arg.shape]
                assert entry.group(2) == "(" + ", ".join(dims) + ")", (name, arg.name)


def test_optional_inputs_are_signature_defaults(exported):
    defs = signature_defs(exported[0]["saved_model"])
    for name in ("generate", "serving_default"):
        defaults = {k: tf.make_ndarray(v) for k, v in defs[name].defaults.items()}
        assert sorted(defaults) == ["noise", "seed"]
        assert defaults["seed"].shape == (0,) and defaults["noise"].shape == (0, 32)
    assert tf.make_ndarray(defs["inpaint"].defaults["fill_value"]) == 0.0


def test_saved_model_holds_only_inference_variables(exported, trained):
    model = trained[1]
    needed = (model.encoder_s.variables + model.encoder_u.variables + model.decoder.variables
              + [model.prior.means, model.prior.raw_variances])
    saved = [(name, shape) for name, shape in tf.train.list_variables(
        os.path.join(exported[0]["saved_model"], "variables", "variables"))
        if name.endswith("VARIABLE_VALUE")]
    assert len(saved) == len(needed)
    assert sorted(int(np.prod(s)) for _, s in saved) == sorted(int(np.prod(v.shape))
                                                                for v in needed)


# ------------------------------------------------------------------- fresh process
def _image_bodies(images):
    x = images[:4].tolist()
    mask = np.zeros((1, 16, 16, 1), np.float32)
    mask[:, :, 8:] = 1
    return [
        {"signature_name": "encode", "inputs": {"images": x}},
        {"signature_name": "reconstruct", "inputs": {"images": x}},
        {"signature_name": "reconstruct", "inputs": {"images": x[:1]}},
        {"signature_name": "predict_labels", "inputs": {"images": x}},
        {"signature_name": "swap", "inputs": {"images_s": x, "images_u": images[4:8].tolist()}},
        {"signature_name": "inpaint", "inputs": {"images": x, "mask": mask.tolist()}},
        {"signature_name": "generate", "inputs": {"labels": [1, 5], "noise": np.full(
            (2, 32), 0.5, np.float32).tolist()}},
    ], mask


def _bad_bodies(images):
    x = images[:2].tolist()
    return [
        ("class ids must lie in [0, 10)", {"inputs": {"labels": [3, 10]}}),
        ("class ids must lie in [0, 10)", {"inputs": {"labels": [-1]}}),
        ("images: expected shape (N, 16, 16, 1)", {
            "signature_name": "reconstruct",
            "inputs": {"images": np.zeros((1, 8, 8, 1)).tolist()}}),
        ("z_s: expected shape (N, 16)", {
            "signature_name": "decode", "inputs": {"z_s": [[0.0] * 15], "z_u": [[0.0] * 16]}}),
        ("z_s and z_u must have the same number of rows", {
            "signature_name": "decode", "inputs": {"z_s": [[0.0] * 16] * 2, "z_u": [[0.0] * 16]}}),
        ("noise: expected shape (0|N, 32)", {"inputs": {"labels": [1], "noise": [[0.0] * 31]}}),
        ("noise: expected no noise or one row per label", {
            "inputs": {"labels": [1, 2], "noise": [[0.0] * 32]}}),
        ("seed: expected no seed, one seed for the request, or one per row", {
            "inputs": {"labels": [1, 2, 3], "seed": [4, 5]}}),
        ("values must lie in [0, 1]", {
            "signature_name": "predict_labels",
            "inputs": {"images": (np.asarray(x) * 2).tolist()}}),
        ("images: contain NaN", {"signature_name": "encode", "inputs": {
            "images": np.full((1, 16, 16, 1), np.nan).tolist()}}),
        ("mask: values must be 0 (kept) or 1 (missing)", {"signature_name": "inpaint", "inputs": {
            "images": x, "mask": np.full((1, 16, 16, 1), 0.5).tolist()}}),
        ("mask: expected 1 or N masks", {"signature_name": "inpaint", "inputs": {
            "images": x, "mask": np.zeros((3, 16, 16, 1)).tolist()}}),
        ("images_s and images_u must have the same number of rows", {
            "signature_name": "swap", "inputs": {"images_s": x, "images_u": x[:1]}}),
    ]


@pytest.fixture(scope="module")
def fresh(exported, trained, tmp_path_factory):
    """Every request replayed by tests/test_export_client.py in a new Python process."""
    images = trained[2]
    bodies, mask = _image_bodies(images)
    bad = _bad_bodies(images)
    requests = SERVING_BODIES + bodies + [SERVING_BODIES[0]] + [body for _, body in bad]
    tmp = tmp_path_factory.mktemp("fresh")
    with open(tmp / "requests.json", "w") as f:
        json.dump(requests, f)
    proc = subprocess.run([sys.executable, CLIENT, exported[0]["saved_model"],
                           str(tmp / "requests.json"), str(tmp / "replies.json")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp / "replies.json") as f:
        result = json.load(f)
    replies = result["replies"]
    n = len(SERVING_BODIES)
    return {"imported": result["keras_lsvae_imported"], "readme": replies[:n],
            "api": replies[n:n + len(bodies)], "repeat": replies[n + len(bodies)],
            "bad": list(zip([m for m, _ in bad], replies[n + len(bodies) + 1:])), "mask": mask}


def _out(reply, key):
    assert "error" not in reply, reply
    return np.asarray(reply["outputs"][key], np.float32)


def test_fresh_process_never_imports_keras_lsvae(fresh):
    assert fresh["imported"] is False


def test_guide_rest_bodies_follow_the_documented_sampler(fresh, trained):
    model = trained[1]
    seeded, rows, unseeded, decoded = fresh["readme"]
    assert np.asarray(seeded["outputs"]["seed"]).tolist() == [42, 43, 44]
    expected, noise = _reference_generate(model, [3, 3, 7], [42, 43, 44])
    np.testing.assert_allclose(_out(seeded, "noise"), noise, atol=1e-6)
    np.testing.assert_allclose(_out(seeded, "images"), expected, atol=1e-5)
    # The row-format request with seeds 42 and 44 gives rows 0 and 2 again (the guide's claim).
    predictions = np.asarray([p["images"] for p in rows["predictions"]], np.float32)
    np.testing.assert_allclose(predictions, _out(seeded, "images")[[0, 2]], atol=1e-5)
    # Without a seed: fresh seeds, returned, and they draw the same images again.
    seeds = np.asarray(unseeded["outputs"]["seed"])
    assert seeds.shape == (10,) and len(set(seeds.tolist())) == 10
    assert np.all((seeds >= 0) & (seeds < lrlivae_export.SEED_RANGE))
    np.testing.assert_allclose(_out(unseeded, "images"),
                               _reference_generate(model, np.arange(10), seeds)[0], atol=1e-5)
    np.testing.assert_allclose(_out(decoded, "images"),
                               model.decode(np.zeros((1, 16)), np.zeros((1, 16))), atol=1e-5)


def test_same_request_same_output(fresh):
    first, again = fresh["readme"][0], fresh["repeat"]
    assert first == again


def test_signatures_match_the_python_api(fresh, trained):
    model, images = trained[1], trained[2]
    x = images[:4]
    encode, recon, recon_one, predict, swap, inpaint, from_noise = fresh["api"]
    codes = model.encode(x)
    for key in ("z_s", "z_u", "z_u_mean", "z_u_log_var"):
        np.testing.assert_allclose(_out(encode, key), codes[key], atol=1e-5)
    np.testing.assert_allclose(_out(recon, "images"), model.reconstruct(x), atol=1e-5)
    # Batch norm in inference mode: a row does not depend on the rest of the batch.
    np.testing.assert_allclose(_out(recon_one, "images"), _out(recon, "images")[:1], atol=1e-5)
    probabilities = np.asarray(model.predict_labels(x))
    np.testing.assert_allclose(_out(predict, "probabilities"), probabilities, atol=1e-5)
    assert predict["outputs"]["labels"] == np.argmax(probabilities, -1).tolist()
    np.testing.assert_allclose(_out(swap, "images"), model.swap(x, images[4:8]), atol=1e-5)
    np.testing.assert_allclose(_out(inpaint, "images"), model.inpaint(x, fresh["mask"]),
                               atol=1e-5)
    noise = np.full((2, 32), 0.5, np.float32)
    z_s = model.prior.components([1, 5]).bijector.forward(noise[:, :16])
    np.testing.assert_allclose(_out(from_noise, "images"), model.decode(z_s, noise[:, 16:]),
                               atol=1e-5)
    assert from_noise["outputs"]["seed"] == [-1, -1]


def test_bad_requests_fail_as_invalid_argument(fresh):
    for message, reply in fresh["bad"]:
        assert reply.get("code") == "INVALID_ARGUMENT", (message, reply)
        assert message in reply["error"], (message, reply["error"][:500])


# ------------------------------------------------------------------------- serving guide
def test_guide_lists_every_signature_as_exported(trained):
    assert export.describe(spec_for(trained[1])) in SECTION
    assert "python scripts/export.py --workdir=runs/digits --export_dir=exported --tflite" \
        in SECTION
    assert "docker run" in SECTION and "tensorflow/serving" in SECTION


def test_guide_rest_python_snippet_runs(server, monkeypatch):
    import requests

    class Reply:
        def __init__(self, body):
            self.body = body

        def json(self):
            return self.body

    posted = []

    def post(url, data):
        assert url == "http://localhost:8501/v1/models/lrlivae:predict"
        posted.append(json.loads(data))
        return Reply(server.rest(posted[-1]))

    monkeypatch.setattr(requests, "post", post)
    snippet = next(b for b in _blocks("python") if "requests.post" in b)
    namespace = {}
    exec(snippet, namespace)  # noqa: S102 - the guide's code
    assert {b["signature_name"] for b in posted} == {"predict_labels", "reconstruct", "encode",
                                                      "swap", "inpaint"}
    for name, reply in namespace["replies"].items():
        assert "error" not in reply, (name, reply)
    assert len(namespace["labels"]) == 4


def test_guide_grpc_snippet_builds_a_valid_request(server, fresh, monkeypatch):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    requests = []

    class Stub:
        def __init__(self, channel):
            pass

        def Predict(self, request, timeout):  # noqa: N802 - the gRPC method name
            requests.append(request)
            return server.grpc(request)

    monkeypatch.setattr(prediction_service_pb2_grpc, "PredictionServiceStub", Stub)
    snippet = next(b for b in _blocks("python") if "PredictRequest" in b)
    namespace = {}
    exec(snippet, namespace)  # noqa: S102 - the guide's code
    (request,) = requests
    signature = server.defs[request.model_spec.signature_name]
    for key, proto in request.inputs.items():
        assert proto.dtype == signature.inputs[key].dtype, key
    # Same labels and seed as the README's first REST body: the same images.
    np.testing.assert_allclose(namespace["images"], _out(fresh["readme"][0], "images"),
                               atol=1e-6)


# -------------------------------------------------------------------------- TFLite
def _tflite(exported, name):
    with open(os.path.join(exported[0]["tflite"], f"{name}.tflite"), "rb") as f:
        return f.read()


@pytest.mark.parametrize("stem", ["decoder", "generator"])
def test_tflite_matches_keras_with_the_decode_signature_names(exported, trained, stem):
    model = trained[1]
    spec = spec_for(model)
    graph = tflite_lib.graph_by_stem(spec, stem)
    with open(os.path.join(exported[0]["tflite"], "parity.json")) as f:
        reported = json.load(f)["max_abs_error_vs_keras"]
    sizes = {}
    for variant in tflite_lib.VARIANTS:
        content = _tflite(exported, f"{stem}_{variant}")
        sizes[variant] = len(content)
        signatures = tflite_lib.interpreter(content).get_signature_list()
        expected_inputs = {"decoder": ["z_s", "z_u"], "generator": ["labels", "noise"]}[stem]
        assert signatures == {graph.signature.name: {"inputs": expected_inputs,
                                                     "outputs": ["images"]}}
        if stem == "decoder":  # the decode signature's own input names
            decode = next(s for s in spec.signatures if s.name == "decode")
            assert [a.name for a in decode.inputs] == expected_inputs
        errors = []
        for rows in (1, 5):  # dynamic batch
            inputs = graph.sample(rows, np.random.default_rng(rows))
            out = tflite_lib.run(content, graph.signature.name, **inputs)["images"]
            assert out.shape == (rows, 16, 16, 1)
            errors.append(float(np.max(np.abs(out - graph.reference(**inputs)))))
        assert max(errors) <= TOLERANCE[variant], (variant, errors)
        assert reported[f"{stem}_{variant}"] <= TOLERANCE[variant]
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]


def test_guide_tflite_snippet_runs(exported):
    snippet = next(b for b in _blocks("python") if "Interpreter" in b)
    path = os.path.join(exported[0]["tflite"], "decoder_float32.tflite")
    namespace = {}
    exec(snippet.replace("exported/lrlivae/tflite/decoder_float32.tflite", path),  # noqa: S102
         namespace)
    assert namespace["images"].shape == (2, 16, 16, 1)


def test_export_metrics_benchmark_measures_every_file(exported, trained):
    flatbuffers = {name: _tflite(exported, name) for name in
                   (f"{g}_{v}" for g in ("decoder", "generator") for v in tflite_lib.VARIANTS)}
    result = export_bench.measure(trained[1], flatbuffers, repeats=2, warmup=1, batch_size=4)
    assert set(result["files"]) == set(flatbuffers) | {"keras_decoder_decode_api",
                                                       "keras_decoder_tf_function"}
    for name, content in flatbuffers.items():
        row = result["files"][name]
        assert row["bytes"] == len(content)
        assert row["ms_per_image_batch1"] > 0 and row["ms_per_image_batch4"] > 0
        # What is timed is the file's own graph on the graph's sample inputs.
        graph = tflite_lib.graph_by_stem(spec_for(trained[1]), name.rsplit("_", 1)[0])
        timed = export_bench.tflite_call(content, graph, 4)()
        inputs = graph.sample(4, np.random.default_rng(0))
        np.testing.assert_array_equal(
            timed, tflite_lib.run(content, graph.signature.name, **inputs)["images"])
    assert "export" in BENCHMARKS


# ------------------------------------------------------------------ export refusals
def _snapshot(path):
    return {os.path.relpath(os.path.join(root, name), path): os.path.getmtime(
        os.path.join(root, name)) for root, _, files in os.walk(path) for name in files}


def test_export_refusals_write_nothing(exported, trained, tmp_path):
    out = exported[1]
    before = _snapshot(out)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(export.ExportError, match="no model.keras in"):
        export.export_run(str(empty), out)
    with pytest.raises(export.ExportError, match="does not exist"):
        export.export_run(str(tmp_path / "missing"), out)
    with pytest.raises(export.ExportError, match="already exported: .*/lrlivae/1; pass --force"):
        export.export_run(trained[0], out, version=1)
    with pytest.raises(export.ExportError, match="lrlivae/tflite; pass --force"):
        export.export_run(trained[0], out, version=7, tflite=True)
    with pytest.raises(export.ExportError, match="positive integer"):
        export.export_run(trained[0], out, version=0)
    # A model class the library does not know (a file from elsewhere) ...
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    with zipfile.ZipFile(os.path.join(trained[0], "model.keras")) as source, \
            zipfile.ZipFile(unknown / "model.keras", "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "config.json":
                content = content.replace(b"keras_lsvae>LrLiVAE", b"keras_lsvae>Future")
            target.writestr(item, content)
    with pytest.raises(export.ExportError, match="unknown model type 'keras_lsvae>Future'"):
        export.export_run(str(unknown), out)
    with open(unknown / "model.keras", "wb") as f:
        f.write(b"not a zip file")
    with pytest.raises(export.ExportError, match="is not a Keras model file"):
        export.export_run(str(unknown), out)
    # ... and a Keras model without export signatures.
    plain = tmp_path / "plain"
    plain.mkdir()
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(plain / "model.keras")
    with pytest.raises(export.ExportError, match="unknown model type 'Sequential'"):
        export.export_run(str(plain), out)
    assert _snapshot(out) == before


def test_script_reports_errors_without_a_traceback(trained, tmp_path):
    proc = _script(f"--workdir={tmp_path}", f"--export_dir={tmp_path / 'out'}")
    assert proc.returncode == 2
    assert f"error: no model.keras in {tmp_path}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "out")


def test_failed_export_leaves_the_previous_version(trained, tmp_path, monkeypatch):
    out = str(tmp_path)
    first = export.export_run(trained[0], out)
    assert first["version"] == 1
    marker = os.path.join(first["saved_model"], "marker")
    open(marker, "w").close()
    before = _snapshot(out)

    def broken(model, path, spec=None):
        os.makedirs(os.path.join(path, "variables"))  # half-written, then the writer fails
        raise RuntimeError("disk full")

    monkeypatch.setattr("keras_lsvae.export.run.export_saved_model", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_run(trained[0], out, version=1, force=True)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_run(trained[0], out)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_run(trained[0], out, model_name="first_export")
    assert not os.path.exists(os.path.join(out, "first_export"))
    assert _snapshot(out) == before and sorted(os.listdir(os.path.join(out, "lrlivae"))) == ["1"]
    monkeypatch.undo()
    second = export.export_run(trained[0], out)  # next free version
    assert second["version"] == 2
    replaced = export.export_run(trained[0], out, version=1, force=True)
    assert replaced["saved_model"] == first["saved_model"] and not os.path.exists(marker)
    assert sorted(os.listdir(os.path.join(out, "lrlivae"))) == ["1", "2"]


# ----------------------------------------------------------------- signature registry
def test_signatures_are_declared_per_model_class(tmp_path):
    from keras_lsvae.export import signatures

    class Subclass(models.LrLiVAE):
        pass

    inherited = Subclass(input_shape=(8, 8, 1), num_classes=3, zs_dim=4, zu_dim=3, width=8,
                         latent_classifier_units=(16,), n_gm=1)
    assert [s.name for s in spec_for(inherited).signatures] == [
        "generate", "encode", "decode", "reconstruct", "predict_labels", "inpaint", "swap"]

    class Other:
        pass

    # Every registered model class declares its signatures (and the error lists them).
    from keras_lsvae.registry import MODELS

    classes = sorted(MODELS.get(name).__name__ for name in MODELS.names())
    assert signatures.exportable_types() == classes
    with pytest.raises(TypeError, match="declares no export signatures; exportable types: "
                                        + re.escape(", ".join(classes))):
        spec_for(Other())

    # A future model (CSVAE's manipulate) declares its own signatures: on its class ...
    manipulate = Signature("manipulate", (Arg("images", "float32", ("N", 2)),),
                           (Arg("images", "float32", ("N", 2)),),
                           lambda images: {"images": check_shape(images, Arg(
                               "images", "float32", ("N", 2))) * 2.0})

    class WithHook(ExportsSignatures):
        def export_spec(self):
            return ExportSpec((manipulate,))

    # ... or in the registry.
    class Registered:
        pass

    register(Registered)(lambda model: ExportSpec((manipulate,)))
    try:
        for instance in (WithHook(), Registered()):
            assert [s.name for s in spec_for(instance).signatures] == ["manipulate"]
        export.export_saved_model(Registered(), str(tmp_path / "sm"))
    finally:
        signatures._BUILDERS.pop(Registered)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(
        loaded.signatures["manipulate"](images=tf.ones([3, 2]))["images"], 2.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="images: expected shape"):
        loaded.signatures["manipulate"](images=tf.ones([3, 5]))
