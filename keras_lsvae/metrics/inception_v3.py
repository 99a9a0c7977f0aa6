"""Standard Inception-v3 IS and FID, **only** from weights already on this machine.

DESIGN.md: "Standard Inception-v3 IS/FID only where its weights are available; never silently
substitute." This module never downloads anything: it looks for the Keras ImageNet weight file
of ``keras.applications.InceptionV3`` at

* an explicit path (``weights_path=``, ``scripts/evaluate.py --inception_v3_weights=PATH``),
* ``$KERAS_LSVAE_INCEPTION_V3_WEIGHTS``,
* the Keras cache, ``$KERAS_HOME/models/`` (default ``~/.keras/models/``):
  ``inception_v3_weights_tf_dim_ordering_tf_kernels.h5`` (with the 1000-class top: IS and FID)
  or ``..._notop.h5`` (no top: FID only),

and builds the network from that file (``weights=<path>``, never ``weights="imagenet"``). When no
file is found, :func:`availability` says so — ``"inception_v3: not available (weights not found
at ...)"`` — and callers report that sentence instead of numbers; the classifier-based IS/FID of
:mod:`keras_lsvae.metrics.inception` are then the only ones, labelled as such.

Protocol: images in [0, 1] are resized bilinearly to 299×299, grey images are repeated to 3
channels, then scaled to [−1, 1] (Inception-v3's preprocessing). IS = exp(E KL(p(y|x)||p(y)))
on the 1000 ImageNet classes over 10 splits; FID on the 2048-d global-average-pool features
against the real reference images, in float64 (:func:`keras_lsvae.metrics.frechet_distance`).
These are the Keras application weights, not the 2015 TF graph of the original IS/FID code, so
numbers are close to, but not bit-identical with, published ones; on 8-32 px digits upsampled to
299 px they mean little anyway, which is why the evaluation-classifier numbers come first.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import numpy as np

from keras_lsvae.metrics.inception import frechet_distance, inception_score

WEIGHTS_TOP = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_NOTOP = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
ENV_WEIGHTS = "KERAS_LSVAE_INCEPTION_V3_WEIGHTS"
INPUT_SIZE = 299
POOL_LAYER = "avg_pool"


def keras_cache_dir() -> str:
    """``$KERAS_HOME/models`` (``~/.keras/models`` by default), where Keras caches weights."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def candidate_paths(weights_path: Optional[str] = None) -> list:
    """Where weights are looked for, in order (explicit path, env variable, Keras cache)."""
    if weights_path:
        return [os.path.expanduser(weights_path)]
    paths = []
    if os.environ.get(ENV_WEIGHTS):
        paths.append(os.path.expanduser(os.environ[ENV_WEIGHTS]))
    cache = keras_cache_dir()
    paths += [os.path.join(cache, WEIGHTS_TOP), os.path.join(cache, WEIGHTS_NOTOP)]
    return paths


def find_weights(weights_path: Optional[str] = None) -> Optional[str]:
    """The first existing file of :func:`candidate_paths`, or None. Never downloads."""
    for path in candidate_paths(weights_path):
        if os.path.isfile(path):
            return path
    return None


def _has_top(path: str) -> bool:
    return "notop" not in os.path.basename(path)


def availability(weights_path: Optional[str] = None) -> Dict[str, object]:
    """``{"available", "path", "include_top", "message", "searched"}`` without loading anything."""
    searched = candidate_paths(weights_path)
    path = find_weights(weights_path)
    if path is None:
        return {"available": False, "path": None, "include_top": None, "searched": searched,
                "message": f"inception_v3: not available (weights not found at "
                           f"{', '.join(searched)})"}
    top = _has_top(path)
    return {"available": True, "path": path, "include_top": top, "searched": searched,
            "message": f"inception_v3: weights {path} ("
                       + ("IS and FID" if top else "no top: FID only, no IS") + ")"}


def build_inception_v3(path: str, include_top: bool):
    """Keras InceptionV3 from a local weight file: ``images -> (probs or None, pool features)``.

    Returns a callable on preprocessed (N, 299, 299, 3) batches giving ``(probs, features)``.
    """
    import keras

    base = keras.applications.InceptionV3(weights=path, include_top=include_top,
                                          pooling=None if include_top else "avg",
                                          input_shape=(INPUT_SIZE, INPUT_SIZE, 3))
    if include_top:
        both = keras.Model(base.inputs, [base.output, base.get_layer(POOL_LAYER).output])

        def run(x):
            probs, feats = both(x, training=False)
            return np.asarray(probs), np.asarray(feats)
    else:
        def run(x):
            return None, np.asarray(base(x, training=False))
    return run


#: Replaced in tests (a tiny network instead of the real one); signature (path, include_top).
BUILDER: Callable = build_inception_v3


def preprocess(images, size: int = INPUT_SIZE) -> np.ndarray:
    """[0, 1] NHWC (any size, 1 or 3 channels) -> (N, size, size, 3) in [−1, 1]."""
    import tensorflow as tf

    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    resized = tf.image.resize(images, (size, size), method="bilinear").numpy()
    return np.clip(resized, 0.0, 1.0) * 2.0 - 1.0


def _outputs(run, images, batch_size, size):
    probs, feats = [], []
    for start in range(0, len(images), batch_size):
        p, f = run(preprocess(images[start:start + batch_size], size))
        if p is not None:
            probs.append(p)
        feats.append(f)
    return (np.concatenate(probs) if probs else None), np.concatenate(feats)


def inception_v3_scores(generated, real, weights_path: Optional[str] = None, splits: int = 10,
                        batch_size: int = 50, size: int = INPUT_SIZE) -> Dict[str, object]:
    """Inception-v3 IS of ``generated`` and FID of ``generated`` vs ``real`` where the weights
    are present; otherwise ``{"available": False, "message": "inception_v3: not available ..."}``.

    Returns ``{"available", "message", "path", "is_mean", "is_std" (None without the top),
    "fid", "num_generated", "num_real", "protocol"}``.
    """
    info = availability(weights_path)
    result = {"available": info["available"], "message": info["message"], "path": info["path"]}
    if not info["available"]:
        return result
    run = BUILDER(info["path"], info["include_top"])
    gen_probs, gen_feats = _outputs(run, np.asarray(generated), batch_size, size)
    _, real_feats = _outputs(run, np.asarray(real), batch_size, size)
    if gen_probs is not None:
        result["is_mean"], result["is_std"] = inception_score(gen_probs, splits=splits)
    else:
        result["is_mean"] = result["is_std"] = None
    result["fid"] = frechet_distance(gen_feats, real_feats)
    result["num_generated"] = int(len(gen_feats))
    result["num_real"] = int(len(real_feats))
    result["protocol"] = (f"Keras InceptionV3 ({os.path.basename(info['path'])}); images "
                          f"resized bilinearly to {size}x{size}, grey repeated to RGB, scaled "
                          f"to [-1, 1]; IS over {splits} splits on the 1000 ImageNet classes; "
                          f"FID on {gen_feats.shape[1]}-d pool features vs the real split")
    return result
