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
