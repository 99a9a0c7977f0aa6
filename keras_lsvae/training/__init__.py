"""Training: configuration, flags, strategies, callbacks and the ``train`` loop."""

from keras_lsvae.training.config import TrainConfig  # noqa: F401
from keras_lsvae.training.loop import build_model, train  # noqa: F401
