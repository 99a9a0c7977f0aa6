"""Evaluation metrics of both papers, as functions on arrays (no model internals needed).

See DESIGN.md "Metric conventions". Every function below is also registered by name in
``keras_lsvae.registry.METRICS`` (``METRICS.get("fid")``):

========================  ====================================================================
registered name           function
========================  ====================================================================
``inception_score``       :func:`inception_score` — exp(E KL(p(y|x) || p(y))), paper A §4.2
``fid``                   :func:`frechet_distance` — float64, on evaluation-classifier features
``intra_class_fid``       :func:`intra_class_fid`
``ms_ssim_diversity``     :func:`ms_ssim_diversity` — paper A Eq. 12 on one set
``intra_class_diversity`` :func:`intra_class_diversity` — Eq. 12 per class
``probe_accuracy``        :func:`probe_accuracy` — linear / 15-NN / MLP probe
``leakage``               :func:`leakage_report` — label leakage from frozen codes vs chance
``regression_r2``         :func:`regression_r2` — R² of known factors from codes
``conditional_accuracy``  :func:`conditional_accuracy` — real-data classifier on generated images
========================  ====================================================================

Standard Inception-v3 IS/FID (:mod:`keras_lsvae.metrics.inception_v3`,
:func:`inception_v3_scores`) only from weights already on this machine; never downloaded, and
reported as "inception_v3: not available (...)" when absent.
"""

from keras_lsvae.metrics.classifier import (  # noqa: F401
    build_eval_classifier,
    conditional_accuracy,
    conditional_accuracy_report,
    features,
    load_eval_classifier,
    predict_probs,
    save_eval_classifier,
    train_eval_classifier,
)
from keras_lsvae.metrics.diversity import (  # noqa: F401
    intra_class_diversity,
    ms_ssim_diversity,
    ms_ssim_settings,
    pairwise_ms_ssim,
)
from keras_lsvae.metrics.inception import (  # noqa: F401
    frechet_distance,
    frechet_distance_from_statistics,
    gaussian_statistics,
    inception_score,
    intra_class_fid,
)
from keras_lsvae.metrics import inception_v3  # noqa: F401
from keras_lsvae.metrics.inception_v3 import inception_v3_scores  # noqa: F401
from keras_lsvae.metrics.probes import (  # noqa: F401
    leakage_report,
    probe_accuracy,
    regression_r2,
)

__all__ = [
    "build_eval_classifier",
    "conditional_accuracy",
    "conditional_accuracy_report",
    "features",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "gaussian_statistics",
    "inception_score",
    "intra_class_diversity",
    "intra_class_fid",
    "inception_v3",
    "inception_v3_scores",
    "leakage_report",
    "load_eval_classifier",
    "ms_ssim_diversity",
    "ms_ssim_settings",
    "pairwise_ms_ssim",
    "predict_probs",
    "probe_accuracy",
    "regression_r2",
    "save_eval_classifier",
    "train_eval_classifier",
]
