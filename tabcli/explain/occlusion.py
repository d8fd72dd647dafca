"""Replacing columns by a reference value: the training medians and modes, in table and in model space.

A column is "removed" by setting it to what a typical training row holds: the median of a
numerical column, the most frequent value of any other. The same reference serves the column
occlusion of :mod:`tabcli.explain.ranking` (in model-input space, so a column's every input
moves together: its value, its missing indicator, its date parts) and the deletion check of
:mod:`tabcli.explain.trust` (in the table, through the run's own preprocessing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabcli.data.preprocessing import reference_values
from tabcli.explain.importance import token_column

__all__ = ["reference_frame", "input_positions", "replace_columns", "occluded_inputs", "occluded_per_row",
           "output_change"]


def reference_frame(run) -> pd.DataFrame:
    """One row holding the run's training medians / modes of every feature column.

    Read from the fitted preprocessing (``reference_values_``, recorded at fit); for a run saved
    before it was recorded, computed from the run's training split.

    Raises:
        tabcli.errors.DataError: If an older run's training file can no longer be split.
    """
    preprocessor = run.preprocessor
    values = getattr(preprocessor, "reference_values_", None)
    if values is None:
        values = reference_values(run.splits().train, list(run.schema.features))
        preprocessor.reference_values_ = values  # once per loaded run
    return pd.DataFrame({column: [values[column]] for column in run.schema.features})


def input_positions(preprocessor) -> dict[str, dict[str, list[int]]]:
    """Table column -> ``{"numerical": [...], "categorical": [...]}`` positions of the model
    inputs that carry it (a numerical column's value and missing indicator, a date's parts)."""
    positions: dict[str, dict[str, list[int]]] = {}
    for kind, names in (("numerical", preprocessor.numerical_names), ("categorical", preprocessor.categorical_names)):
        for index, name in enumerate(names):
            column = token_column(name)
            positions.setdefault(column, {"numerical": [], "categorical": []})[kind].append(index)
    return positions


def replace_columns(frame: pd.DataFrame, columns, reference: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with ``columns`` set to their value in the one-row ``reference``."""
    result = frame.copy()
    for column in columns:
        value = reference[column].iloc[0]
        result[column] = pd.Series([value] * len(result), index=result.index, dtype=reference[column].dtype)
    return result


def occluded_inputs(inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                    positions: dict[str, dict[str, list[int]]], columns: list[str]) -> dict[str, np.ndarray]:
    """Model inputs for ``len(columns)`` copies of the rows, copy ``c`` with column ``columns[c]``
    set to its reference value: each array ``(len(columns) * rows, ...)``, copies in order.

    Args:
        inputs: Model inputs ``{"numerical": (rows, n_num), "categorical": (rows, n_cat)}``.
        reference: The reference row's inputs, each ``(1, ...)``.
        positions: :func:`input_positions`.
        columns: The table columns to occlude, one per copy.
    """
    rows = len(next(iter(inputs.values())))
    return occluded_per_row(inputs, reference, positions, columns, np.tile(np.arange(len(columns)), (rows, 1)))


def occluded_per_row(inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                     positions: dict[str, dict[str, list[int]]], columns: list[str],
                     chosen: np.ndarray) -> dict[str, np.ndarray]:
    """Like :func:`occluded_inputs`, but copy ``s`` of row ``r`` occludes the column
    ``columns[chosen[r, s]]``: each array ``(slots * rows, ...)``, copies in order.

    Args:
        chosen: ``(rows, slots)`` int, column indices per row.
    """
    slots = chosen.shape[1]
    result = {}
    for kind, values in inputs.items():
        copies = np.repeat(values[None], slots, axis=0)  # (S, rows, n)
        if kind in ("numerical", "categorical"):
            for c, column in enumerate(columns):
                where = positions.get(column, {}).get(kind, [])
                if not where:
                    continue
                for slot in range(slots):
                    rows = np.flatnonzero(chosen[:, slot] == c)
                    if len(rows):
                        copies[slot][np.ix_(rows, where)] = reference[kind][0, where]
        result[kind] = copies.reshape(-1, *values.shape[1:])
    return result


def output_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """How far model outputs moved, per row: ``(rows, outputs)`` -> ``(rows,)``.

    One output (binary probability, or a regression value in standard deviations of the
    target): the absolute difference. Several (class probabilities): the total variation
    distance, half the L1 distance, in ``[0, 1]``.
    """
    difference = np.abs(np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64))
    if difference.shape[-1] == 1:
        return difference[..., 0]
    return 0.5 * difference.sum(axis=-1)
