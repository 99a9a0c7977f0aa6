"""Tests for keras_lsvae.viz: exact grid layout, and every figure on a small fake model."""

import os

import matplotlib.image
import numpy as np
import pytest

from keras_lsvae import viz

SIZE = 6  # fake model image side


def _read_png(path):
    assert os.path.getsize(path) > 0
    return matplotlib.image.imread(path)


def _expected_grid_shape(rows, cols, height=SIZE, width=SIZE, padding=1):
    return (rows * (height + padding) + padding, cols * (width + padding) + padding)


class FakeLrLiVAE:
    """The model API the figures use; images are constant tiles whose value encodes the inputs."""

    num_classes, zs_dim, zu_dim = 3, 2, 4

    def __init__(self, channels=1):
        self.channels = channels
        self.inpaint_calls = []

    def _constant(self, values):
        values = np.asarray(values, np.float32).reshape(-1, 1, 1, 1)
        return np.ones((len(values), SIZE, SIZE, self.channels), np.float32) * values

    def prior_means(self):
        return np.zeros((self.num_classes, self.zs_dim), np.float32)

    def prior_variances(self):
        return np.ones((self.num_classes, self.zs_dim), np.float32)

    def generate(self, labels, seed=None):
        return self._constant(np.asarray(labels) / (self.num_classes - 1))

    def interpolate_zs(self, label, num_steps, seed):
        return self._constant(np.linspace(0, 1, num_steps) * (label + 1) / self.num_classes)

    def interpolate_zu(self, label, num_steps, seed):
        return self._constant(np.linspace(1, 0, num_steps) * (label + 1) / self.num_classes)

    def traverse(self, label, dims, values, seed):
        assert len(dims) == 1  # like LrLiVAE.traverse: (len(dims), len(values), H, W, C)
        return self._constant((np.asarray(values) - min(values)) / (np.ptp(values) or 1.0))[None]

    def swap(self, images_s, images_u):
        return 0.5 * (np.asarray(images_s) + np.asarray(images_u))

    def inpaint(self, images, mask):
        self.inpaint_calls.append((np.array(images), np.array(mask)))
        return np.where(mask > 0.5, 0.5, images).astype(np.float32)


# --------------------------------------------------------------------------- grid


def test_image_grid_layout_is_exact():
    images = np.stack([np.full((2, 3), v, np.float32) for v in (0.0, 0.25, 0.5)])
    grid = viz.image_grid(images, nrow=2)  # 2 per row -> 2 rows, last cell empty
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1)
    expected = np.ones((7, 9), np.float32)
    expected[1:3, 1:4] = 0.0
    expected[1:3, 5:8] = 0.25
    expected[4:6, 1:4] = 0.5
    np.testing.assert_array_equal(grid[..., 0], expected)


def test_image_grid_keeps_colour_channels_and_padding_options():
    images = np.random.default_rng(0).random((4, 3, 3, 3)).astype(np.float32)
    grid = viz.image_grid(images, nrow=4, padding=2, pad_value=0.0)
    assert grid.shape == (3 + 4, 4 * 5 + 2, 3)
    np.testing.assert_array_equal(grid[2:5, 7:10], images[1])
    assert np.all(grid[:2] == 0.0)


def test_save_image_grid_writes_exact_pixels(tmp_path):
    images = np.stack([np.full((4, 4), v, np.float32) for v in (0.0, 1.0, 0.5, 0.2)])
    path = viz.save_image_grid(str(tmp_path / "sub" / "grid.png"), images, nrow=2)
    pixels = _read_png(path)
    assert pixels.shape[:2] == (11, 11)
    np.testing.assert_allclose(pixels[6, 6, :3], 0.2, atol=1 / 255)  # 4th image
    np.testing.assert_allclose(pixels[0, 0, :3], 1.0)  # padding
    rgb = viz.save_image_grid(str(tmp_path / "rgb.png"),
                              np.zeros((3, 5, 5, 3), np.float32), nrow=3)
    assert _read_png(rgb).shape[:2] == (7, 19)


def test_masks_cover_the_documented_regions():
    assert viz.inpainting_mask("right_half", 4, 6)[:, 3:].all()
    assert not viz.inpainting_mask("right_half", 4, 6)[:, :3].any()
    assert viz.inpainting_mask("bottom_half", 4, 6).sum() == 12
    band = viz.inpainting_mask("eyes_band", 8, 10)  # rows 25-75 %, columns 20-80 %
    assert band.shape == (8, 10) and band[2:6, 2:8].all() and band.sum() == 4 * 6
    with pytest.raises(ValueError):
        viz.inpainting_mask("left_ear", 8, 8)


# --------------------------------------------------------------------------- figures


def test_fig2_toy_points(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 2))
    labels = np.arange(60) % 3
    by_epoch = {1: (real * 0.5, labels), 10: (real * 0.9, labels)}
    path = viz.fig2_toy_points(by_epoch, real, labels, str(tmp_path / "fig2.png"))
    assert _read_png(path).ndim == 3


@pytest.mark.parametrize("channels", [1, 3])
def test_fig3_samples_per_class_grid(tmp_path, channels):
    model = FakeLrLiVAE(channels)
    path = viz.fig3_samples_per_class(model, str(tmp_path / "fig3.png"), per_class=4)
    assert _read_png(path).ndim == 3
    grid = _read_png(viz.grid_path(path))
    assert grid.shape[:2] == _expected_grid_shape(3, 4)
    # Row r holds class r, whose fake image value is r / 2.
    for row in range(3):
        np.testing.assert_allclose(grid[1 + row * (SIZE + 1), 1, :3], row / 2, atol=1 / 255)


def test_fig4_vary_zs_and_zu(tmp_path):
    model = FakeLrLiVAE()
    path_a = viz.fig4_vary_zs(model, str(tmp_path / "fig4a.png"), classes=[0, 2], num_steps=5,
                              seed=1)
    path_b = viz.fig4_vary_zu(model, str(tmp_path / "fig4b.png"), classes=[0, 1, 2],
                              num_steps=5, seed=1)
    assert _read_png(viz.grid_path(path_a)).shape[:2] == _expected_grid_shape(2, 5)
    assert _read_png(viz.grid_path(path_b)).shape[:2] == _expected_grid_shape(3, 5)
    assert _read_png(path_a).size > 0 and _read_png(path_b).size > 0


def test_fig5_traverse_one_row_per_class_and_dimension(tmp_path):
    model = FakeLrLiVAE()
    path = viz.fig5_traverse(model, str(tmp_path / "fig5.png"), dims=[0, 3],
                             values=[-2.0, 0.0, 2.0], label=[0, 1])
    grid = _read_png(viz.grid_path(path))
    assert grid.shape[:2] == _expected_grid_shape(4, 3)
    np.testing.assert_allclose(grid[1, 1 + 2 * (SIZE + 1), :3], 1.0, atol=1 / 255)


def test_fig6_swap_grid_layout(tmp_path):
    model = FakeLrLiVAE()
    images_s = model._constant([0.0, 0.2])
    images_u = model._constant([0.4, 0.6, 1.0])
    path = viz.fig6_swap_grid(model, images_s, images_u, str(tmp_path / "fig6.png"))
    grid = _read_png(viz.grid_path(path))
    assert grid.shape[:2] == _expected_grid_shape(3, 4)

    def tile(row, col):
        return grid[1 + row * (SIZE + 1), 1 + col * (SIZE + 1), 0]

    assert tile(0, 3) == pytest.approx(1.0, abs=1 / 255)  # first row: z_u sources
    assert tile(2, 0) == pytest.approx(0.2, abs=1 / 255)  # first column: z_s sources
    assert tile(2, 2) == pytest.approx(0.5 * (0.2 + 0.6), abs=1 / 255)  # swap(s_1, u_1)


def test_fig7_inpainting_passes_corrupted_images_and_masks(tmp_path):
    model = FakeLrLiVAE()
    images = np.random.default_rng(0).random((2, SIZE, SIZE, 1)).astype(np.float32) * 0.5 + 0.5
    path = viz.fig7_inpainting(model, images, str(tmp_path / "fig7.png"))
    grid = _read_png(viz.grid_path(path))
    assert grid.shape[:2] == _expected_grid_shape(1 + 2 * 3, 2)
    assert len(model.inpaint_calls) == 3
    corrupted, mask = model.inpaint_calls[0]  # right half
    assert mask.shape == (2, SIZE, SIZE, 1)
    assert np.all(corrupted[:, :, SIZE // 2 :] == 0.0)  # the model never sees missing pixels
    np.testing.assert_array_equal(corrupted[:, :, : SIZE // 2], images[:, :, : SIZE // 2])


# --------------------------------------------------------------------------- paper B helpers


def test_grid_layout_places_tiles_where_the_scatter_draws_their_points():
    from keras_lsvae.viz.attributes import grid_layout

    ticks = np.array([-1.0, 0.0, 2.0])
    # "ij" order (first coordinate slowest), as CSVAE.w_grid returns.
    points = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)
    layout = grid_layout(points)
    # Top-left tile: smallest w1, largest w2; bottom-right: largest w1, smallest w2.
    np.testing.assert_array_equal(points[layout[0, 0]], [-1.0, 2.0])
    np.testing.assert_array_equal(points[layout[2, 2]], [2.0, -1.0])
    assert sorted(layout.ravel().tolist()) == list(range(9))
    for r in range(3):
        for c in range(3):
            np.testing.assert_array_equal(points[layout[r, c]], [ticks[c], ticks[2 - r]])
    # Points that are not an axis-aligned grid keep their order.
    rotated = points @ np.array([[0.8, 0.6], [-0.6, 0.8]])
    np.testing.assert_array_equal(grid_layout(rotated), np.arange(9).reshape(3, 3))


def test_attribute_targets_and_example_picks():
    from keras_lsvae.viz import attributes as attr

    np.testing.assert_array_equal(attr.attribute_targets(1), [[0.0], [1.0]])
    np.testing.assert_array_equal(attr.attribute_targets(3), np.eye(3))
    assert attr.target_names(1, ["glasses"]) == ["glasses off", "glasses on"]
    one_hot = np.eye(3, dtype=np.float32)[[2, 2, 0, 1, 0]]
    # One example of each class first (in class order), then the next unused ones.
    assert attr.pick_examples(one_hot, 3).tolist() == [0, 2, 3]
    assert attr.pick_examples(one_hot, 4).tolist() == [0, 1, 2, 3]


def test_manipulate_is_the_models_declared_uniform_call():
    """viz's G_ij is ``manipulate_attributes`` of the model's ``ManipulatesAttributes``: CSVAE
    overrides it (its ``manipulate`` takes no source attributes), the others inherit the
    default ``manipulate(images, attributes, target_attributes)``."""
    from keras_lsvae.viz import attributes as attr
    from tests.helpers import attribute_batch, tiny_attribute_model

    images, source = attribute_batch(4)
    targets = source[::-1].copy()
    csvae = tiny_attribute_model("csvae")
    csvae.fit_attribute_statistics(images, source)
    np.testing.assert_array_equal(attr.manipulate(csvae, images, source, targets),
                                  np.asarray(csvae.manipulate(images, targets)))
    condvae = tiny_attribute_model("condvae")
    np.testing.assert_array_equal(attr.manipulate(condvae, images, source, targets),
                                  np.asarray(condvae.manipulate(images, source, targets)))
