"""Task metrics computed with scikit-learn, in the target's own units."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

__all__ = ["classification_metrics", "regression_metrics", "compute_metrics", "PRIMARY_METRIC"]

#: The metric a run is judged by, and whether higher is better.
PRIMARY_METRIC = {"binary": ("roc_auc", True), "multiclass": ("accuracy", True), "regression": ("rmse", False)}


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, num_classes: int) -> dict[str, float | None]:
    """Accuracy, ROC AUC, log loss and macro F1 of class probabilities.

    Args:
        y_true: Class indices ``(rows,)`` in ``[0, num_classes)``.
        proba: Class probabilities ``(rows, num_classes)`` (rows sum to 1).
        num_classes: Number of classes of the task.

    Returns:
        ``accuracy``, ``balanced_accuracy``, ``roc_auc`` (binary: of class 1; multiclass:
        one-vs-rest macro average; None when a split holds a single class), ``log_loss``,
        ``f1_macro``.
    """
    y_true = np.asarray(y_true).astype(int)
    proba = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    y_pred = proba.argmax(axis=1)
    labels = list(range(num_classes))
    result: dict[str, float | None] = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "log_loss": float(skm.log_loss(y_true, proba, labels=labels)),
        "f1_macro": float(skm.f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)),
        "roc_auc": None,
    }
    present = np.unique(y_true)
    if len(present) >= 2:
        if num_classes == 2:
            result["roc_auc"] = float(skm.roc_auc_score(y_true, proba[:, 1]))
        elif len(present) == num_classes:
            result["roc_auc"] = float(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels))
    return result


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """RMSE, MAE and R² (in the target's units; R² is unitless)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return {
        "rmse": _finite(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": _finite(skm.mean_absolute_error(y_true, y_pred)),
        "r2": _finite(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
    }


def compute_metrics(task: str, y_true: np.ndarray, prediction: np.ndarray, num_classes: int = 1) -> dict:
    """Metrics of ``task``; ``prediction`` is probabilities ``(rows, num_classes)`` for
    classification or values ``(rows,)`` in the target's units for regression."""
    if task == "regression":
        return regression_metrics(y_true, prediction)
    return classification_metrics(y_true, prediction, num_classes)
