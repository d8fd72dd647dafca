"""The columns of a DataFrame as an exported model takes them (``tabcli export``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabcli.data.preprocessing import as_category_strings

__all__ = ["export_inputs"]


def export_inputs(schema, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """One array per feature column of ``schema``, as the export's inputs are typed: numerical
    columns float64 ``(rows,)`` with NaN for missing (text that is not a number is missing too),
    categorical columns as text ``(rows,)`` with ``""`` for missing, each value written as
    training wrote it (:func:`~tabcli.data.preprocessing.as_category_strings`: ``2008.0`` is
    ``"2008"``, booleans ``"True"``/``"False"``).

    Args:
        schema: The run's :class:`~tabcli.data.schema.TableSchema`.
        frame: Rows holding at least the schema's feature columns.

    Raises:
        KeyError: If a feature column is missing from ``frame``.
    """
    columns = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64) for c in schema.numerical}
    if schema.categorical:
        text = as_category_strings(frame[list(schema.categorical)])
        for position, column in enumerate(schema.categorical):
            columns[column] = np.array(["" if pd.isna(v) else v for v in text[:, position]], dtype=str)
    return columns
