"""Read CSV, TSV and Parquet tables with pandas/pyarrow, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from tabcli.errors import DataError

__all__ = ["read_table", "SUPPORTED_SUFFIXES"]

SUPPORTED_SUFFIXES = {
    ".csv": "CSV",
    ".csv.gz": "CSV",
    ".tsv": "TSV",
    ".tsv.gz": "TSV",
    ".tab": "TSV",
    ".parquet": "Parquet",
    ".pq": "Parquet",
}


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUPPORTED_SUFFIXES[suffix]
    raise DataError(
        f"Cannot tell the format of '{path}' from its extension; tabcli reads "
        f"{', '.join(sorted(SUPPORTED_SUFFIXES))}. Rename the file or convert it."
    )


def read_table(path: str | Path, na_values: Sequence[str] = (), role: str = "data") -> pd.DataFrame:
    """Read one table into a DataFrame, choosing the reader from the file extension.

    CSV (``.csv``) and TSV (``.tsv``, ``.tab``; optionally gzipped) go through
    ``pandas.read_csv``; Parquet (``.parquet``, ``.pq``) through ``pandas.read_parquet`` with
    pyarrow. ``na_values`` are extra strings read as missing, on top of pandas' defaults
    (``""``, ``NA``, ``NaN``, ...); for Parquet they are applied to string columns after
    reading (leading/trailing spaces ignored).

    Args:
        path: The file to read.
        na_values: Extra strings that mean "missing".
        role: What the file is for ("train", "test", ...), used in error messages.

    Returns:
        The table, one row per record, columns as in the file.

    Raises:
        DataError: If the file does not exist, is a folder, has an unknown extension, cannot
            be parsed, or holds no rows or no columns.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"The {role} file '{path}' does not exist. Check the path in the config "
            "(relative paths in a config file resolve against the config file's folder)."
        )
    if path.is_dir():
        raise DataError(f"The {role} path '{path}' is a folder; give the path of a CSV, TSV or Parquet file.")
    fmt = _format_of(path)
    na_values = [str(v) for v in na_values]
    try:
        if fmt == "Parquet":
            frame = pd.read_parquet(path, engine="pyarrow")
            if na_values:
                for column in frame.columns:
                    if pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(
                        frame[column]
                    ):
                        stripped = frame[column].astype("string").str.strip()
                        frame[column] = frame[column].mask(stripped.isin(na_values))
        else:
            frame = pd.read_csv(
                path,
                sep="\t" if fmt == "TSV" else ",",
                na_values=na_values or None,
                skipinitialspace=True,
                low_memory=False,
            )
    except (UnicodeDecodeError, ValueError, OSError, pd.errors.ParserError, ImportError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"Cannot read the {role} file '{path}' as {fmt}: {first_line}. Check that the file is "
            f"a valid {fmt} file (the format is chosen from the extension)."
        ) from error
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise DataError(
            f"The {role} file '{path}' holds no data ({frame.shape[0]} rows, {frame.shape[1]} columns)."
        )
    frame.columns = [str(c) for c in frame.columns]
    return frame
