"""A TF-only stand-in for TF Serving's Predict API, for the export tests (no tests here).

It imports TensorFlow and numpy only, never keras_lsvae: ``test_export.py`` runs it as a script
in a fresh Python process (``python tests/test_export_client.py MODEL_DIR REQUESTS OUT``) to show
that an exported SavedModel needs nothing from this library, as TF Serving has no Python
(``--jobs JOBS OUT``: several models' requests in one process, tests/test_export_models.py).

What it reproduces of TF Serving (tensorflow_serving/servables/tensorflow/predict_util.cc and
the REST API's JSON formats): the request names a signature (default ``serving_default``);
inputs come in the columnar ``"inputs"`` form or the row ``"instances"`` form; each input is
converted to the dtype of the SignatureDef's input; an omitted input takes the SignatureDef's
``defaults`` value, a missing input without one and an unknown input are INVALID_ARGUMENT;
errors raised by the graph (failed in-graph checks) are reported with their status code.
"""

import json
import sys

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

STATUS_NAMES = {tf.errors.INVALID_ARGUMENT: "INVALID_ARGUMENT",
                tf.errors.FAILED_PRECONDITION: "FAILED_PRECONDITION"}


def signature_defs(model_dir):
    """{signature name: SignatureDef} as TF Serving reads them from saved_model.pb."""
    proto = saved_model_pb2.SavedModel()
    with open(f"{model_dir}/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    return dict(proto.meta_graphs[0].signature_def)


class Server:
    """One loaded SavedModel answering Predict requests."""

    def __init__(self, model_dir):
        self.model_dir = model_dir
        self.loaded = tf.saved_model.load(model_dir)
        self.defs = signature_defs(model_dir)

    def _tensors(self, name, inputs):
        signature = self.defs[name]
        unknown = sorted(set(inputs) - set(signature.inputs))
        missing = sorted(set(signature.inputs) - set(inputs) - set(signature.defaults))
        if unknown or missing:
            raise tf.errors.InvalidArgumentError(
                None, None, f"input size does not match signature: extra {unknown}, missing "
                f"{missing}")
        tensors = {}
        for key, info in signature.inputs.items():
            if key in inputs:
                dtype = tf.dtypes.as_dtype(info.dtype).as_numpy_dtype
                tensors[key] = tf.constant(np.asarray(inputs[key], dtype))
            else:
                tensors[key] = tf.constant(tf.make_ndarray(signature.defaults[key]))
        return tensors

    def predict(self, name, inputs):
        """Run signature ``name`` on {input: array-like}; returns {output: np.ndarray}."""
        name = name or "serving_default"
        if name not in self.defs:
            raise tf.errors.FailedPreconditionError(
                None, None, f'Serving signature key "{name}" not found.')
        outputs = self.loaded.signatures[name](**self._tensors(name, inputs))
        return {key: value.numpy() for key, value in outputs.items()}

    def rest(self, body):
        """A REST ``:predict`` JSON body (dict) -> the JSON reply (dict), as TF Serving."""
        try:
            if "instances" in body:
                rows = body["instances"]
                keys = rows[0].keys() if isinstance(rows[0], dict) else None
                inputs = ({k: [row[k] for row in rows] for k in keys} if keys is not None
                          else {self._single_input(body): rows})
            else:
                inputs = body["inputs"]
                if not isinstance(inputs, dict):
                    inputs = {self._single_input(body): inputs}
            outputs = self.predict(body.get("signature_name"), inputs)
        except tf.errors.OpError as error:
            return {"error": error.message, "code": STATUS_NAMES.get(error.error_code,
                                                                     str(error.error_code))}
        if "instances" in body:
            n = len(body["instances"])
            return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()}
                                    for i in range(n)]}
        return {"outputs": {k: v.tolist() for k, v in outputs.items()}}

    def _single_input(self, body):
        return next(iter(self.defs[body.get("signature_name") or "serving_default"].inputs))

    def grpc(self, request):
        """A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` -> PredictResponse."""
        from tensorflow_serving.apis import predict_pb2

        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        outputs = self.predict(request.model_spec.signature_name, inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response


def main(model_dir, requests_path, out_path):
    """Replay the REST bodies in ``requests_path`` (a JSON list) and write the replies."""
    with open(requests_path) as f:
        bodies = json.load(f)
    server = Server(model_dir)
    replies = [server.rest(body) for body in bodies]
    with open(out_path, "w") as f:
        json.dump({"replies": replies, "keras_lsvae_imported": any(
            m == "keras_lsvae" or m.startswith("keras_lsvae.") for m in sys.modules)}, f)


def main_jobs(jobs_path, out_path):
    """Replay several models' REST bodies in one process: ``jobs_path`` holds a JSON list of
    {"model_dir": ..., "requests": [...]}; writes one reply list per job."""
    with open(jobs_path) as f:
        jobs = json.load(f)
    replies = []
    for job in jobs:
        server = Server(job["model_dir"])
        replies.append([server.rest(body) for body in job["requests"]])
    with open(out_path, "w") as f:
        json.dump({"replies": replies, "keras_lsvae_imported": any(
            m == "keras_lsvae" or m.startswith("keras_lsvae.") for m in sys.modules)}, f)


if __name__ == "__main__":
    if sys.argv[1] == "--jobs":  # python tests/test_export_client.py --jobs JOBS OUT
        main_jobs(*sys.argv[2:4])
    else:
        main(*sys.argv[1:4])
