"""The reading rules of a training file, applied to rows that arrive as a DataFrame or as records.

A training file is read by :func:`~tabcli.data.io.read_table`: cells that are blank or hold only
spaces are missing, and so are the config's ``data.na_values`` (CSV and Parquet alike); numbers are numbers. Rows given
to a trained run in memory (the Python API's DataFrames, ``tabcli serve``'s records, a frame from
``pd.read_csv`` without those settings) carry the same cells as text, e.g. a blank ``" "`` in a
numeric column. :func:`conform_frame` reads them by the same rules, so the same rows get the same
prediction through every door.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import pandas as pd

from tabcli.data.io import missing_text_mask
from tabcli.errors import DataError

__all__ = ["conform_frame", "check_known_columns", "is_missing_text"]

#: The name pandas gives a DataFrame's index stored in a Parquet file.
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def is_missing_text(value, na_values: frozenset[str] = frozenset()) -> bool:
    """Whether one cell is text that a training file's reader reads as missing (the rule of
    :func:`~tabcli.data.io.missing_text_mask` for one value): blank, only spaces, or (spaces
    aside) one of ``na_values``."""
    if not isinstance(value, str):
        return False
    stripped = value.strip()
    return stripped == "" or stripped in na_values


def check_known_columns(columns: Iterable[str], schema, what: str, extra: Sequence[str] = ()) -> None:
    """Refuse a column the training table did not have.

    Known columns are the features, the target and the columns the run ignores
    (``schema.dropped``: ``data.drop`` and the columns dropped while inferring the schema), plus
    ``extra`` (e.g. ``--id-column``). The target and ignored columns are accepted and not used.

    Raises:
        DataError: Naming the unknown columns and the known ones.
    """
    known = {*schema.features, schema.target, *schema.dropped, *extra}
    unknown = [str(c) for c in columns if str(c) not in known and not _PANDAS_INDEX.fullmatch(str(c))]
    if unknown:
        raise DataError(
            f"{what[:1].upper()}{what[1:]} has column(s) {unknown} that the training table did not have. "
            f"Remove them (the model uses {schema.features}; the target '{schema.target}'"
            + (f" and the ignored columns {sorted(schema.dropped)}" if schema.dropped else "")
            + " may be present)."
        )


def conform_frame(frame: pd.DataFrame, schema, na_values: Sequence[str] = (), what: str = "the data",
                  extra: Sequence[str] = ()) -> pd.DataFrame:
    """``frame`` read by the training file's rules: column names as text, unknown columns refused,
    and in every feature column that holds text, blank or space-only cells and ``na_values``
    missing (numbers written as text are converted by the preprocessing, as in training).

    Args:
        frame: Rows with (at least) the feature columns of ``schema``.
        schema: The run's :class:`~tabcli.data.schema.TableSchema`.
        na_values: The run's ``data.na_values``.
        what: How to name ``frame`` in error messages.
        extra: Further columns to accept (and leave as they are).

    Returns:
        ``frame`` itself when nothing changes, else a copy.

    Raises:
        DataError: If ``frame`` has a column the training table did not have.
    """
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    check_known_columns(frame.columns, schema, what, extra)
    changed = {}
    for column in schema.features:
        if column not in frame.columns:
            continue  # the preprocessing names every missing column at once
        mask = missing_text_mask(frame[column], na_values)
        if mask is not None and mask.any():
            changed[column] = frame[column].mask(mask)
    if not changed:
        return frame
    frame = frame.copy()
    for column, series in changed.items():
        frame[column] = series
    return frame
