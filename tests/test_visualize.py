"""visualize_run and scripts/visualize.py on tiny finished runs (digits 8x8 and toy2d).

One semi-supervised digits run (classes 0-6 labeled, 7-9 unlabeled, one fine-tuning epoch) covers
every image figure including fig6_swap_unseen; a 3-epoch toy2d run covers fig2 from the
``points/`` files the ToyPoints callback writes.
"""

import json
import os
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from keras_lsvae.training import train
from keras_lsvae.viz import grid_path
from keras_lsvae.viz.run import rank_zu_dims, spread, visualize_run
from tests.test_training import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 8  # image side of the tiny digits run
LABELED = tuple(range(7))
UNLABELED = (7, 8, 9)
ZU_DIM = 2  # tiny_config's z_u size: Fig. 5 can show only min(3, 2) dimensions


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("digits_run")
    train(tiny_config(workdir, classes=LABELED, unlabeled_dataset="digits",
                      unlabeled_classes=UNLABELED, finetune_epochs=1))
    return workdir


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("toy_run")
    train(tiny_config(workdir, dataset="toy2d", image_size=None, epochs=3,
                      model_args={"zs_dim": 1, "zu_dim": 1, "n_gm": 1}))
    return workdir


def _grid_shape(path):
    """(height, width) of the bare tile grid written beside the labelled figure at ``path``."""
    grid_file = grid_path(path)
    assert os.path.getsize(grid_file) > 0, grid_file
    return matplotlib.image.imread(grid_file).shape[:2]


def _expected(rows, cols):
    return (rows * (SIZE + 1) + 1, cols * (SIZE + 1) + 1)


def test_image_run_writes_every_figure_with_its_grid_size(image_run, tmp_path):
    out_dir = tmp_path / "figures"
    num_steps, max_classes = 4, 4
    paths = visualize_run(image_run, out_dir=out_dir, seed=3, num_steps=num_steps,
                          max_classes=max_classes)
    assert set(paths) == {"fig3", "fig4a", "fig4b", "fig5", "fig6", "fig6_swap_unseen", "fig7"}
    for name, path in paths.items():
        assert os.path.dirname(path) == str(out_dir)
        assert os.path.getsize(path) > 0, name
    assert os.path.basename(paths["fig6_swap_unseen"]) == "fig6_swap_unseen.png"

    shown = spread(LABELED, max_classes)  # [0, 2, 4, 6]
    assert shown == [0, 2, 4, 6]
    assert _grid_shape(paths["fig3"]) == _expected(len(shown), num_steps)
    assert _grid_shape(paths["fig4a"]) == _expected(3, num_steps)
    assert _grid_shape(paths["fig4b"]) == _expected(3, num_steps)
    assert _grid_shape(paths["fig5"]) == _expected(3 * ZU_DIM, num_steps)
    # Swap grids: +1 row of z_u images, +1 column of z_s images.
    assert _grid_shape(paths["fig6"]) == _expected(len(shown) + 1, len(shown) + 1)
    assert _grid_shape(paths["fig6_swap_unseen"]) == _expected(len(UNLABELED) + 1,
                                                               len(shown) + 1)
    # Fig. 7: the original row, then (input, inpainted) for each of the three masks.
    assert _grid_shape(paths["fig7"]) == _expected(7, num_steps)

    index = json.loads((out_dir / "index.json").read_text())
    assert index["figures"] == {name: os.path.basename(p) for name, p in paths.items()}
    assert set(index["grids"]) == set(paths)
    assert index["fig4_classes"] == [0, 3, 6]
    assert index["fig6_zs_classes"] == shown and index["fig6_zu_classes"] == shown
    assert index["fig6_unseen_zs_classes"] == list(UNLABELED)
    assert sorted(index["fig5_dims"]) == list(range(ZU_DIM))
    # The z_s and z_u images of fig6 are different test images.
    assert not set(index["fig6_zs_test_indices"]) & set(index["fig6_zu_test_indices"])


def test_script_writes_into_workdir_figures_by_default(image_run):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "visualize.py"), f"--workdir={image_run}",
         "--seed=1", "--num_steps=3", "--max_classes=2"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    figures_dir = image_run / "figures"
    for line in result.stdout.strip().splitlines():
        name, path = line.split(": ", 1)
        assert os.path.dirname(path) == str(figures_dir), line
        assert os.path.getsize(path) > 0, name
    assert "fig6: " in result.stdout and (figures_dir / "index.json").exists()
    assert _grid_shape(figures_dir / "fig3_samples.png") == _expected(2, 3)


def test_toy_run_draws_fig2_from_the_saved_points(toy_run):
    assert sorted(os.listdir(toy_run / "points")) == [
        "epoch_0001.npz", "epoch_0002.npz", "epoch_0003.npz"]
    paths = visualize_run(toy_run)
    assert set(paths) == {"fig2"}
    assert os.path.getsize(paths["fig2"]) > 0
    assert paths["fig2"] == str(toy_run / "figures" / "fig2_toy_points.png")
    index = json.loads((toy_run / "figures" / "index.json").read_text())
    assert index["fig2_epochs"] == [1, 2, 3] and index["grids"] == {}


def test_missing_model_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "model.keras")):
        visualize_run(tmp_path)


def test_spread_keeps_the_ends():
    assert spread(range(1, 11), 4) == [1, 4, 7, 10]
    assert spread([5, 6], 3) == [5, 6]


class _OneStrongDim:
    """decode(z_s, z_u) = image whose pixels are 0.5 + 0.2 z_u[2] + 0.01 z_u[0]: dim 2 matters
    most, then dim 0, dim 1 not at all."""

    def sample_latents(self, labels, seed=None):
        rng = np.random.default_rng(seed)
        return rng.normal(size=(len(labels), 2)), rng.normal(size=(len(labels), 3))

    def decode(self, z_s, z_u):
        z_u = np.asarray(z_u)
        values = 0.5 + 0.2 * z_u[:, 2] + 0.01 * z_u[:, 0]
        return np.ones((len(z_u), 4, 4, 1)) * values[:, None, None, None]


def test_rank_zu_dims_orders_by_output_change():
    dims, change = rank_zu_dims(_OneStrongDim(), classes=[0, 1], seed=0)
    assert dims == [2, 0, 1]
    np.testing.assert_allclose(change, [0.04, 0.0, 0.8], atol=1e-6)


# --------------------------------------------------------------------------- paper B models

ATTRIBUTE_CLASSES = (0, 1, 2, 3)  # digits kept: 4 one-hot attributes


def _attribute_run(tmp_path_factory, model, dataset="digits", **overrides):
    workdir = tmp_path_factory.mktemp(f"{model}_{dataset}")
    values = dict(model=model, dataset=dataset, epochs=1, steps_per_epoch=2,
                  model_args={"z_dim": 2, **({"width": 8} if dataset == "digits" else {})})
    if dataset == "digits":
        values["classes"] = ATTRIBUTE_CLASSES
    else:
        values["image_size"] = None
    values.update(overrides)
    train(tiny_config(workdir, **values))
    return workdir


@pytest.fixture(scope="module")
def csvae_run(tmp_path_factory):
    return _attribute_run(tmp_path_factory, "csvae")


def _tile(grid_file, row, col, size=SIZE):
    pixels = matplotlib.image.imread(str(grid_file))
    top, left = 1 + row * (size + 1), 1 + col * (size + 1)
    return pixels[top:top + size, left:left + size, 0]


def test_csvae_run_draws_paper_b_figures_with_their_layouts(csvae_run, tmp_path):
    import keras

    num_steps, attributes = 3, len(ATTRIBUTE_CLASSES)
    out_dir = tmp_path / "figures"
    paths = visualize_run(csvae_run, out_dir=out_dir, seed=0, num_steps=num_steps,
                          max_classes=2)
    w_grids = {"fig3_w_grid_0", "fig3_w_grid_3"}  # 2 attributes spread over 0..3
    assert set(paths) == {"samples", "manipulation", "fig5_transfer"} | w_grids
    for name, path in paths.items():
        assert os.path.getsize(path) > 0, name
    assert _grid_shape(paths["samples"]) == _expected(attributes, num_steps)
    # 4 test images (one per class), input + the 4 one-hot targets.
    assert _grid_shape(paths["manipulation"]) == _expected(4, 1 + attributes)
    for name in w_grids:  # num_steps x num_steps points of W_i, laid out as the grid
        assert _grid_shape(paths[name]) == _expected(num_steps, num_steps)
    # Fig. 5: 3 images; input, reconstruction, 3 x 3 styles of attributes 0 and 1.
    assert _grid_shape(paths["fig5_transfer"]) == _expected(3, 2 + 9)
    index = json.loads((out_dir / "index.json").read_text())
    assert set(index["figures"]) == set(paths) and set(index["grids"]) == set(paths)
    assert index["w_grid_attributes"] == [0, 3] and index["fig5_attributes"] == [0, 1]
    assert index["attribute_names"] == ["0", "1", "2", "3"]

    # The tiles are the model's own outputs: the manipulation grid's first column is the test
    # images, and W_3's grid tile (r, c) decodes the grid point at column c (w_1 ascending) and
    # row r from the top (w_2 descending), where the scatter beside it draws that point.
    from keras_lsvae.viz.run import load_test_attributes

    model = keras.models.load_model(str(csvae_run / "model.keras"), compile=False)
    images, attrs, _ = load_test_attributes(json.loads((csvae_run / "config.json").read_text()),
                                            attributes)
    rows = index["manipulation_test_indices"]
    assert sorted(np.argmax(attrs[rows], -1).tolist()) == [0, 1, 2, 3]
    for r, i in enumerate(rows):
        np.testing.assert_allclose(_tile(grid_path(paths["manipulation"]), r, 0),
                                   images[i, ..., 0], atol=1 / 255)
    subject = images[index["w_grid_test_indices"][1]]
    points = np.asarray(model.w_grid(3, num=num_steps))
    decoded = np.asarray(model.manipulate_grid(subject[None], 3, points))[0]
    xs, ys = np.unique(points[:, 0]), np.unique(points[:, 1])
    assert len(xs) == len(ys) == num_steps
    for r, c in ((0, 0), (1, 2), (2, 1), (0, 2)):
        k = np.flatnonzero((points[:, 0] == xs[c]) & (points[:, 1] == ys[num_steps - 1 - r]))
        # 2/255: the PNG's 8-bit quantisation (up to 1/255 through matplotlib's 256-entry gray
        # lookup table) plus float differences between decoding the figure's batch and this one
        # point (1 pixel of 64 reached 1.5/255 + 4e-6 after the data-order change).
        np.testing.assert_allclose(_tile(grid_path(paths["fig3_w_grid_3"]), r, c),
                                   np.clip(decoded[k[0], ..., 0], 0, 1), atol=2 / 255)


def test_condvae_run_draws_scaled_manipulations(tmp_path_factory):
    workdir = _attribute_run(tmp_path_factory, "condvae")
    num_steps = 4
    paths = visualize_run(workdir, num_steps=num_steps)
    assert set(paths) == {"samples", "manipulation", "fig3_scaled"}
    grid = grid_path(paths["fig3_scaled"])
    assert _grid_shape(paths["fig3_scaled"]) == _expected(len(ATTRIBUTE_CLASSES), 1 + num_steps)
    index = json.loads((workdir / "figures" / "index.json").read_text())
    assert index["fig3_scaled_scales"] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    # p = 0 decodes the zero label whatever the target: column 1 is the same in every row,
    # while p = 3 differs between targets.
    for row in range(1, len(ATTRIBUTE_CLASSES)):
        np.testing.assert_allclose(_tile(grid, row, 1), _tile(grid, 0, 1), atol=1 / 255)
    assert np.abs(_tile(grid, 1, 4) - _tile(grid, 0, 4)).max() > 1 / 255


def test_vae_run_has_samples_and_manipulation_only(tmp_path_factory):
    workdir = _attribute_run(tmp_path_factory, "vae")
    paths = visualize_run(workdir, num_steps=2)
    assert set(paths) == {"samples", "manipulation"}
    assert _grid_shape(paths["manipulation"]) == _expected(4, 1 + len(ATTRIBUTE_CLASSES))


def test_csvae_swiss_roll_draws_fig2_and_latent_projections(tmp_path_factory):
    workdir = _attribute_run(tmp_path_factory, "csvae", dataset="swiss_roll", epochs=2)
    paths = visualize_run(workdir)
    assert set(paths) == {"fig2", "latents"}
    assert all(os.path.getsize(p) > 0 for p in paths.values())
    index = json.loads((workdir / "figures" / "index.json").read_text())
    assert index["fig2_epochs"] == [1, 2] and index["attribute_names"] == ["outer_half"]


def test_cgan_run_draws_what_it_declares_and_says_what_it_skipped(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cgan_run")
    train(tiny_config(workdir, model="cgan", model_args={"width": 8, "z_dim": 3}))
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "visualize.py"), f"--workdir={workdir}",
         "--num_steps=3", "--max_classes=2"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fig3: " in result.stdout
    for name in ("fig4a", "fig4b", "fig5", "fig6", "fig7"):
        assert f"skipped {name}: CGAN does not declare" in result.stdout, result.stdout


def test_script_gives_one_error_line_for_a_missing_run(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "visualize.py"),
         f"--workdir={tmp_path / 'nothing'}"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
