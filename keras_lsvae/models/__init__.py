"""Models, picked by name: ``keras_lsvae.models.get("lrlivae", input_shape=..., num_classes=...)``.

One model per file; each registers itself in :data:`keras_lsvae.registry.MODELS`.
"""

from keras_lsvae.models.base import AttributeModel, LabelSplitModel  # noqa: F401
from keras_lsvae.models.cgan import CGAN  # noqa: F401
from keras_lsvae.models.condvae import CondVAE  # noqa: F401
from keras_lsvae.models.condvae_info import CondVAEInfo  # noqa: F401
from keras_lsvae.models.csvae import CSVAE  # noqa: F401
from keras_lsvae.models.cvae import CVAE  # noqa: F401
from keras_lsvae.models.cvaegan import CVAEGAN  # noqa: F401
from keras_lsvae.models.lrlivae import LrLiVAE  # noqa: F401
from keras_lsvae.models.vae import VAE  # noqa: F401
from keras_lsvae.registry import MODELS


def get(name, **kwargs):
    """Build the model registered as ``name`` with ``kwargs``."""
    return MODELS.get(name)(**kwargs)


def names():
    return MODELS.names()
