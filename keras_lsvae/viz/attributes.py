"""Helpers for attribute models (paper B: CSVAE, VAE, CondVAE, CondVAE-info), shared by the
training callbacks, ``metrics.json`` and ``scripts/visualize.py``.

Written against the model contract (duck-typed): ``label_kind == "attributes"``,
``num_classes`` = A, ``generate(attributes, seed)``, ``manipulate(...)``, and optionally
``fit_attribute_statistics(images, attributes)`` (VAE, CSVAE) and ``predict_attributes(images)``.

* `attribute_targets(A)`: the target attribute vectors a grid shows, one per column/row: for
  A = 1 the attribute off and on ([0], [1]); for A >= 2 the A one-hot vectors (one class of
  one-hot class data; one attribute alone for non-exclusive attributes).
* `manipulate(model, images, attributes, targets)`: paper B §4.3's G_ij through each model's
  signature (CSVAE's ``manipulate(images, target_attributes, w=None)`` needs no source
  attributes; the others take ``(images, attributes, target_attributes)``).
* `pick_examples(attributes, count)`: fixed, deterministic test examples covering the label
  patterns (one per class first), the rows of the manipulation grids.
* `manipulation_tiles(...)`: rows = examples, columns = the input then each target.
"""

from __future__ import annotations

import inspect
from typing import List, Optional, Sequence

import numpy as np

from keras_lsvae.viz.grid import as_nhwc, to_numpy


def is_attribute_model(model) -> bool:
    """True for models that take (N, A) attribute vectors (paper B's), False for class models."""
    return getattr(model, "label_kind", "class") == "attributes"


def attribute_targets(num_attributes: int) -> np.ndarray:
    """float32 (T, A): [[0], [1]] for one attribute (off, on), else the A one-hot vectors."""
    num_attributes = int(num_attributes)
    if num_attributes == 1:
        return np.array([[0.0], [1.0]], np.float32)
    return np.eye(num_attributes, dtype=np.float32)


def target_names(num_attributes: int, names: Optional[Sequence[str]] = None) -> List[str]:
    """Column labels of `attribute_targets`: "<name> off/on" for A = 1, else the names."""
    names = list(names or [f"attribute {i}" for i in range(num_attributes)])
    if num_attributes == 1:
        return [f"{names[0]} off", f"{names[0]} on"]
    return names[:num_attributes]


def target_ids(attributes) -> np.ndarray:
    """int ids of attribute vectors for colouring: the value for A = 1, else the argmax."""
    attributes = np.asarray(attributes)
    if attributes.shape[-1] == 1:
        return np.round(attributes[:, 0]).astype(np.int32)
    return attributes.argmax(-1).astype(np.int32)


def manipulate(model, images, attributes, targets, **options):
    """``model.manipulate`` of ``images`` (with source ``attributes``) to ``targets`` (N, A)."""
    parameters = [p for p in inspect.signature(model.manipulate).parameters
                  if p not in ("self",)]
    if len(parameters) > 1 and parameters[1] == "target_attributes":  # CSVAE
        return to_numpy(model.manipulate(images, targets, **options))
    return to_numpy(model.manipulate(images, attributes, targets, **options))


def accepts(method, name: str) -> bool:
    """True if ``method`` takes a keyword ``name`` (e.g. CondVAE's ``scale``)."""
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def pick_examples(attributes, count: int) -> np.ndarray:
    """Indices of ``count`` examples: the first example of each distinct label pattern (in
    order of `target_ids`, then of first appearance), then the next unused examples."""
    attributes = np.asarray(attributes)
    ids = target_ids(attributes)
    chosen: List[int] = []
    for label in np.unique(ids):
        if len(chosen) == count:
            break
        chosen.append(int(np.flatnonzero(ids == label)[0]))
    for index in range(len(attributes)):
        if len(chosen) >= count:
            break
        if index not in chosen:
            chosen.append(index)
    return np.asarray(sorted(chosen[:count]), dtype=np.int64)


def fit_statistics(model, images, attributes) -> bool:
    """``model.fit_attribute_statistics(images, attributes)`` if the model has it; returns
    whether it did (VAE and CSVAE need it for ``manipulate``)."""
    if not hasattr(model, "fit_attribute_statistics"):
        return False
    model.fit_attribute_statistics(images, attributes)
    return True


def manipulation_tiles(model, images, attributes, targets) -> np.ndarray:
    """(rows, 1 + T, H, W, C): each row an input image then it switched to every target."""
    images = as_nhwc(images)
    attributes = np.asarray(attributes, np.float32)
    targets = np.asarray(targets, np.float32)
    rows, num_targets = len(images), len(targets)
    switched = as_nhwc(manipulate(model, np.repeat(images, num_targets, axis=0),
                                  np.repeat(attributes, num_targets, axis=0),
                                  np.tile(targets, (rows, 1))))
    tiles = np.empty((rows, 1 + num_targets) + images.shape[1:], np.float32)
    tiles[:, 0] = images
    tiles[:, 1:] = switched.reshape(rows, num_targets, *images.shape[1:])
    return tiles


def accuracy(model, images, attributes, batch_size: int = 256) -> Optional[float]:
    """Mean per-attribute accuracy of ``model.predict_attributes`` (probabilities > 0.5), for
    models that predict attributes; None for the others (no number is invented)."""
    if not hasattr(model, "predict_attributes"):
        return None
    predicted = np.concatenate([to_numpy(model.predict_attributes(images[i:i + batch_size]))
                                for i in range(0, len(images), batch_size)])
    return float(np.mean((predicted > 0.5) == (np.asarray(attributes) > 0.5)))
