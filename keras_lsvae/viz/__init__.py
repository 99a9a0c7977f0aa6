"""Figures of paper A (Lr-LiVAE) and image-grid helpers; matplotlib with the Agg backend.

* :mod:`keras_lsvae.viz.grid` — ``image_grid`` (pure NumPy), ``save_image_grid``, ``save_figure``.
* :mod:`keras_lsvae.viz.figures` — ``fig2_toy_points`` … ``fig7_inpainting``, each writing a PNG
  and returning its path (image figures also write the bare grid as ``<stem>_grid.png``).
"""

from keras_lsvae.viz.figures import (  # noqa: F401
    MASK_NAMES,
    fig2_toy_points,
    fig3_samples_per_class,
    fig4_vary_zs,
    fig4_vary_zu,
    fig5_traverse,
    fig6_swap_grid,
    fig7_inpainting,
    grid_path,
    inpainting_mask,
)
from keras_lsvae.viz.grid import (  # noqa: F401
    image_grid,
    save_array_png,
    save_figure,
    save_image_grid,
)

__all__ = [
    "MASK_NAMES",
    "fig2_toy_points",
    "fig3_samples_per_class",
    "fig4_vary_zs",
    "fig4_vary_zu",
    "fig5_traverse",
    "fig6_swap_grid",
    "fig7_inpainting",
    "grid_path",
    "image_grid",
    "inpainting_mask",
    "save_array_png",
    "save_figure",
    "save_image_grid",
]
