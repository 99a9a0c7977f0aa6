"""Probes on frozen codes: label leakage and recovery of known factors.

Disentanglement in both papers is a claim about information: paper A's z_u is trained (with an
adversarial classifier) to carry no label information, paper B's Z (with the adversary q_δ(y|z))
likewise. We check it the way DESIGN.md "Metric conventions" prescribes: fit *fresh* classifiers
on frozen codes of the training split and report test accuracy against chance 1/K, with a linear
probe **and** non-linear ones (15-NN, a small MLP). A linear probe alone hides leakage: on a
public CSVAE swiss-roll run z → y was 0.53 linear but 0.76 with 15-NN.

``regression_r2`` is the regression counterpart for data with known continuous factors (e.g. the
procedural ``shapes`` set: position and scale should be linearly readable from z_u, not from z_s).

All probes standardise their inputs first (codes of different dimensions live on different
scales; this matters for the logistic regression's regularisation and for k-NN distances).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from keras_lsvae.registry import METRICS

PROBE_KINDS = ("linear", "knn", "mlp")
KNN_NEIGHBORS = 15
MLP_HIDDEN_UNITS = (64, 64)


def _make_probe(kind: str, num_train: int, seed: int):
    if kind == "linear":
        head = LogisticRegression(max_iter=2000)
    elif kind == "knn":
        head = KNeighborsClassifier(n_neighbors=min(KNN_NEIGHBORS, num_train))
    elif kind == "mlp":
        # Small and seeded; early stopping keeps it from memorising small training splits.
        head = MLPClassifier(
            hidden_layer_sizes=MLP_HIDDEN_UNITS,
            max_iter=500,
            early_stopping=num_train >= 100,
            random_state=seed,
        )
    else:
        raise ValueError(f"unknown probe kind {kind!r}; expected one of {PROBE_KINDS}")
    return make_pipeline(StandardScaler(), head)


def _as_2d(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


@METRICS.register("probe_accuracy")
def probe_accuracy(train_x, train_y, test_x, test_y, kind: str = "linear", seed: int = 0) -> float:
    """Test accuracy of a fresh ``kind`` probe ("linear" | "knn" | "mlp") fitted on (train_x, train_y).

    linear: standardise + multinomial logistic regression; knn: standardise + 15-NN (fewer if the
    training split is smaller); mlp: standardise + MLP (64, 64) seeded with ``seed``.
    """
    train_x, test_x = _as_2d(train_x), _as_2d(test_x)
    train_y, test_y = np.asarray(train_y).reshape(-1), np.asarray(test_y).reshape(-1)
    probe = _make_probe(kind, len(train_x), seed)
    probe.fit(train_x, train_y)
    return float(np.mean(probe.predict(test_x) == test_y))


@METRICS.register("leakage")
def leakage_report(
    train_z, train_y, test_z, test_y, num_classes: int, seed: int = 0,
    kinds: Sequence[str] = PROBE_KINDS,
) -> Dict[str, object]:
    """How well the label can be read from frozen codes, by linear and non-linear probes.

    Returns ``{"linear", "knn", "mlp": test accuracies, "chance": 1/K, "majority": frequency of
    the most common test label, "num_train", "num_test", "seed"}``. For z_u (paper A) / z (paper
    B) all accuracies should be near chance; for z_s they should be high.
    """
    test_y_flat = np.asarray(test_y).reshape(-1)
    report: Dict[str, object] = {
        kind: probe_accuracy(train_z, train_y, test_z, test_y, kind=kind, seed=seed)
        for kind in kinds
    }
    report["chance"] = 1.0 / num_classes
    # With unbalanced labels "always predict the majority class" beats 1/K: report it too.
    report["majority"] = float(np.max(np.bincount(test_y_flat.astype(np.int64))) / len(test_y_flat))
    report["num_train"] = int(len(train_z))
    report["num_test"] = int(len(test_z))
    report["seed"] = seed
    return report


@METRICS.register("regression_r2")
def regression_r2(
    train_x, train_t, test_x, test_t, names: Optional[Sequence[str]] = None, kind: str = "linear"
) -> Dict[str, float]:
    """Test R² per target of a probe regressing known factors ``t`` from codes ``x``.

    Args:
        train_t, test_t: (N,) or (N, T) continuous factors (e.g. shapes' x, y position and scale).
        names: one name per target; defaults to ``target_0``, ``target_1``, ...
        kind: "linear" (standardise + least squares, the default) or "knn" (15-NN regression).

    Returns:
        ``{name: R²}`` on the test split (1 = perfectly recovered, ≤ 0 = no better than the mean).
    """
    train_x, test_x = _as_2d(train_x), _as_2d(test_x)
    train_t, test_t = _as_2d(train_t), _as_2d(test_t)
    if names is None:
        names = [f"target_{i}" for i in range(train_t.shape[1])]
    if len(names) != train_t.shape[1]:
        raise ValueError(f"{len(names)} names for {train_t.shape[1]} targets")
    if kind == "linear":
        head = LinearRegression()
    elif kind == "knn":
        head = KNeighborsRegressor(n_neighbors=min(KNN_NEIGHBORS, len(train_x)))
    else:
        raise ValueError(f"unknown regression probe {kind!r}; expected 'linear' or 'knn'")
    probe = make_pipeline(StandardScaler(), head).fit(train_x, train_t)
    predicted = probe.predict(test_x).reshape(len(test_x), -1)
    return {
        name: float(r2_score(test_t[:, i], predicted[:, i])) for i, name in enumerate(names)
    }
