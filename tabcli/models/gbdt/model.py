"""Fitting and predicting the ``gbdt`` baseline (scikit-learn, no Keras)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabcli.models.gbdt.config import GBDTConfig
from tabcli.models.spec import ModelSpec

__all__ = ["fit", "predict_raw", "parameter_count", "MAX_NATIVE_CATEGORIES"]

#: HistGradientBoosting bins each categorical feature into at most this many categories.
MAX_NATIVE_CATEGORIES = 255


def _matrix(spec: ModelSpec, inputs: dict) -> np.ndarray:
    parts = [inputs[k].astype(np.float64) for k in ("numerical", "categorical") if k in inputs and inputs[k].shape[1]]
    return np.concatenate(parts, axis=1)


def _categorical_mask(spec: ModelSpec) -> list[bool]:
    # A column with more codes than HistGradientBoosting's bins is used as ordered codes instead.
    return [False] * len(spec.numerical_names) + [c <= MAX_NATIVE_CATEGORIES for c in spec.cardinalities]


def fit(config: GBDTConfig, spec: ModelSpec, train: tuple[dict, np.ndarray], valid: tuple[dict, np.ndarray], seed: int):
    """Fit HistGradientBoosting on preprocessed rows, early-stopped on the validation rows.

    Args:
        config: Family settings.
        spec: Input layout and task.
        train: ``(inputs, targets)``: class indices or the standardised regression target.
        valid: The same for the validation rows (``X_val``/``y_val`` of scikit-learn's ``fit``).
        seed: ``random_state``.

    Returns:
        ``(estimator, history)``: the fitted estimator and a per-iteration table of the training
        and validation loss scores.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if spec.task == "regression" else HistGradientBoostingClassifier
    estimator = cls(
        learning_rate=config.learning_rate,
        max_iter=config.max_iter,
        max_leaf_nodes=config.max_leaf_nodes,
        min_samples_leaf=config.min_samples_leaf,
        l2_regularization=config.l2_regularization,
        categorical_features=_categorical_mask(spec),
        early_stopping=True,
        n_iter_no_change=config.n_iter_no_change,
        random_state=seed,
    )
    estimator.fit(_matrix(spec, train[0]), train[1], X_val=_matrix(spec, valid[0]), y_val=valid[1])
    history = pd.DataFrame({
        "epoch": np.arange(1, len(estimator.train_score_) + 1),
        "loss": -np.asarray(estimator.train_score_),
        "val_loss": -np.asarray(estimator.validation_score_),
    })
    return estimator, history


def predict_raw(estimator, spec: ModelSpec, inputs: dict) -> np.ndarray:
    """Outputs in the neural models' format: ``(rows, 1)`` P(class 1) for binary,
    ``(rows, K)`` probabilities for multiclass, ``(rows, 1)`` standardised values for regression."""
    matrix = _matrix(spec, inputs)
    if spec.task == "regression":
        return estimator.predict(matrix).reshape(-1, 1)
    proba = estimator.predict_proba(matrix)
    return proba[:, 1:2] if spec.task == "binary" else proba


def parameter_count(estimator) -> int:
    """Number of tree nodes, the closest analogue of a parameter count."""
    return int(sum(len(predictor.nodes) for iteration in estimator._predictors for predictor in iteration))
