"""Task metrics computed with scikit-learn, in the target's own units."""

from __future__ import annotations

import warnings

import math

import numpy as np
from sklearn import metrics as skm

__all__ = ["classification_metrics", "regression_metrics", "compute_metrics", "scalar_metrics", "PRIMARY_METRIC",
           "MONITOR_METRIC", "TASK_METRICS", "LOWER_IS_BETTER", "spearman"]

_CLASSIFICATION = ("accuracy", "balanced_accuracy", "roc_auc", "pr_auc", "log_loss", "f1_macro", "brier")
#: The scalar metrics each task produces (the keys of a split in metrics.json).
TASK_METRICS = {"binary": _CLASSIFICATION, "multiclass": _CLASSIFICATION, "regression": ("rmse", "mae", "r2", "mape")}
#: Metrics that are losses or errors; every other metric of TASK_METRICS is better when higher.
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mape", "log_loss", "brier"})

#: The Keras metric (its name in the training logs, ``val_<name>``) followed per epoch for each task.
MONITOR_METRIC = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}
#: The metric a run is judged by, and whether higher is better.
PRIMARY_METRIC = {"binary": ("roc_auc", True), "multiclass": ("accuracy", True), "regression": ("rmse", False)}


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, num_classes: int) -> dict[str, float | None]:
    """Classification metrics of class probabilities (scikit-learn).

    Args:
        y_true: Class indices ``(rows,)`` in ``[0, num_classes)``.
        proba: Class probabilities ``(rows, num_classes)`` (rows sum to 1).
        num_classes: Number of classes of the task.

    Returns:
        ``accuracy``, ``balanced_accuracy``, ``roc_auc`` (binary: of class 1; multiclass:
        one-vs-rest macro average), ``pr_auc`` (average precision; binary: of class 1;
        multiclass: one-vs-rest macro average), ``log_loss``, ``f1_macro``, ``brier`` (binary:
        the Brier score of class 1; multiclass: the multiclass Brier score, the mean over rows
        of ``sum_k (p_k - y_k)^2``), and ``confusion_matrix`` (``[true][predicted]`` counts).
        Curve-based metrics are None when the rows hold a single class.
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
        "pr_auc": None,
    }
    onehot = np.eye(num_classes)[y_true]
    if num_classes == 2:
        result["brier"] = float(np.mean((proba[:, 1] - onehot[:, 1]) ** 2))
    else:
        result["brier"] = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    present = np.unique(y_true)
    if len(present) >= 2:
        if num_classes == 2:
            result["roc_auc"] = float(skm.roc_auc_score(y_true, proba[:, 1]))
            result["pr_auc"] = float(skm.average_precision_score(y_true, proba[:, 1]))
        elif len(present) == num_classes:
            result["roc_auc"] = float(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels))
            result["pr_auc"] = float(skm.average_precision_score(onehot, proba, average="macro"))
    result["confusion_matrix"] = skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return result


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """RMSE, MAE (target units), R² and MAPE (unitless; None when a true value is 0)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return {
        "rmse": _finite(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": _finite(skm.mean_absolute_error(y_true, y_pred)),
        "r2": _finite(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
        "mape": _finite(skm.mean_absolute_percentage_error(y_true, y_pred)) if np.all(y_true != 0) else None,
    }


def compute_metrics(task: str, y_true: np.ndarray, prediction: np.ndarray, num_classes: int = 1) -> dict:
    """Metrics of ``task``; ``prediction`` is probabilities ``(rows, num_classes)`` for
    classification or values ``(rows,)`` in the target's units for regression."""
    # On a handful of rows (one class present, say) scikit-learn warns about what the metric
    # can mean; the table shows "-" or the value, and the raw warning text would only confuse.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if task == "regression":
            return regression_metrics(y_true, prediction)
        return classification_metrics(y_true, prediction, num_classes)


def scalar_metrics(metrics: dict) -> dict[str, float | None]:
    """The scalar entries of a metrics dict (drops e.g. the confusion matrix), for tables."""
    return {k: v for k, v in metrics.items() if v is None or isinstance(v, (int, float))}


def spearman(first, second) -> float | None:
    """Spearman rank correlation of two ``(n,)`` vectors (``scipy.stats.spearmanr``), or None
    where it is undefined or says nothing: fewer than 3 values, or either vector constant.

    Every figure and table that reports a rank correlation (the explain report, the trust
    checks, the importance charts) uses this one rule, so they agree.
    """
    from scipy.stats import spearmanr  # scipy.stats is slow to import and needed only here

    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)
