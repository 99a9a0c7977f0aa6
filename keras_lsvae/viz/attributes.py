"""Helpers for attribute models (paper B: CSVAE, VAE, CondVAE, CondVAE-info), shared by the
training callbacks, ``metrics.json`` and ``scripts/visualize.py``.

Written against the capabilities a model declares (:mod:`keras_lsvae.models.capabilities`):
``label_kind == "attributes"``, ``num_classes`` = A, ``generate(attributes, seed)``
(``Generates``), ``manipulate_attributes`` (``ManipulatesAttributes``), and where declared
``fit_attribute_statistics`` (``FitsAttributeStatistics``: VAE, CSVAE), ``predict_attributes``
(``PredictsAttributes``), ``manipulate(..., scale=p)`` (``ScalesManipulation``) and CSVAE's W
grids (``WGrids``).

* `attribute_targets(A)`: the target attribute vectors a grid shows, one per column/row: for
  A = 1 the attribute off and on ([0], [1]); for A >= 2 the A one-hot vectors (one class of
  one-hot class data; one attribute alone for non-exclusive attributes).
* `manipulate(model, images, attributes, targets)`: paper B §4.3's G_ij, the model's
  ``manipulate_attributes`` (CSVAE's ignores the source attributes).
* `pick_examples(attributes, count)`: fixed, deterministic test examples covering the label
  patterns (one per class first), the rows of the manipulation grids.
* `manipulation_tiles(...)`: rows = examples, columns = the input then each target.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from keras_lsvae.models import capabilities as caps
from keras_lsvae.viz.grid import as_nhwc, to_numpy


def is_attribute_model(model) -> bool:
    """True for models that take (N, A) attribute vectors (paper B's), False for class models."""
    return model.label_kind == "attributes"


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


def manipulate(model, images, attributes, targets):
    """G_ij of ``images`` (with source ``attributes``) to ``targets`` (N, A), as numpy: the
    model's ``manipulate_attributes`` (``ManipulatesAttributes``)."""
    return to_numpy(model.manipulate_attributes(images, attributes, targets))


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
    """``model.fit_attribute_statistics(images, attributes)`` if the model declares
    ``FitsAttributeStatistics``; returns whether it did (VAE and CSVAE need it for
    ``manipulate``)."""
    if not caps.supports(model, caps.FitsAttributeStatistics):
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
    models that declare ``PredictsAttributes``; None for the others (no number is invented)."""
    if not caps.supports(model, caps.PredictsAttributes):
        return None
    predicted = np.concatenate([to_numpy(model.predict_attributes(images[i:i + batch_size]))
                                for i in range(0, len(images), batch_size)])
    return float(np.mean((predicted > 0.5) == (np.asarray(attributes) > 0.5)))


# ------------------------------------------------------------------------ paper B's figures
#: p values of CondVAE / CondVAE-info manipulation grids: "chosen uniformly in [0, 3]" (Fig. 3)
SCALE_RANGE = (0.0, 3.0)
#: styles per attribute in the Fig. 5 analogue (the paper shows three)
FIG5_STYLES = 3


def _tile_grid(tiles):
    from keras_lsvae.viz.figures import PAD, PAD_VALUE
    from keras_lsvae.viz.grid import image_grid

    rows, cols = tiles.shape[:2]
    return image_grid(tiles.reshape(rows * cols, *tiles.shape[2:]), nrow=cols, padding=PAD,
                      pad_value=PAD_VALUE)


def fig_samples(model, path, per_target=8, seed=0, names=None):
    """Samples ``generate`` draws for each `attribute_targets` row (rows), ``per_target``
    columns (fixed seed)."""
    from keras_lsvae.viz.figures import _save_tiles, _tiles

    targets = attribute_targets(model.num_classes)
    images = model.generate(np.repeat(targets, per_target, axis=0), seed=seed)
    return _save_tiles(path, _tiles(images, len(targets), per_target),
                       title=f"Generated samples per target attributes (seed {seed})",
                       row_labels=target_names(model.num_classes, names))


def fig_manipulation(model, images, attributes, path, names=None):
    """Rows = test images; columns = the input, then G(x) to every `attribute_targets` row
    (paper B §4.3, each model's own G_ij)."""
    from keras_lsvae.viz.figures import _save_tiles

    tiles = manipulation_tiles(model, images, attributes,
                               attribute_targets(model.num_classes))
    return _save_tiles(path, tiles, title=f"{type(model).__name__}: input, then switched to "
                       "each target (§4.3)", row_labels=[f"test {i}" for i in range(len(images))],
                       col_labels=["input"] + target_names(model.num_classes, names))


def fig_scaled_manipulation(model, image, attributes, path, targets, scales, names=None):
    """CondVAE / CondVAE-info (Fig. 3b, 3c): one test image, one row per target attribute
    vector, columns = the input then decode(μ(x[, y]), p · target) for each p in ``scales``."""
    from keras_lsvae.viz.figures import _save_tiles

    image = np.asarray(image, np.float32)[None]  # one (H, W, C) image
    attributes = np.asarray(attributes, np.float32).reshape(1, -1)
    targets = np.asarray(targets, np.float32)
    rows = []
    for target in targets:
        switched = [as_nhwc(model.manipulate(image, attributes, target[None], scale=float(p)))
                    for p in scales]
        rows.append(np.concatenate([image] + switched))
    tiles = np.stack(rows)
    return _save_tiles(path, tiles, title=f"{type(model).__name__}: decode(μ(x), p·y), "
                       f"p in [{scales[0]:g}, {scales[-1]:g}] (Fig. 3)",
                       row_labels=list(names or [f"target {i}" for i in range(len(targets))]),
                       col_labels=["input"] + [f"p={p:.2g}" for p in scales])


def w_subspace(codes, attribute, w_dim):
    """Columns of W_attribute in (N, A·w_dim) codes."""
    return np.asarray(codes)[:, attribute * w_dim:(attribute + 1) * w_dim]


def grid_layout(points) -> np.ndarray:
    """(num, num) indices into ``points`` (num² points of a 2-D grid): tile (r, c) shows the
    point with the c-th smallest first coordinate and the r-th largest second one, so the tiles
    sit where their points are in a scatter plot. Points that are not an axis-aligned grid:
    their own order, ``num`` per row."""
    points = np.asarray(points)
    num = int(round(np.sqrt(len(points))))
    xs, ys = np.unique(points[:, 0]), np.unique(points[:, 1])
    layout = np.arange(num * num).reshape(num, num)
    if len(xs) != num or len(ys) != num:
        return layout
    for k, (x, y) in enumerate(points[:, :2]):
        layout[num - 1 - np.searchsorted(ys, y), np.searchsorted(xs, x)] = k
    if len(np.unique(layout)) != num * num:  # repeated points: not a grid
        return np.arange(num * num).reshape(num, num)
    return layout


def fig_w_grid(model, image, attribute, points, test_w, test_labels, path, name=None):
    """CSVAE Fig. 3/4 analogue for one attribute i: the image decoded with W_i at each grid
    point (``manipulate_grid``), and beside it the sampling grid: the points over a scatter of
    the test set's posterior means of W_i coloured by y_i. The bare tile grid is written to
    ``<stem>_grid.png``; its layout follows the scatter (`grid_layout`): columns = w_i,1
    ascending, rows top to bottom = w_i,2 descending (points off an axis-aligned grid, e.g.
    principal directions, keep their order, num per row)."""
    import matplotlib.pyplot as plt

    from keras_lsvae.viz.figures import grid_path
    from keras_lsvae.viz.grid import save_array_png, save_figure

    points = np.asarray(points, np.float32)
    num = int(round(np.sqrt(len(points))))
    if num * num != len(points):
        raise ValueError(f"points must form a square grid, got {len(points)}")
    image = np.asarray(image, np.float32)[None]  # one (H, W, C) image
    decoded = to_numpy(model.manipulate_grid(image, attribute, points)).reshape(
        len(points), *image.shape[1:])
    tiles = decoded[grid_layout(points)]
    grid = _tile_grid(tiles)
    save_array_png(grid_path(path), grid)
    label = name or f"attribute {attribute}"
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.2))
    shown = np.clip(grid, 0, 1)
    left.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", vmin=0, vmax=1,
                interpolation="nearest")
    left.set_axis_off()
    left.set_title(f"G(x, p): W_{attribute} ({label}) on the grid", fontsize=9)
    test_w = np.asarray(test_w)
    test_labels = np.asarray(test_labels).reshape(-1)
    for value, colour in ((0, "tab:blue"), (1, "tab:orange")):
        members = test_labels == value
        right.scatter(test_w[members, 0], test_w[members, 1], s=4, alpha=0.4, color=colour,
                      label=f"{label} = {value} (test μ_φ2)")
    right.scatter(points[:, 0], points[:, 1], s=14, marker="x", color="black",
                  label="grid points p")
    right.set_xlabel(f"w_{attribute},1")
    right.set_ylabel(f"w_{attribute},2")
    right.set_title("Sampling grid in W_i (paper B Fig. 3d)", fontsize=9)
    right.legend(fontsize=7, markerscale=2)
    return save_figure(fig, path)


def style_points(test_w_i, test_labels_i, count=FIG5_STYLES):
    """``count`` representative points of W_i: posterior means of positive test examples at
    evenly spaced quantiles of their first principal coordinate (distinct styles)."""
    positives = np.asarray(test_w_i)[np.asarray(test_labels_i).reshape(-1) == 1]
    if len(positives) == 0:
        raise ValueError("no test example has the attribute")
    centred = positives - positives.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    order = np.argsort(centred @ vt[0])
    picks = order[np.round(np.linspace(0.1, 0.9, count) * (len(order) - 1)).astype(int)]
    return positives[picks]


def fig_attribute_transfer(model, images, attributes, styles, off_points, pair, path,
                           names=None):
    """CSVAE Fig. 5 analogue (A >= 2): rows = images; columns = input, reconstruction, then the
    Cartesian product of the styles of attributes ``pair = (i, j)`` (``styles[i]`` (S, w_dim)),
    every other subspace at its y = 0 point ``off_points`` (A, w_dim)."""
    from keras_lsvae.viz.figures import _save_tiles

    images = as_nhwc(images)
    attributes = np.asarray(attributes, np.float32)
    i, j = pair
    num_attributes, w_dim = np.shape(off_points)
    combos, labels = [], []
    for a, style_i in enumerate(styles[i]):
        for b, style_j in enumerate(styles[j]):
            w = np.array(off_points, np.float32)
            w[i], w[j] = style_i, style_j
            combos.append(w.reshape(-1))
            labels.append(f"{a + 1}×{b + 1}")
    combos = np.asarray(combos, np.float32)
    targets = np.zeros((1, num_attributes), np.float32)
    targets[0, [i, j]] = 1.0
    rows = []
    for image, attribute in zip(images, attributes):
        repeated = np.repeat(image[None], len(combos), axis=0)
        switched = as_nhwc(model.manipulate(repeated, np.repeat(targets, len(combos), axis=0),
                                            w=combos))
        recon = as_nhwc(model.reconstruct(image[None], attribute[None]))
        rows.append(np.concatenate([image[None], recon, switched]))
    names = list(names or [f"attribute {k}" for k in range(num_attributes)])
    return _save_tiles(path, np.stack(rows),
                       title=f"Attribute transfer: {names[i]} style × {names[j]} style "
                       "(paper B Fig. 5)", row_labels=[f"test {k}" for k in range(len(images))],
                       col_labels=["input", "recon."] + labels)


def fig_latent_projections(points, reconstruction, codes, labels, path, name="swiss roll"):
    """Paper B Fig. 2 analogue for point data: the data and its reconstruction (3-D), then
    the latent projections (z1, z2), (w1, w2) and every (z_i, w_j), coloured by the label.
    ``codes``: {"z": (N, >=2), "w": (N, >=2) or absent}."""
    import matplotlib.pyplot as plt

    from keras_lsvae.viz.grid import save_figure

    labels = np.asarray(labels).reshape(-1)
    z = np.asarray(codes["z"])
    w = np.asarray(codes["w"]) if codes.get("w") is not None else None
    pairs = [("z1", z[:, 0], "z2", z[:, 1])] if z.shape[1] >= 2 else []
    if w is not None:
        if w.shape[1] >= 2:
            pairs.append(("w1", w[:, 0], "w2", w[:, 1]))
        for a in range(min(2, z.shape[1])):
            for b in range(min(2, w.shape[1])):
                pairs.append((f"z{a + 1}", z[:, a], f"w{b + 1}", w[:, b]))
    panels = 2 + len(pairs)
    cols = min(4, panels)
    rows = int(np.ceil(panels / cols))
    fig = plt.figure(figsize=(3.2 * cols, 3.0 * rows))
    colours = np.where(labels == 1, "tab:orange", "tab:blue")
    for k, (title, data) in enumerate(((name, points), ("reconstruction", reconstruction))):
        data = np.asarray(data)
        if data.shape[1] >= 3:
            ax = fig.add_subplot(rows, cols, k + 1, projection="3d")
            ax.scatter(data[:, 0], data[:, 1], data[:, 2], s=2, c=colours)
        else:
            ax = fig.add_subplot(rows, cols, k + 1)
            ax.scatter(data[:, 0], data[:, 1], s=2, c=colours)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=6)
    for k, (xname, x, yname, y) in enumerate(pairs):
        ax = fig.add_subplot(rows, cols, k + 3)
        ax.scatter(x, y, s=2, c=colours, alpha=0.5)
        ax.set_title(f"({xname}, {yname})", fontsize=9)
        ax.tick_params(labelsize=6)
    fig.suptitle("Data, reconstruction and latent projections coloured by label "
                 "(orange = 1; paper B Fig. 2)", fontsize=10)
    return save_figure(fig, path)
