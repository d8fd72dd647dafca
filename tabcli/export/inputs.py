"""The columns of a DataFrame as an exported model takes them (``tabcli export``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tabcli.data.preprocessing import as_category_strings

__all__ = ["export_inputs", "input_names"]


def input_names(columns: Sequence[str]) -> dict[str, str]:
    """The exported model's input name of each column: the column's own name where TensorFlow
    keeps it as a SavedModel signature key (a letter, then letters, digits and ``_``); otherwise
    every other character becomes ``_``, a name that does not start with a letter gets the prefix
    ``c_``, and a name already taken gets ``_2``, ``_3``... (``"Bill length (mm)"`` ->
    ``"Bill_length__mm_"``, ``"2nd"`` -> ``"c_2nd"``).

    TensorFlow turns a signature argument such as ``"a.b"`` into ``a_b`` itself and refuses
    ``"a b"`` outright, so the names are fixed here, once, and used by both formats (the ONNX
    graph's inputs are renamed to them).

    Args:
        columns: The feature columns, in the schema's order.

    Returns:
        ``{column: input name}`` for every column, the names distinct.
    """
    names, taken = {}, set()
    for column in columns:
        name = re.sub(r"[^A-Za-z0-9_]", "_", str(column))
        if not re.match(r"[A-Za-z]", name):
            name = f"c_{name}"
        candidate, suffix = name, 2
        while candidate in taken:
            candidate, suffix = f"{name}_{suffix}", suffix + 1
        names[column] = candidate
        taken.add(candidate)
    return names


def export_inputs(schema, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """One array per feature column of ``schema``, keyed by its input name (:func:`input_names`)
    and typed as the export's inputs are: numerical
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
    names = input_names(schema.features)
    columns = {names[c]: pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64) for c in schema.numerical}
    if schema.categorical:
        text = as_category_strings(frame[list(schema.categorical)])
        for position, column in enumerate(schema.categorical):
            columns[names[column]] = np.array(["" if pd.isna(v) else v for v in text[:, position]], dtype=str)
    return columns
