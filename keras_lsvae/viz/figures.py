"""Paper A's (Lr-LiVAE, CVPR 2019) figures, drawn from a trained model object.

Written against the model API below (duck-typed; any object providing it works):

* ``num_classes``, ``zs_dim``, ``zu_dim``, ``prior_means()`` (K, zs_dim), ``prior_variances()``;
* ``encode(images) -> {"z_s", "z_u", "z_u_mean", "z_u_log_var"}``, ``decode(z_s, z_u)``;
* ``generate(labels, seed=None)``, ``swap(images_s, images_u)`` (z_s from the first argument, z_u
  from the second), ``inpaint(images, mask)`` (mask 1 = missing pixel);
* ``interpolate_zs(label, num_steps, seed)`` — §4.3 protocol (1): z_u ~ N(0, I) fixed,
  z^(i) = α z_1 + (1 − α) z_2 with z_1, z_2 ~ N(0, I), z_s^(i) = z^(i) ⊙ σ_c + μ_c;
* ``interpolate_zu(label, num_steps, seed)`` — protocol (2): z_s ~ N(μ_c, σ_c) fixed, z_u
  interpolated between two N(0, I) draws;
* ``traverse(label, dims, values, seed)`` — one z_u dimension set to each value in turn.

Every ``fig*`` function writes a labelled matplotlib figure to ``path`` and returns ``path``. Image
figures also write the bare tile grid next to it, ``<path stem>_grid.png``, with one image pixel
per PNG pixel and a 1-px white separator (see :func:`keras_lsvae.viz.grid.image_grid`): that file
is exact and is what tests and papers-style layouts should use; the labelled figure is for
reading.

Figures: Fig. 2 toy points per epoch, Fig. 3 samples per class, Fig. 4a/4b vary z_s / z_u,
Fig. 5 z_u traversals, Fig. 6 z_s × z_u swap grid, Fig. 7 inpainting (§4.5).
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence, Tuple, Union

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_lsvae.masks import make_mask  # noqa: E402
from keras_lsvae.viz.grid import (  # noqa: E402
    as_nhwc,
    image_grid,
    save_array_png,
    save_figure,
    to_numpy,
)

PAD = 1
PAD_VALUE = 1.0
MASK_NAMES = ("right_half", "eyes_band", "bottom_half")


# --------------------------------------------------------------------------- helpers


def grid_path(path: str) -> str:
    """Where the bare tile grid of the figure at ``path`` is written."""
    stem, _ = os.path.splitext(os.fspath(path))
    return stem + "_grid.png"


def _save_tiles(
    path: str,
    tiles: np.ndarray,
    title: str,
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
) -> str:
    """Write tiles (R, C, H, W, Ch) as a labelled figure at ``path`` and a bare grid beside it."""
    rows, cols, height, width, channels = tiles.shape
    grid = image_grid(tiles.reshape(rows * cols, height, width, channels), nrow=cols,
                      padding=PAD, pad_value=PAD_VALUE)
    save_array_png(grid_path(path), grid)

    fig, ax = plt.subplots(figsize=(1.5 + 0.8 * cols, 0.8 + 0.8 * rows))
    shown = np.clip(grid, 0.0, 1.0)
    if channels == 1:
        ax.imshow(shown[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(shown, interpolation="nearest")
    # Tick at the centre of each tile so labels name rows / columns.
    ax.set_yticks([PAD + r * (height + PAD) + (height - 1) / 2 for r in range(rows)])
    ax.set_yticklabels(list(row_labels) if row_labels else [""] * rows, fontsize=8)
    ax.set_xticks([PAD + c * (width + PAD) + (width - 1) / 2 for c in range(cols)])
    ax.set_xticklabels(list(col_labels) if col_labels else [""] * cols, fontsize=7,
                       rotation=45 if col_labels else 0)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def _tiles(images, rows: int, cols: int) -> np.ndarray:
    images = as_nhwc(images)
    if len(images) != rows * cols:
        raise ValueError(f"expected {rows * cols} images for a {rows}x{cols} grid, "
                         f"got {len(images)}")
    return images.reshape(rows, cols, *images.shape[1:])


# --------------------------------------------------------------------------- Fig. 2 (toy data)


def fig2_toy_points(
    points_by_epoch: Mapping[int, Tuple[np.ndarray, np.ndarray]],
    real_points,
    real_labels,
    path: str,
    title: str = "Generated points per epoch (paper A Fig. 2)",
) -> str:
    """Scatter of real data and of generated points at each epoch, one colour per class.

    Args:
        points_by_epoch: ``{epoch: (points (N, D), labels (N,))}``; only the first two
            coordinates are drawn when D > 2.
        real_points, real_labels: the training data, drawn in the first panel.
    """
    real_points = to_numpy(real_points)
    real_labels = to_numpy(real_labels).reshape(-1)
    panels = [("real data", real_points, real_labels)] + [
        (f"epoch {epoch}", to_numpy(points), to_numpy(labels).reshape(-1))
        for epoch, (points, labels) in sorted(points_by_epoch.items())
    ]
    all_points = np.concatenate([p[:, :2] for _, p, _ in panels])
    low, high = all_points.min(axis=0), all_points.max(axis=0)
    margin = 0.05 * np.maximum(high - low, 1e-6)
    class_ids = sorted(set(np.concatenate([lab for _, _, lab in panels]).astype(int).tolist()))
    colours = plt.get_cmap("tab10" if len(class_ids) <= 10 else "tab20")

    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.2), squeeze=False)
    for ax, (name, points, labels) in zip(axes[0], panels):
        for index, class_id in enumerate(class_ids):
            members = labels.astype(int) == class_id
            ax.scatter(points[members, 0], points[members, 1], s=3, alpha=0.6,
                       color=colours(index % colours.N), label=f"class {class_id}")
        ax.set_title(name, fontsize=9)
        # Same limits in every panel so spread can be compared across epochs.
        ax.set_xlim(low[0] - margin[0], high[0] + margin[0])
        ax.set_ylim(low[1] - margin[1], high[1] + margin[1])
        ax.set_aspect("equal", adjustable="box")
        ax.tick_params(labelsize=7)
    axes[0][-1].legend(fontsize=7, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


# --------------------------------------------------------------------------- Fig. 3


def fig3_samples_per_class(
    model, path: str, per_class: int = 10, seed: int = 0,
    classes: Optional[Sequence[int]] = None,
) -> str:
    """One row per class of ``per_class`` samples from ``model.generate`` (paper A Fig. 3)."""
    classes = list(range(model.num_classes)) if classes is None else list(classes)
    labels = np.repeat(np.asarray(classes, dtype=np.int32), per_class)
    images = model.generate(labels, seed=seed)
    return _save_tiles(
        path,
        _tiles(images, len(classes), per_class),
        title=f"Generated samples, one row per class (seed {seed})",
        row_labels=[f"class {c}" for c in classes],
    )


# --------------------------------------------------------------------------- Fig. 4


def _fig4(interpolate, path, classes, num_steps, seed, title):
    """One row per class from ``interpolate(class, num_steps, seed)`` with the same seed per row."""
    rows = [as_nhwc(interpolate(int(c), num_steps, seed)) for c in classes]
    return _save_tiles(
        path,
        _tiles(np.concatenate(rows), len(classes), num_steps),
        title=title,
        row_labels=[f"class {c}" for c in classes],
        col_labels=[f"step {i}" for i in range(num_steps)],
    )


def fig4_vary_zs(model, path: str, classes: Sequence[int], num_steps: int = 8,
                 seed: int = 0) -> str:
    """Fig. 4(a): fixed z_u, z_s = z^(i) ⊙ σ_c + μ_c along an interpolation, one row per class.

    The same ``seed`` is passed for every row, so (given a model that draws z_u, z_1 and z_2 from
    the seed independently of the label) all rows share z_u and each column shares z^(i).
    """
    return _fig4(model.interpolate_zs, path, classes, num_steps, seed,
                 "Fixed z_u, interpolated z^(i) mapped to each class's z_s")


def fig4_vary_zu(model, path: str, classes: Sequence[int], num_steps: int = 8,
                 seed: int = 0) -> str:
    """Fig. 4(b): fixed z_s ~ N(μ_c, σ_c) per row, z_u interpolated between two N(0, I) draws.

    The same ``seed`` for every row makes each column share its z_u (for a model drawing the z_u
    endpoints from the seed independently of the label).
    """
    return _fig4(model.interpolate_zu, path, classes, num_steps, seed,
                 "Fixed z_s per class, interpolated z_u")


# --------------------------------------------------------------------------- Fig. 5


def fig5_traverse(
    model, path: str, dims: Sequence[int], values: Sequence[float],
    label: Union[int, Sequence[int]] = 0, seed: int = 0,
) -> str:
    """Fig. 5: single z_u dimensions traversed; one row per (class, dimension), one column per value.

    ``model.traverse`` is called with one dimension at a time so that the row order never depends
    on how the model orders a multi-dimension traversal.
    """
    labels = [int(label)] if np.ndim(label) == 0 else [int(c) for c in label]
    rows, row_labels = [], []
    for class_id in labels:
        for dim in dims:
            # traverse returns (len(dims), len(values), H, W, C); one dimension -> row 0
            rows.append(as_nhwc(to_numpy(model.traverse(class_id, [int(dim)], list(values),
                                                        seed))[0]))
            row_labels.append(f"class {class_id}, z_u[{dim}]")
    return _save_tiles(
        path,
        _tiles(np.concatenate(rows), len(rows), len(values)),
        title="Fixed z_s, one z_u dimension varied",
        row_labels=row_labels,
        col_labels=[f"{v:+.2g}" for v in values],
    )


# --------------------------------------------------------------------------- Fig. 6


def fig6_swap_grid(model, images_s, images_u, path: str) -> str:
    """Fig. 6: first row = images giving z_u, first column = images giving z_s, inside = swap.

    Cell (i, j) is ``model.swap(images_s[i], images_u[j])``: z_s of row i, z_u of column j.
    """
    images_s, images_u = as_nhwc(images_s), as_nhwc(images_u)
    num_s, num_u = len(images_s), len(images_u)
    swapped = as_nhwc(model.swap(np.repeat(images_s, num_u, axis=0),
                                 np.tile(images_u, (num_s, 1, 1, 1))))
    tiles = np.full((num_s + 1, num_u + 1) + images_s.shape[1:], PAD_VALUE, dtype=np.float32)
    tiles[0, 1:] = images_u
    tiles[1:, 0] = images_s
    tiles[1:, 1:] = swapped.reshape(num_s, num_u, *images_s.shape[1:])
    return _save_tiles(
        path,
        tiles,
        title="Cell (i, j): z_s of row i's first image, z_u of column j's first image",
        row_labels=["z_u →"] + [f"z_s {i}" for i in range(num_s)],
        col_labels=["z_s ↓"] + [f"z_u {j}" for j in range(num_u)],
    )


# --------------------------------------------------------------------------- Fig. 7


def inpainting_mask(name: str, height: int, width: int) -> np.ndarray:
    """(H, W) float32 mask, 1 = missing pixel, for paper A §4.5's corruption patterns.

    Delegates to :func:`keras_lsvae.masks.make_mask` so figures use the same regions as the
    models: ``right_half`` (columns ≥ W/2), ``bottom_half`` (rows ≥ H/2), ``eyes_band`` (the
    central box of rows 25–75 % and columns 20–80 %: eyes, nose and mouth on aligned faces).
    """
    return make_mask(name, height, width)[..., 0]


def fig7_inpainting(
    model,
    images,
    path: str,
    masks: Sequence[Union[str, Tuple[str, np.ndarray]]] = MASK_NAMES,
    fill_value: float = 0.0,
) -> str:
    """Fig. 7: rows = original, then (corrupted, inpainted) for each mask; one column per image.

    The model receives the *corrupted* images (missing pixels set to ``fill_value``) and the
    mask as (N, H, W, 1), so it cannot read the pixels it is asked to fill. Each entry of
    ``masks`` is a name from :data:`MASK_NAMES` or a ``(name, (H, W) array)`` pair.
    """
    images = as_nhwc(images)
    num, height, width, _ = images.shape
    rows, row_labels = [images], ["original"]
    for entry in masks:
        if isinstance(entry, str):
            name, mask = entry, inpainting_mask(entry, height, width)
        else:
            name, mask = entry[0], np.asarray(entry[1], dtype=np.float32)
        mask_batch = np.broadcast_to(mask.reshape(1, height, width, 1), (num, height, width, 1))
        mask_batch = np.ascontiguousarray(mask_batch, dtype=np.float32)
        corrupted = images * (1.0 - mask_batch) + fill_value * mask_batch
        rows += [corrupted, as_nhwc(model.inpaint(corrupted, mask_batch))]
        row_labels += [f"{name}: input", f"{name}: inpainted"]
    return _save_tiles(
        path,
        _tiles(np.concatenate(rows), len(rows), num),
        title="Inpainting: x_inp = M ⊙ x' + (1 − M) ⊙ x",
        row_labels=row_labels,
    )
