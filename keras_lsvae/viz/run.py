"""Every paper-A (Lr-LiVAE, CVPR 2019) figure for one finished training run.

``visualize_run(workdir)`` reads what :func:`keras_lsvae.training.train` leaves in ``workdir``
(``model.keras``, ``config.json`` and, for point data, ``points/epoch_XXXX.npz``), loads the
run's test split and writes, into ``workdir/figures`` (or ``out_dir``):

==================  ========================  ==================================================
name                file                      content
==================  ========================  ==================================================
fig2                fig2_toy_points.png       point data only: generated points at a few epochs
                                              (evenly spread, last one included) vs. the real
                                              test points
fig3                fig3_samples.png          ``num_steps`` samples per class (up to
                                              ``max_classes`` classes, evenly spread)
fig4a / fig4b       fig4a_vary_zs.png /       z_s resp. z_u interpolated (§4.3); 3 classes
                    fig4b_vary_zu.png         evenly spread over the class ids (the paper's
                                              Fig. 4 shows 3 rows), ``num_steps`` columns
fig5                fig5_traverse.png         the 3 z_u dimensions whose traversal changes the
                                              output most (the paper found 3 meaningful ones),
                                              one row per (Fig. 4 class, dimension), values
                                              evenly spaced in [-2, 2]
fig6                fig6_swap.png             one seeded test image per class gives z_s (first
                                              column), another one per class gives z_u (first
                                              row); cell (i, j) decodes (z_s of i, z_u of j)
fig6_swap_unseen    fig6_swap_unseen.png      semi-supervised runs (``unlabeled_classes`` in
                                              config.json) only: as fig6, but the z_s images come
                                              from the classes never labeled in training (Fig. 6)
fig7                fig7_inpainting.png       §4.5's three masks on ``num_steps`` test images
==================  ========================  ==================================================

Image figures also have their exact tile grid next to them (``<stem>_grid.png``, see
:mod:`keras_lsvae.viz.figures`). ``index.json`` in the output directory lists the figures
(``{"figures": {name: file name}, "grids": {...}, ...}``) together with the choices made (classes
shown, ranked z_u dimensions and their measured change), so a figure can be traced back.

Point data sets (toy2d, swiss_roll) get fig2 only: the other figures are image grids. A class
model gets the figures its class declares the capabilities for
(:mod:`keras_lsvae.models.capabilities`): fig3 ``Generates``, fig4 ``Interpolates``, fig5
``Traverses``, fig6 ``Swaps``, fig7 ``Inpaints`` without labels (Lr-LiVAE has them all).

Attribute models (paper B, Klys et al. NeurIPS 2018: ``csvae``, ``vae``, ``condvae``,
``condvae_info``; ``label_kind == "attributes"``) get paper B's figures instead
(:func:`visualize_attribute_run`; class data are one-hot attributes, targets are
`keras_lsvae.viz.attributes.attribute_targets`: the attribute off/on for A = 1, else one-hot):

=====================  =========================  ===========================================
name                   file                       content
=====================  =========================  ===========================================
fig2                   fig2_toy_points.png        point data: generated points per epoch
latents                latents.png                point data: Fig. 2 analogue, the data and
                                                  its reconstruction, projections (z1, z2),
                                                  (w1, w2), (z_i, w_j) coloured by the label
samples                samples.png                ``num_steps`` samples per target (rows)
manipulation           manipulation.png           4 test images (rows): input, then switched
                                                  to every target with the model's G_ij (§4.3)
fig3_w_grid_<i>        fig3_w_grid_<i>.png        CSVAE, per attribute i (up to
                                                  ``max_classes``): one test image (y_i = 0)
                                                  decoded with W_i at ``num_steps`` x
                                                  ``num_steps`` points of ``w_grid`` (w_dim = 2;
                                                  else ``w_principal_directions``), tiles laid
                                                  out as the grid, beside the sampling grid
                                                  over the test posterior means of W_i
                                                  coloured by y_i (Fig. 3/4 with 3d)
fig5_transfer          fig5_attribute_transfer    CSVAE, A >= 2: 3 test images (rows): input,
                       .png                       reconstruction, the 3 x 3 Cartesian product
                                                  of styles of attributes 0 and 1 (Fig. 5)
fig3_scaled            fig3_scaled.png            CondVAE / CondVAE-info: one test image, one
                                                  row per target (up to ``max_classes``),
                                                  ``num_steps`` values of p in [0, 3] (Fig. 3)
=====================  =========================  ===========================================
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from keras_lsvae import io
from keras_lsvae.models import capabilities as caps
from keras_lsvae.viz import attributes as attr
from keras_lsvae.viz import figures
from keras_lsvae.viz.grid import to_numpy

logger = logging.getLogger(__name__)

#: how many classes Fig. 4 (and therefore Fig. 5) shows: the paper's Fig. 4 has 3 rows
FIG4_CLASSES = 3
#: how many z_u dimensions Fig. 5 shows: the paper found 3 meaningful ones
FIG5_DIMS = 3
#: the z_u value whose ± decodings rank dimensions for Fig. 5, and the traversal's range
TRAVERSE_RANGE = 2.0
#: how many epochs Fig. 2 shows (evenly spread, the last included)
FIG2_EPOCHS = 4
#: test examples kept in memory: enough for one image per class, bounded for large sets
MAX_TEST_EXAMPLES = 5000

FIGURE_FILES = {
    "fig2": "fig2_toy_points.png",
    "fig3": "fig3_samples.png",
    "fig4a": "fig4a_vary_zs.png",
    "fig4b": "fig4b_vary_zu.png",
    "fig5": "fig5_traverse.png",
    "fig6": "fig6_swap.png",
    "fig6_swap_unseen": "fig6_swap_unseen.png",
    "fig7": "fig7_inpainting.png",
    # paper B (attribute models); fig3_w_grid_<i> -> fig3_w_grid_<i>.png
    "latents": "latents.png",
    "samples": "samples.png",
    "manipulation": "manipulation.png",
    "fig5_transfer": "fig5_attribute_transfer.png",
    "fig3_scaled": "fig3_scaled.png",
}


# --------------------------------------------------------------------------- loading


def load_run(workdir: str):
    """``(model, config dict)`` of a finished run; FileNotFoundError naming what is missing."""
    model_path = os.path.join(workdir, "model.keras")
    config_path = os.path.join(workdir, "config.json")
    for path in (model_path, config_path):
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{path} not found: visualize_run needs a finished training run "
                f"(scripts/train.py writes model.keras and config.json into its --workdir)")
    with open(config_path) as f:
        config = json.load(f)
    from keras_lsvae.evaluation import load_model

    # compile=False: figures need no optimizer state, and restoring 7 optimizers is wasted work.
    return load_model(model_path, compile=False), config


def _class_labels(labels, meta) -> np.ndarray:
    """Class ids as the model sees them: a single binary attribute is used as 2 classes."""
    from keras_lsvae.data import single_attribute_as_class

    labels = np.asarray(labels)
    if single_attribute_as_class(meta):
        return np.round(labels[:, 0]).astype(np.int32)
    return labels.astype(np.int32).reshape(-1)


def load_test_arrays(dataset: str, config: dict, classes=None,
                     max_examples: int = MAX_TEST_EXAMPLES):
    """Test split (or the last split) of ``dataset`` with the run's image size and data dir."""
    from keras_lsvae import data

    meta = data.info(dataset, data_dir=config.get("data_dir"),
                     image_size=config.get("image_size"))
    split = "test" if "test" in meta.splits else meta.splits[-1]
    images, labels = data.load_arrays(dataset, split, data_dir=config.get("data_dir"),
                                      image_size=config.get("image_size"),
                                      classes=classes, max_examples=max_examples)
    return images, _class_labels(labels, meta)


# --------------------------------------------------------------------------- choices


def spread(items: Sequence[int], count: int) -> List[int]:
    """Up to ``count`` items evenly spread over ``items`` (first and last included)."""
    items = list(items)
    if len(items) <= count:
        return items
    positions = np.round(np.linspace(0, len(items) - 1, count)).astype(int)
    return [items[p] for p in positions]


def one_per_class(labels: np.ndarray, classes: Sequence[int], rng: np.random.Generator,
                  exclude: Sequence[int] = ()) -> Dict[int, int]:
    """{class: index of a randomly chosen example of that class}, avoiding ``exclude`` where the
    class has another example (so fig6's z_s and z_u images differ). Absent classes are left out.
    """
    chosen = {}
    excluded = set(int(i) for i in exclude)
    for class_id in classes:
        members = np.flatnonzero(labels == class_id)
        preferred = [i for i in members if int(i) not in excluded]
        pool = preferred or list(members)
        if pool:
            chosen[int(class_id)] = int(rng.choice(pool))
    return chosen


def rank_zu_dims(model, classes: Sequence[int], seed: int = 0, per_class: int = 4,
                 value: float = TRAVERSE_RANGE):
    """z_u dimensions ordered by how much the output changes when that dimension alone goes
    from ``-value`` to ``+value``: mean |decode(z_u[d] = +v) - decode(z_u[d] = -v)| over
    ``per_class`` prior samples (z_s ~ N(μ_c, σ_c), z_u ~ N(0, I)) of each class.

    Returns ``(dims sorted by decreasing change, change per dimension (zu_dim,))``.
    """
    labels = np.repeat(np.asarray(list(classes), np.int32), per_class)
    z_s, z_u = (to_numpy(t) for t in model.sample_latents(labels, seed=seed))
    num, zu_dim = z_u.shape
    # One decode batch for all dims and both signs: (zu_dim, 2, N) codes.
    z_u_moved = np.broadcast_to(z_u, (zu_dim, 2, num, zu_dim)).copy()
    for dim in range(zu_dim):
        z_u_moved[dim, 0, :, dim] = value
        z_u_moved[dim, 1, :, dim] = -value
    z_s_tiled = np.broadcast_to(z_s, (zu_dim, 2) + z_s.shape).reshape(-1, z_s.shape[-1])
    decoded = to_numpy(model.decode(z_s_tiled, z_u_moved.reshape(-1, zu_dim)))
    decoded = decoded.reshape(zu_dim, 2, num, -1)
    change = np.abs(decoded[:, 0] - decoded[:, 1]).mean(axis=(1, 2))
    # Stable sort so equal changes keep the lower dimension first (deterministic figures).
    order = np.argsort(-change, kind="stable")
    return [int(d) for d in order], change


def _points_by_epoch(workdir: str, model, config: dict, seed: int, num_epochs: int):
    """``{epoch: (points, labels)}`` from ``points/epoch_XXXX.npz``: ``num_epochs`` evenly spread
    over the saved epochs, the last one included. A run without those files (trained before the
    ToyPoints callback existed) falls back to the final model's samples at its last epoch."""
    files = {}
    for path in glob.glob(os.path.join(workdir, "points", "epoch_*.npz")):
        match = re.fullmatch(r"epoch_(\d+)\.npz", os.path.basename(path))
        if match:
            files[int(match.group(1))] = path
    if not files:
        logger.warning("%s has no points/epoch_*.npz; fig2 shows the final model only", workdir)
        from keras_lsvae.training.callbacks import sample_labels

        requested, labels = sample_labels(model, 300)
        last_epoch = int(config.get("epochs", 0)) + int(config.get("finetune_epochs", 0) or 0)
        return {last_epoch: (to_numpy(model.generate(requested, seed=seed)), labels)}
    shown = {}
    for epoch in spread(sorted(files), num_epochs):
        with np.load(files[epoch]) as saved:
            shown[epoch] = (saved["points"], saved["labels"])
    return shown


# --------------------------------------------------------------------------- the figures


def visualize_run(workdir: str, out_dir: Optional[str] = None, seed: int = 0,
                  num_steps: int = 8, max_classes: int = 10) -> Dict[str, str]:
    """Write every paper-A figure of the run in ``workdir`` (module docstring for the list).

    Args:
        workdir: a finished training run (``model.keras`` and ``config.json``).
        out_dir: where to write; default ``workdir/figures``.
        seed: every random choice (samples, latent draws, which test images) derives from it.
        num_steps: columns of Fig. 3 and Fig. 4, values of the Fig. 5 traversal, images of Fig. 7.
        max_classes: at most this many classes (evenly spread over the ids) in Fig. 3 and Fig. 6.

    Returns:
        ``{figure name: path of its PNG}``; also written as ``out_dir/index.json``.
    """
    workdir = os.fspath(workdir)
    out_dir = os.fspath(out_dir) if out_dir is not None else os.path.join(workdir, "figures")
    model, config = load_run(workdir)
    os.makedirs(out_dir, exist_ok=True)
    paths: Dict[str, str] = {}
    details: Dict[str, object] = {"workdir": os.path.abspath(workdir), "seed": seed,
                                  "dataset": config.get("dataset")}

    def target(name):
        return os.path.join(out_dir, FIGURE_FILES[name])

    if attr.is_attribute_model(model):
        return visualize_attribute_run(model, config, workdir, out_dir, paths, details, seed,
                                       num_steps, max_classes)
    test_images, test_labels = load_test_arrays(config["dataset"], config,
                                                classes=config.get("classes"))
    if not model.is_image:
        points = _points_by_epoch(workdir, model, config, seed, FIG2_EPOCHS)
        paths["fig2"] = figures.fig2_toy_points(points, test_images, test_labels, target("fig2"))
        details["fig2_epochs"] = sorted(int(e) for e in points)
        return _write_index(out_dir, paths, details)

    all_classes = list(range(model.num_classes))
    shown_classes = spread(all_classes, max_classes)
    row_classes = spread(all_classes, FIG4_CLASSES)
    details.update(fig3_classes=shown_classes, fig4_classes=row_classes)

    if caps.supports(model, caps.Generates):
        paths["fig3"] = figures.fig3_samples_per_class(model, target("fig3"),
                                                       per_class=num_steps, seed=seed,
                                                       classes=shown_classes)
    if caps.supports(model, caps.Interpolates):
        paths["fig4a"] = figures.fig4_vary_zs(model, target("fig4a"), row_classes, num_steps,
                                              seed)
        paths["fig4b"] = figures.fig4_vary_zu(model, target("fig4b"), row_classes, num_steps,
                                              seed)
    if caps.supports(model, caps.Traverses):
        ranked_dims, change = rank_zu_dims(model, row_classes, seed=seed)
        top_dims = ranked_dims[:FIG5_DIMS]
        values = np.linspace(-TRAVERSE_RANGE, TRAVERSE_RANGE, num_steps).tolist()
        paths["fig5"] = figures.fig5_traverse(model, target("fig5"), top_dims, values,
                                              label=row_classes, seed=seed)
        details.update(fig5_dims=top_dims,
                       zu_dim_change={str(d): float(change[d]) for d in ranked_dims})
    if caps.supports(model, caps.Swaps):
        _swap_figures(model, config, test_images, test_labels, shown_classes, max_classes,
                      seed, target, paths, details)
    if caps.supports(model, caps.Inpaints) and not model.inpaint_uses_labels:
        rng = np.random.default_rng(seed + 3)
        inpaint_indices = np.sort(rng.choice(len(test_images),
                                             min(num_steps, len(test_images)), replace=False))
        paths["fig7"] = figures.fig7_inpainting(model, test_images[inpaint_indices],
                                                target("fig7"))
        details["fig7_test_indices"] = [int(i) for i in inpaint_indices]
    # The figures this model cannot draw, and why (scripts/visualize.py prints them).
    details["skipped"] = {
        name: f"{type(model).__name__} does not declare {capability.__name__}"
        for name, capability in (("fig3", caps.Generates), ("fig4a", caps.Interpolates),
                                 ("fig4b", caps.Interpolates), ("fig5", caps.Traverses),
                                 ("fig6", caps.Swaps), ("fig7", caps.Inpaints))
        if name not in paths}
    if "fig7" in details["skipped"] and caps.supports(model, caps.Inpaints):
        details["skipped"]["fig7"] = (f"{type(model).__name__}'s inpainting needs the true "
                                      "labels (paper A's Fig. 7 uses none)")
    return _write_index(out_dir, paths, details)


def _swap_figures(model, config, test_images, test_labels, shown_classes, max_classes, seed,
                  target, paths, details):
    """fig6 and, for semi-supervised runs, fig6_swap_unseen (module docstring)."""

    # Separate generators per figure, so adding the unseen variant never changes fig6 / fig7.
    zs_choice = one_per_class(test_labels, shown_classes, np.random.default_rng(seed))
    zu_choice = one_per_class(test_labels, shown_classes, np.random.default_rng(seed + 1),
                              exclude=list(zs_choice.values()))
    zs_images = test_images[list(zs_choice.values())]
    zu_images = test_images[list(zu_choice.values())]
    paths["fig6"] = figures.fig6_swap_grid(model, zs_images, zu_images, target("fig6"))
    details.update(fig6_zs_classes=list(zs_choice), fig6_zu_classes=list(zu_choice),
                   fig6_zs_test_indices=list(zs_choice.values()),
                   fig6_zu_test_indices=list(zu_choice.values()))

    unlabeled_classes = config.get("unlabeled_classes")
    if unlabeled_classes:
        # The unlabeled set may be another data set than the labeled one (same image shape).
        unseen_dataset = config.get("unlabeled_dataset") or config["dataset"]
        unseen_images, unseen_labels = load_test_arrays(unseen_dataset, config,
                                                        classes=unlabeled_classes)
        unseen_choice = one_per_class(unseen_labels,
                                      spread(sorted(unlabeled_classes), max_classes),
                                      np.random.default_rng(seed + 2))
        paths["fig6_swap_unseen"] = figures.fig6_swap_grid(
            model, unseen_images[list(unseen_choice.values())], zu_images,
            target("fig6_swap_unseen"))
        details.update(fig6_unseen_dataset=unseen_dataset,
                       fig6_unseen_zs_classes=list(unseen_choice))


def load_test_attributes(config: dict, num_attributes: int,
                         max_examples: int = MAX_TEST_EXAMPLES):
    """``(test images, attributes (N, A), attribute names)`` as the run's attribute model saw
    them (class data one-hot over the kept classes)."""
    from keras_lsvae import data

    dataset = config["dataset"]
    meta = data.info(dataset, data_dir=config.get("data_dir"),
                     image_size=config.get("image_size"))
    split = "test" if "test" in meta.splits else meta.splits[-1]
    images, labels = data.load_arrays(dataset, split, data_dir=config.get("data_dir"),
                                      image_size=config.get("image_size"),
                                      classes=config.get("classes"), max_examples=max_examples)
    depth = num_attributes if meta.label_kind == "class" else None
    return (images, data.as_attributes(labels, meta, depth),
            data.attribute_names(meta, num_attributes))


#: test images (rows) of the manipulation figure, and of Fig. 5
MANIPULATION_ROWS = 4
FIG5_ROWS = 3


def visualize_attribute_run(model, config, workdir, out_dir, paths, details, seed=0,
                            num_steps=8, max_classes=10):
    """Paper B's figures of an attribute model's run (module docstring)."""
    def target(name, file_name=None):
        return os.path.join(out_dir, file_name or FIGURE_FILES.get(name, f"{name}.png"))

    images, attributes, names = load_test_attributes(config, model.num_classes)
    ids = attr.target_ids(attributes)
    details.update(model=type(model).__name__, attribute_names=list(names))
    if not model.is_image:
        points = _points_by_epoch(workdir, model, config, seed, FIG2_EPOCHS)
        paths["fig2"] = figures.fig2_toy_points(points, images, ids, target("fig2"))
        details["fig2_epochs"] = sorted(int(e) for e in points)
        encoded = model.encode(images, attributes)
        codes = {"z": to_numpy(encoded["z_mean"]),
                 "w": to_numpy(encoded["w_mean"]) if "w_mean" in encoded else None}
        reconstruction = to_numpy(model.reconstruct(images, attributes))
        paths["latents"] = attr.fig_latent_projections(
            images, reconstruction, codes, ids, target("latents"),
            name=str(config.get("dataset")))
        return _write_index(out_dir, paths, details)

    paths["samples"] = attr.fig_samples(model, target("samples"), per_target=num_steps,
                                        seed=seed, names=names)
    rows = attr.pick_examples(attributes, MANIPULATION_ROWS)
    paths["manipulation"] = attr.fig_manipulation(model, images[rows], attributes[rows],
                                                  target("manipulation"), names=names)
    details["manipulation_test_indices"] = [int(i) for i in rows]
    shown = spread(list(range(model.num_classes)), max_classes)

    if caps.supports(model, caps.WGrids):  # CSVAE: Fig. 3/4 with the sampling grid (3d)
        w_dim = int(model.w_dim)
        w_means = to_numpy(model.encode(images, attributes)["w_mean"])
        details["w_grid_attributes"], details["w_grid_test_indices"] = [], []
        for i in shown:
            off = np.flatnonzero(attributes[:, i] == 0)
            index = int(off[0]) if off.size else 0
            if w_dim == 2:
                points = to_numpy(model.w_grid(i, num=num_steps))
            else:
                points = to_numpy(model.w_principal_directions(images, attributes, i,
                                                               num=num_steps))
            name = f"fig3_w_grid_{i}"
            paths[name] = attr.fig_w_grid(model, images[index], i, points,
                                          attr.w_subspace(w_means, i, w_dim)[:, :2],
                                          attributes[:, i], target(name), name=names[i])
            details["w_grid_attributes"].append(int(i))
            details["w_grid_test_indices"].append(index)
        if model.num_classes >= 2:
            pair = (0, 1)
            styles, off_points = {}, np.zeros((model.num_classes, w_dim), np.float32)
            for i in range(model.num_classes):
                w_i = attr.w_subspace(w_means, i, w_dim)
                negatives = attributes[:, i] == 0
                off_points[i] = w_i[negatives].mean(0) if negatives.any() else w_i.mean(0)
            for i in pair:
                styles[i] = attr.style_points(attr.w_subspace(w_means, i, w_dim),
                                              attributes[:, i])
            fig5_rows = attr.pick_examples(attributes, FIG5_ROWS)
            paths["fig5_transfer"] = attr.fig_attribute_transfer(
                model, images[fig5_rows], attributes[fig5_rows], styles, off_points, pair,
                target("fig5_transfer"), names=names)
            details.update(fig5_attributes=list(pair),
                           fig5_test_indices=[int(i) for i in fig5_rows])
    elif caps.supports(model, caps.ScalesManipulation):  # CondVAE, CondVAE-info
        scales = np.linspace(*attr.SCALE_RANGE, num_steps).tolist()
        targets = attr.attribute_targets(model.num_classes)
        target_rows = spread(list(range(len(targets))), max_classes)
        index = int(rows[0])
        paths["fig3_scaled"] = attr.fig_scaled_manipulation(
            model, images[index], attributes[index], target("fig3_scaled"),
            targets[target_rows], scales,
            names=[attr.target_names(model.num_classes, names)[t] for t in target_rows])
        details.update(fig3_scaled_test_index=index, fig3_scaled_scales=scales)
    return _write_index(out_dir, paths, details)


def _write_index(out_dir: str, paths: Dict[str, str], details: Dict[str, object]):
    grids = {name: os.path.basename(figures.grid_path(path)) for name, path in paths.items()
             if os.path.exists(figures.grid_path(path))}
    index = {"figures": {name: os.path.basename(path) for name, path in paths.items()},
             "grids": grids, **details}
    io.atomic_write_json(os.path.join(out_dir, "index.json"), index, indent=1)
    return paths


__all__ = ["FIGURE_FILES", "load_run", "load_test_arrays", "load_test_attributes",
           "visualize_attribute_run", "one_per_class", "rank_zu_dims",
           "spread", "visualize_run"]
