"""keras_lsvae: VAEs whose latent space is split by labels, in Keras 3 on TensorFlow.

Implements Lr-LiVAE (Zheng & Sun, CVPR 2019) and CSVAE (Klys, Snell & Zemel, NeurIPS 2018) with
their baselines, data pipelines, metrics, figures and export. See README.md.
"""

__version__ = "0.1.0"

from keras_lsvae import registry  # noqa: F401
from keras_lsvae.registry import DATASETS, METRICS, MODELS  # noqa: F401

from keras_lsvae import data, distributions, losses, masks, metrics, models  # noqa: E402,F401
from keras_lsvae.models import CSVAE, VAE, CondVAE, CondVAEInfo, LrLiVAE  # noqa: E402,F401
