"""Model outputs -> predictions in the target's own terms (class labels and probabilities, or values)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabcli.data.preprocessing import TabularPreprocessor

__all__ = ["class_probabilities", "prediction_table", "prediction_records", "metric_inputs", "frame_metrics"]


def class_probabilities(task: str, raw: np.ndarray) -> np.ndarray:
    """Model outputs -> ``(rows, num_classes)`` probabilities (a sigmoid output becomes 2 columns)."""
    raw = np.asarray(raw, dtype=np.float64)
    if task == "binary":
        return np.concatenate([1.0 - raw[:, :1], raw[:, :1]], axis=1)
    return raw


def prediction_table(preprocessor: TabularPreprocessor, raw: np.ndarray) -> pd.DataFrame:
    """Predictions as a table, one row per model output row, in order.

    Args:
        preprocessor: The run's fitted preprocessing (task, classes, target scaling).
        raw: Model outputs ``(rows, num_outputs)``.

    Returns:
        Regression: column ``prediction`` in the target's units. Classification: ``prediction``
        (the most probable class label) and ``proba_<class>`` for every class (rows sum to 1).
    """
    schema = preprocessor.schema
    if schema.task == "regression":
        return pd.DataFrame({"prediction": preprocessor.decode_regression(np.asarray(raw)[:, 0])})
    proba = class_probabilities(schema.task, raw)
    table = pd.DataFrame({"prediction": [schema.classes[i] for i in proba.argmax(axis=1)]})
    for i, label in enumerate(schema.classes):
        table[f"proba_{label}"] = proba[:, i]
    return table


def _finite_or_none(values: list) -> list:
    """JSON has no NaN or infinity: a non-finite model output is answered as null."""
    return [v if v == v and v not in (float("inf"), float("-inf")) else None for v in values]


def prediction_records(preprocessor: TabularPreprocessor, raw: np.ndarray) -> list[dict]:
    """Predictions as one JSON-ready dict per model output row, in order (what `tabcli serve`
    answers): ``{"prediction": value}`` for regression, ``{"prediction": label, "probabilities":
    {class: p}}`` for classification; the same values as :func:`prediction_table`, without
    building a DataFrame (which cost more than the model call for a request of one row).
    Non-finite outputs are ``None``; class labels are the schema's (already plain Python)."""
    schema = preprocessor.schema
    finite = bool(np.isfinite(raw).all())
    if schema.task == "regression":
        values = preprocessor.decode_regression(np.asarray(raw)[:, 0]).tolist()
        return [{"prediction": v} for v in (values if finite else _finite_or_none(values))]
    proba = class_probabilities(schema.task, raw)
    names = [str(c) for c in schema.classes]
    rows = proba.tolist() if finite else [_finite_or_none(row) for row in proba.tolist()]
    return [{"prediction": schema.classes[best] if finite or rows[i][best] is not None else None,
             "probabilities": dict(zip(names, rows[i]))}
            for i, best in enumerate(proba.argmax(axis=1).tolist())]


def metric_inputs(preprocessor: TabularPreprocessor, frame: pd.DataFrame, raw: np.ndarray, what: str = "the table"):
    """``(y_true, prediction)`` for :func:`tabcli.evaluation.metrics.compute_metrics`: class indices and
    probabilities, or values in the target's units.

    Raises:
        tabcli.errors.DataError: If the target column is missing or holds unknown classes.
    """
    schema = preprocessor.schema
    if schema.target not in frame.columns:
        from tabcli.errors import DataError

        raise DataError(
            f"The target column '{schema.target}' is not in {what}; metrics need labelled rows. "
            "Use `tabcli predict` for unlabelled data."
        )
    if schema.task == "regression":
        preprocessor.encode_target(frame[schema.target], what=what)  # validates the values
        return frame[schema.target].to_numpy(dtype=float), preprocessor.decode_regression(np.asarray(raw)[:, 0])
    return preprocessor.encode_target(frame[schema.target], what=what), class_probabilities(schema.task, raw)


def frame_metrics(preprocessor: TabularPreprocessor, frame: pd.DataFrame, raw: np.ndarray, what: str = "the table") -> dict:
    """The task's metrics (:func:`tabcli.evaluation.metrics.compute_metrics`) of raw model outputs ``raw``
    ``(rows, outputs)`` against the target column of ``frame``, in the target's units.

    Raises:
        tabcli.errors.DataError: If the target column is missing or holds unknown classes.
    """
    from tabcli.evaluation.metrics import compute_metrics

    schema = preprocessor.schema
    y_true, prediction = metric_inputs(preprocessor, frame, raw, what=what)
    return compute_metrics(schema.task, y_true, prediction, max(2, len(schema.classes)))
