"""Export of every registered model besides Lr-LiVAE (Lr-LiVAE: tests/test_export.py).

For each model, a digits-shaped run (16×16×1, 10 classes or 10 one-hot attributes, z of 16, as
configs/<model>_digits.cfg, with tiny widths) trained for 2 steps is exported by
``scripts/export.py --tflite`` as typed; then, in one fresh process that never imports
keras_lsvae (tests/test_export_client.py ``--jobs``), the serving guide's request body of the
model (docs/export.md, "Serving the other models"), one request per signature and bad requests
are replayed. Each signature's output is compared with the model's Python method on the same
inputs (``generate`` through the same noise), bad labels, attribute rows, shapes and row counts
fail as INVALID_ARGUMENT naming the input, and every TFLite file matches Keras within
Lr-LiVAE's bounds.
"""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lsvae import data, export, models
from keras_lsvae.export import tflite as tflite_lib
from keras_lsvae.export.signatures import spec_for
from keras_lsvae.models import capabilities as caps
from keras_lsvae.registry import MODELS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = os.path.join(REPO, "tests", "test_export_client.py")
with open(os.path.join(REPO, "docs", "export.md")) as _f:
    EXPORT_DOC = _f.read()
SECTION = re.search(r"## Serving the other models\n(.*?)\n## ", EXPORT_DOC, re.S).group(1)
#: {model name: its sub-section of the guide}
GUIDE = {m.group(1): m.group(2) for m in re.finditer(
    r"### [^\n]*\(`(\w+)`[^\n]*\n(.*?)(?=\n### |\Z)", SECTION, re.S)}
NAMES = ["csvae", "vae", "condvae", "condvae_info", "cvae", "cvaegan", "cgan"]
SHAPE, K, Z = (16, 16, 1), 10, 16
TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "int8": 5e-2}
N = 4


def test_every_registered_model_is_exported_here_or_in_test_export():
    assert sorted(NAMES + ["lrlivae"]) == sorted(MODELS.names())
    assert sorted(GUIDE) == sorted(NAMES)


def _tiny(name):
    kwargs = dict(input_shape=SHAPE, num_classes=K, z_dim=Z, width=8, mlp_units=(16,), seed=0)
    if name != "cgan":
        kwargs["condition_units"] = 16
    if name in ("csvae", "condvae_info"):
        kwargs["adversary_units"] = (16,)
    keras.utils.set_random_seed(0)
    return models.get(name, **kwargs)


def _targets(model, labels):
    return (data.as_attributes(labels, data.info("digits"))
            if model.label_kind == "attributes" else labels)


def _script(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", "export.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=600)


def _export_script(workdir, out):
    """``scripts/export.py --workdir=RUN --export_dir=DIR --tflite``, as typed:
    (printed result, export_dir, return code, stderr)."""
    proc = _script(f"--workdir={workdir}", f"--export_dir={out}", "--tflite")
    result = json.loads(proc.stdout[proc.stdout.index("{"):]) if proc.returncode == 0 else None
    return result, out, proc.returncode, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def trained_and_exported(tmp_path_factory):
    """Each model trained for 2 steps of batch 32, then what training runs at its end (the
    attribute statistics), saved as a run's model.keras; each run exported by the script
    while the next model trains (two exports at a time)."""
    x, y = data.load_arrays("digits", "train")
    x, y = x[:64], y[:64]
    runs, futures = {}, {}
    with ThreadPoolExecutor(2) as pool:
        for name in NAMES:
            model = _tiny(name)
            model.compile(learning_rate=1e-3)
            targets = _targets(model, y)
            model.fit(x, targets, batch_size=32, epochs=1, verbose=0)
            model.after_training(lambda: (x, targets))
            workdir = str(tmp_path_factory.mktemp(f"run_{name}"))
            model.save(os.path.join(workdir, "model.keras"))
            runs[name] = (workdir, model)
            futures[name] = pool.submit(_export_script, workdir,
                                        str(tmp_path_factory.mktemp(f"exported_{name}")))
        return runs, {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def runs(trained_and_exported):
    """{name: (workdir with model.keras, the trained model)}."""
    return trained_and_exported[0]


@pytest.fixture(scope="module")
def exported(trained_and_exported):
    """{name: (printed result, export_dir, return code, stderr)} of scripts/export.py."""
    return trained_and_exported[1]


def _export(exported, name):
    result, out, code, stderr = exported[name]
    assert code == 0, stderr
    return result, out


# ------------------------------------------------------------------------- requests
def _images():
    x, y = data.load_arrays("digits", "test")
    return x[:2 * N], y[:2 * N]


def _guide_bodies(name):
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", GUIDE[name], re.S)]


def _inputs(model):
    """Valid request inputs by name, and the Python calls they stand for."""
    x, y = _images()
    mask = np.zeros((1, *SHAPE), np.float32)
    mask[:, :, 8:] = 1.0
    rng = np.random.default_rng(0)
    values = {"images": x[:N], "labels": y[:N].astype(np.int32), "mask": mask,
              "noise": rng.standard_normal((N, _noise_dim(model))).astype(np.float32),
              "z": rng.standard_normal((N, Z)).astype(np.float32), "fill_value": 0.25}
    if model.label_kind == "attributes":
        values["attributes"] = _targets(model, y[:N]).astype(np.float32)
        values["target_attributes"] = _targets(model, (y[:N] + 1) % K).astype(np.float32)
    if caps.supports(model, caps.WGrids):
        values["w"] = (3.0 * rng.standard_normal((N, model.total_w_dim))).astype(np.float32)
    return values


def _noise_dim(model):
    return Z + (model.total_w_dim if caps.supports(model, caps.WGrids) else 0)


def _cases(model):
    """[(signature, request inputs, python() -> {output: expected})] for every signature of the
    model's spec, with the optional inputs both given and omitted."""
    v = _inputs(model)
    label = "attributes" if model.label_kind == "attributes" else "labels"
    names = [s.name for s in spec_for(model).signatures]
    arguments = {s.name: [a.name for a in s.inputs] for s in spec_for(model).signatures}

    def given(signature, *keys):
        return {k: v[k] for k in keys if k in arguments[signature]}

    def generate_python():
        model._normal = lambda shape, seed: tf.constant(v["noise"])
        try:
            return {"images": model.generate(v[label])}
        finally:
            del model._normal

    cases = [("generate", {label: v[label], "noise": v["noise"]}, generate_python)]
    codes = "w" if "w" in arguments["decode"] else ("attributes" if "attributes" in
                                                      arguments["decode"] else "labels")
    decode_inputs = {"z": v["z"]}
    if codes == "attributes":
        decode_inputs["attributes"] = 0.5 * v["attributes"]  # a real-valued label code
    elif codes in arguments["decode"]:
        decode_inputs[codes] = v[codes]
    cases.append(("decode", decode_inputs, lambda: {"images": model.decode(
        *[decode_inputs[k] for k in arguments["decode"]])}))
    if "encode" in names:
        inputs = given("encode", "images", "attributes", "labels")
        cases.append(("encode", inputs,
                      lambda inputs=inputs: dict(model.encode(*inputs.values()))))
        if "labels" in inputs and model.needs_labels is False:  # predicted by the classifier
            cases.append(("encode", {"images": v["images"]}, lambda: dict(
                model.encode(v["images"]), labels=np.argmax(model.predict_labels(v["images"]),
                                                            -1))))
    if "reconstruct" in names:
        inputs = given("reconstruct", "images", "attributes", "labels")
        cases.append(("reconstruct", inputs,
                      lambda inputs=inputs: {"images": model.reconstruct(*inputs.values())}))
        if "labels" in inputs and model.needs_labels is False:
            cases.append(("reconstruct", {"images": v["images"]},
                          lambda: {"images": model.reconstruct(v["images"])}))
    if "predict_labels" in names:
        def predicted():
            p = np.asarray(model.predict_labels(v["images"]))
            return {"probabilities": p, "labels": np.argmax(p, -1)}

        cases.append(("predict_labels", {"images": v["images"]}, predicted))
    if "inpaint" in names:
        inputs = {"images": v["images"], "mask": v["mask"], "labels": v["labels"],
                  "fill_value": v["fill_value"]}
        cases.append(("inpaint", inputs, lambda: {"images": model.inpaint(
            v["images"], v["mask"], labels=v["labels"], fill_value=v["fill_value"])}))
        if model.needs_labels is False:
            cases.append(("inpaint", {"images": v["images"], "mask": v["mask"]},
                          lambda: {"images": model.inpaint(v["images"], v["mask"])}))
    if "manipulate" in names:
        if caps.supports(model, caps.WGrids):  # CSVAE: manipulate(images, targets, w)
            base = {"images": v["images"], "target_attributes": v["target_attributes"]}
            cases.append(("manipulate", base, lambda: {
                "images": model.manipulate(v["images"], v["target_attributes"]),
                "w": model.attribute_points(v["target_attributes"])}))
            cases.append(("manipulate", dict(base, w=v["w"]), lambda: {
                "images": model.manipulate(v["images"], v["target_attributes"], v["w"]),
                "w": v["w"]}))
        elif caps.supports(model, caps.ScalesManipulation):
            sources = v["attributes"] if model.condition_encoder else None
            base = given("manipulate", "images", "attributes", "target_attributes")
            cases.append(("manipulate", base, lambda: {"images": model.manipulate(
                v["images"], sources, v["target_attributes"])}))
            cases.append(("manipulate", dict(base, scale=1.5), lambda: {
                "images": model.manipulate(v["images"], sources, v["target_attributes"],
                                           scale=1.5)}))
        else:  # VAE: manipulate(images, attributes, targets)
            base = given("manipulate", "images", "attributes", "target_attributes")
            cases.append(("manipulate", base, lambda: {"images": model.manipulate(
                v["images"], v["attributes"], v["target_attributes"])}))
    assert {c[0] for c in cases} == set(names)  # every signature is compared
    return cases


def _bad(model):
    """[(expected message, request body)]: bad labels, attribute rows, shapes, row counts."""
    x = _images()[0][:2].tolist()
    z = [[0.0] * Z]
    bad = []
    bad.append((f"z: expected shape (N, {Z})",
                {"signature_name": "decode", "inputs": _decode_body(model, [[0.0] * (Z - 1)])}))
    bad.append(("noise: expected shape", {"inputs": {
        _label(model): _label_rows(model, [1]), "noise": [[0.0] * (_noise_dim(model) + 1)]}}))
    bad.append(("seed: expected no seed, one seed for the request, or one per row", {
        "inputs": {_label(model): _label_rows(model, [1, 2, 3]), "seed": [4, 5]}}))
    if model.label_kind == "attributes":
        two = [[0.0] * K for _ in range(2)]
        two[0][3], two[1][3] = 1.0, 2.0
        bad += [("attributes: values must be 0 or 1", {"inputs": {"attributes": two}}),
                ("attributes: values must be 0 or 1", {"inputs": {"attributes": [[0.5] * K]}}),
                (f"attributes: expected shape (N, {K})", {"inputs": {"attributes": [[0.0] * 9]}})]
        targets = [[1.0] + [0.0] * (K - 1)] * 2
        manipulate = {"images": x, "target_attributes": targets}
        if "attributes" in _arguments(model, "manipulate"):
            manipulate["attributes"] = targets
            bad.append(("attributes: values must be 0 or 1", {
                "signature_name": "manipulate",
                "inputs": dict(manipulate, attributes=[[3.0] * K] * 2)}))
        bad += [("target_attributes: values must be 0 or 1", {
                    "signature_name": "manipulate",
                    "inputs": dict(manipulate, target_attributes=[[0.0] * (K - 1) + [-1.0]] * 2)}),
                ("images and target_attributes must have the same number of rows", {
                    "signature_name": "manipulate",
                    "inputs": dict(manipulate, target_attributes=targets[:1])}),
                ("images: expected shape (N, 16, 16, 1)", {
                    "signature_name": "manipulate",
                    "inputs": dict(manipulate, images=np.zeros((2, 8, 8, 1)).tolist())}),
                ("values must lie in [0, 1]", {
                    "signature_name": "manipulate",
                    "inputs": dict(manipulate, images=(np.asarray(x) * 2).tolist())})]
        if "w" in _arguments(model, "manipulate"):
            bad.append(("w: expected no point (the fitted means of the targets) or one per image", {
                "signature_name": "manipulate",
                "inputs": dict(manipulate, w=[[0.0] * model.total_w_dim] * 3)}))
        if "attributes" in _arguments(model, "encode"):
            bad.append(("images and attributes must have the same number of rows", {
                "signature_name": "encode", "inputs": {"images": x, "attributes": targets[:1]}}))
    else:
        bad += [("labels: class ids must lie in [0, 10)", {"inputs": {"labels": [3, 10]}}),
                ("labels: class ids must lie in [0, 10)", {"inputs": {"labels": [-1]}}),
                ("z and labels must have the same number of rows", {
                    "signature_name": "decode", "inputs": {"z": z * 2, "labels": [1]}})]
        if caps.supports(model, caps.Encodes):
            bad += [("labels: class ids must lie in [0, 10)", {
                        "signature_name": "reconstruct", "inputs": {"images": x,
                                                                    "labels": [1, 11]}}),
                    ("images: expected shape (N, 16, 16, 1)", {
                        "signature_name": "encode",
                        "inputs": {"images": np.zeros((1, 16, 15, 1)).tolist(), "labels": [1]}}),
                    ("mask: values must be 0 (kept) or 1 (missing)", {
                        "signature_name": "inpaint", "inputs": {
                            "images": x, "labels": [1, 2],
                            "mask": np.full((1, 16, 16, 1), 0.5).tolist()}}),
                    ("fill_value: values must lie in [0.0, 1.0]", {
                        "signature_name": "inpaint", "inputs": {
                            "images": x, "labels": [1, 2], "fill_value": 2.0,
                            "mask": np.ones((1, 16, 16, 1)).tolist()}})]
            if model.needs_labels:
                bad.append(("images and labels must have the same number of rows", {
                    "signature_name": "encode", "inputs": {"images": x, "labels": [1]}}))
            else:
                bad.append(("labels: expected no labels (predicted) or one per image", {
                    "signature_name": "encode", "inputs": {"images": x, "labels": [1]}}))
        if caps.supports(model, caps.PredictsLabels):
            bad.append(("images: contain NaN", {"signature_name": "predict_labels", "inputs": {
                "images": np.full((1, 16, 16, 1), np.nan).tolist()}}))
    return bad


def _arguments(model, signature):
    return [a.name for s in spec_for(model).signatures if s.name == signature for a in s.inputs]


def _label(model):
    return "attributes" if model.label_kind == "attributes" else "labels"


def _label_rows(model, classes):
    if model.label_kind == "attributes":
        return np.eye(K, dtype=np.float32)[classes].tolist()
    return list(classes)


def _decode_body(model, z):
    inputs = {"z": z}
    names = _arguments(model, "decode")
    if "w" in names:
        inputs["w"] = [[0.0] * model.total_w_dim] * len(z)
    elif "attributes" in names:
        inputs["attributes"] = [[0.0] * K] * len(z)
    elif "labels" in names:
        inputs["labels"] = [0] * len(z)
    return inputs


def _jsonable(value):
    return np.asarray(value).tolist()


@pytest.fixture(scope="module")
def fresh(runs, exported, tmp_path_factory):
    """Every model's requests replayed in one new Python process without keras_lsvae:
    {name: {"guide": replies, "api": [(case, reply)], "bad": [(message, reply)],
    "repeat": reply}}; and "imported"."""
    jobs, layout = [], {}
    for name in NAMES:
        model = runs[name][1]
        guide = _guide_bodies(name)
        cases = _cases(model)
        api = [{"signature_name": sig, "inputs": {k: _jsonable(a) for k, a in inputs.items()}}
               for sig, inputs, _ in cases]
        bad = _bad(model)
        requests = guide + api + [guide[0]] + [body for _, body in bad]
        result, _ = _export(exported, name)
        jobs.append({"model_dir": result["saved_model"], "requests": requests})
        layout[name] = (len(guide), cases, bad)
    tmp = tmp_path_factory.mktemp("fresh_models")
    with open(tmp / "jobs.json", "w") as f:
        json.dump(jobs, f)
    proc = subprocess.run([sys.executable, CLIENT, "--jobs", str(tmp / "jobs.json"),
                           str(tmp / "replies.json")], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp / "replies.json") as f:
        result = json.load(f)
    out = {"imported": result["keras_lsvae_imported"]}
    for name, replies in zip(NAMES, result["replies"]):
        n_guide, cases, bad = layout[name]
        api_end = n_guide + len(cases)
        out[name] = {"guide": replies[:n_guide],
                     "api": list(zip(cases, replies[n_guide:api_end])),
                     "repeat": replies[api_end],
                     "bad": list(zip([m for m, _ in bad], replies[api_end + 1:]))}
    return out


def _out(reply, key):
    assert "error" not in reply, reply
    return np.asarray(reply["outputs"][key])


# ---------------------------------------------------------------------------- layout
@pytest.mark.parametrize("name", NAMES)
def test_script_writes_the_tf_serving_layout(exported, runs, name):
    result, out = _export(exported, name)
    model = runs[name][1]
    spec = spec_for(model)
    base = os.path.join(out, model.name)
    assert result["saved_model"] == os.path.join(base, "1") and result["version"] == 1
    assert result["model_type"] == type(model).__name__
    assert sorted(os.listdir(base)) == ["1", "tflite"]
    with open(os.path.join(base, "1", "assets.extra", "keras_lsvae_export.json")) as f:
        metadata = json.load(f)
    assert metadata["signatures"] == [s.name for s in spec.signatures]
    assert metadata["model_type"] == type(model).__name__
    stems = [g.file_stem for g in spec.tflite]
    assert "decoder" in stems
    names = [f"{g}_{v}.tflite" for g in stems for v in tflite_lib.VARIANTS]
    assert sorted(os.listdir(os.path.join(base, "tflite"))) == sorted(names + ["parity.json"])
    assert metadata["tflite"] == sorted(n[:-len(".tflite")] for n in names)


#: What the endpoints read: networks and saved statistics (no optimizer slot, adversary,
#: discriminator or random-generator state).
INFERENCE_WEIGHTS = {
    "csvae": ("encoder_z", "encoder_w", "decoder", "w_statistics", "w_statistics_counts"),
    "vae": ("encoder", "decoder", "attribute_means", "attribute_counts"),
    "condvae": ("encoder", "decoder"), "condvae_info": ("encoder", "decoder"),
    "cvae": ("encoder", "decoder"), "cvaegan": ("encoder", "generator", "classifier"),
    "cgan": ("generator",)}


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_holds_only_inference_variables(exported, runs, name):
    model = runs[name][1]
    result, _ = _export(exported, name)
    needed = []
    for attribute in INFERENCE_WEIGHTS[name]:
        part = getattr(model, attribute)
        needed += part.variables if hasattr(part, "variables") else [part]
    saved = [shape for key, shape in tf.train.list_variables(
        os.path.join(result["saved_model"], "variables", "variables"))
        if key.endswith("VARIABLE_VALUE")]
    assert sorted(int(np.prod(s)) for s in saved) == sorted(int(np.prod(v.shape))
                                                            for v in needed)


# ------------------------------------------------------------------- fresh process
def test_fresh_process_never_imports_keras_lsvae(fresh):
    assert fresh["imported"] is False


def _reference_generate(model, labels, seeds):
    """The documented sampler: ε_i = stateless_normal([dim], [s_i, 0]) through the Python
    ``generate`` (its noise draw replaced by ε)."""
    noise = np.stack([tf.random.stateless_normal([_noise_dim(model)], seed=[int(s), 0]).numpy()
                      for s in seeds])
    model._normal = lambda shape, seed: tf.constant(noise)
    try:
        return np.asarray(model.generate(labels)), noise
    finally:
        del model._normal


@pytest.mark.parametrize("name", NAMES)
def test_guide_request_body_replays(fresh, runs, name):
    model = runs[name][1]
    (body,), (reply,) = _guide_bodies(name), fresh[name]["guide"]
    signature = body.get("signature_name", "serving_default")
    if "instances" in body:
        inputs = {k: [row[k] for row in body["instances"]] for k in body["instances"][0]}
        assert "predictions" in reply, reply
        outputs = {k: np.asarray([p[k] for p in reply["predictions"]])
                   for k in reply["predictions"][0]}
    else:
        inputs = body["inputs"]
        assert "error" not in reply, reply
        outputs = {k: np.asarray(v) for k, v in reply["outputs"].items()}
    if signature in ("generate", "serving_default"):
        labels = np.asarray(inputs[_label(model)])
        seeds = inputs["seed"]
        if len(seeds) == 1:
            seeds = [seeds[0] + i for i in range(len(labels))]
        assert outputs["seed"].tolist() == seeds
        expected, noise = _reference_generate(model, labels, seeds)
        np.testing.assert_allclose(outputs["noise"], noise, atol=1e-6)
    else:
        assert signature == "decode"
        expected = model.decode(*[np.asarray(inputs[k]) for k in _arguments(model, "decode")])
    np.testing.assert_allclose(outputs["images"], expected, atol=1e-5)
    # Same request, same reply.
    assert fresh[name]["repeat"] == reply


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_the_python_api(fresh, runs, name):
    compared = set()
    for (signature, inputs, python), reply in fresh[name]["api"]:
        expected = python()
        assert expected, signature
        for key, value in expected.items():
            actual = _out(reply, key)
            if np.asarray(value).dtype.kind in "iu":
                assert actual.tolist() == np.asarray(value).tolist(), (signature, key)
            else:
                np.testing.assert_allclose(actual, value, atol=1e-5,
                                           err_msg=f"{name}.{signature}: {key}")
        if signature == "generate":  # noise given: the seeds say so
            assert _out(reply, "seed").tolist() == [-1] * N
        compared.add(signature)
    assert compared == {s.name for s in spec_for(runs[name][1]).signatures}


@pytest.mark.parametrize("name", NAMES)
def test_bad_requests_fail_as_invalid_argument(fresh, name):
    assert len(fresh[name]["bad"]) >= 5
    for message, reply in fresh[name]["bad"]:
        assert reply.get("code") == "INVALID_ARGUMENT", (message, reply)
        assert message in reply["error"], (message, reply["error"][:500])


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_float_inputs_fail_as_invalid_argument(exported, runs, name):
    """Every float input of every signature refuses NaN, naming the input (in process)."""
    model = runs[name][1]
    loaded = tf.saved_model.load(_export(exported, name)[0]["saved_model"])
    values = _inputs(model)
    values["fill_value"] = np.float32(0.25)
    values["scale"] = np.float32(1.5)
    checked = 0
    for signature in spec_for(model).signatures:
        valid = {a.name: tf.constant(values[a.name] if a.name != "attributes"
                                     or signature.name != "decode" else 0.5 * values[a.name],
                                     a.dtype) for a in signature.inputs
                 if a.name in values and a.name != "seed"}
        if signature.name == "generate":
            valid.setdefault("seed", tf.zeros([0], tf.int64))
        valid = {a.name: valid[a.name] for a in signature.inputs}
        for output in loaded.signatures[signature.name](**valid).values():
            if output.dtype.is_floating:
                assert np.all(np.isfinite(output.numpy())), signature.name
        for arg in signature.inputs:
            if arg.dtype != "float32":
                continue
            array = np.array(valid[arg.name].numpy())
            array.flat[array.size - 1] = np.nan
            with pytest.raises(tf.errors.InvalidArgumentError, match=f"{arg.name}: "):
                loaded.signatures[signature.name](**dict(valid, **{arg.name: tf.constant(
                    array)}))
            checked += 1
    assert checked >= 2


# ------------------------------------------------------------------------- the guide
@pytest.mark.parametrize("name", NAMES)
def test_guide_lists_every_signature_as_exported(runs, name):
    assert export.describe(spec_for(runs[name][1])) in GUIDE[name]
    assert len(_guide_bodies(name)) == 1


def test_guide_export_command():
    assert "python scripts/export.py --workdir=runs/csvae_digits --export_dir=exported " \
           "--tflite" in SECTION


# --------------------------------------------------------------------------- TFLite
@pytest.mark.parametrize("name", NAMES)
def test_tflite_matches_keras(exported, runs, name):
    model = runs[name][1]
    result, _ = _export(exported, name)
    spec = spec_for(model)
    with open(os.path.join(result["tflite"], "parity.json")) as f:
        reported = json.load(f)["max_abs_error_vs_keras"]
    decode = next(s for s in spec.signatures if s.name == "decode")
    generate = spec.signatures[0]
    for graph in spec.tflite:
        for variant in tflite_lib.VARIANTS:
            with open(os.path.join(result["tflite"], f"{graph.file_stem}_{variant}.tflite"),
                      "rb") as f:
                content = f.read()
            signatures = tflite_lib.interpreter(content).get_signature_list()
            inputs = [a.name for a in graph.signature.inputs]
            assert signatures == {graph.signature.name: {"inputs": sorted(inputs),
                                                         "outputs": ["images"]}}
            # The SavedModel signature's own input names.
            if graph.file_stem == "decoder":
                assert inputs == [a.name for a in decode.inputs]
            else:
                assert inputs == [generate.inputs[0].name, "noise"]
            errors = []
            for rows in (1, 5):  # dynamic batch
                sample = graph.sample(rows, np.random.default_rng(rows))
                out = tflite_lib.run(content, graph.signature.name, **sample)["images"]
                assert out.shape == (rows, *SHAPE)
                errors.append(float(np.max(np.abs(out - graph.reference(**sample)))))
            assert max(errors) <= TOLERANCE[variant], (graph.file_stem, variant, errors)
            assert reported[f"{graph.file_stem}_{variant}"] <= TOLERANCE[variant]
