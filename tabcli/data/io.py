"""Read CSV, TSV and Parquet tables with pandas/pyarrow, with errors that name the file."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from pathlib import Path
from typing import Sequence

import pandas as pd

from tabcli.errors import DataError

__all__ = ["read_table", "SUPPORTED_SUFFIXES", "DELIMITERS"]

#: Field separators ``data.sep: auto`` chooses from (comma first on a tie).
DELIMITERS = (",", ";", "\t", "|")

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


def _sample_lines(path: Path, encoding: str, count: int = 50) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, newline="") as handle:
        return [line for _, line in zip(range(count), handle)]


def _detect_delimiter(lines: list[str]) -> str:
    """The delimiter of ``DELIMITERS`` that splits the sample into the most columns, the same
    number on every line (a quoted field may hold any of them); ``,`` if none does."""
    best, best_columns = ",", 1
    for delimiter in DELIMITERS:
        widths = Counter(len(row) for row in csv.reader(lines, delimiter=delimiter) if row)
        if not widths:
            continue
        width, lines_with_width = widths.most_common(1)[0]
        if width > best_columns and lines_with_width >= 0.9 * sum(widths.values()):
            best, best_columns = delimiter, width
    return best


def _separator(path: Path, fmt: str, sep: str, encoding: str) -> tuple[str, list[str]]:
    """The field separator to use and the file's first lines."""
    lines = _sample_lines(path, encoding)
    if sep == "auto":
        return ("\t" if fmt == "TSV" else _detect_delimiter(lines)), lines
    return ("\t" if sep in ("tab", "\\t") else sep), lines


def _check_header(lines: list[str], delimiter: str, path: Path, role: str) -> None:
    header = next(csv.reader(lines[:1], delimiter=delimiter), [])
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        where = {name: [i + 1 for i, n in enumerate(names) if n == name] for name in repeated}
        raise DataError(
            f"The {role} file '{path}' has more than one column named "
            + ", ".join(f"'{name}' (columns {', '.join(map(str, where[name]))})" for name in repeated)
            + ". Rename them so every column name is unique."
        )


def read_table(path: str | Path, na_values: Sequence[str] = (), role: str = "data", sep: str = "auto",
               encoding: str = "utf-8") -> pd.DataFrame:
    """Read one table into a DataFrame, choosing the reader from the file extension.

    CSV (``.csv``) and TSV (``.tsv``, ``.tab``; optionally gzipped) go through
    ``pandas.read_csv``; Parquet (``.parquet``, ``.pq``) through ``pandas.read_parquet`` with
    pyarrow. A CSV's separator is detected among ``,``, ``;`` (European spreadsheet exports),
    tab and ``|`` unless ``sep`` names it. ``na_values`` are extra strings read as missing, on top of pandas' defaults
    (``""``, ``NA``, ``NaN``, ...); for Parquet they are applied to string columns after
    reading (leading/trailing spaces ignored).

    Args:
        path: The file to read.
        na_values: Extra strings that mean "missing".
        role: What the file is for ("train", "test", ...), used in error messages.
        sep: Field separator of CSV/TSV files, or ``"auto"`` (``data.sep``).
        encoding: Text encoding of CSV/TSV files (``data.encoding``), e.g. ``cp1252`` for
            files saved by Excel on Windows.

    Returns:
        The table, one row per record, columns as in the file.

    Raises:
        DataError: If the file does not exist, is a folder, has an unknown extension, cannot
            be parsed or decoded with ``encoding``, repeats a column name, or holds no rows or
            no columns.
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
            delimiter, lines = _separator(path, fmt, sep, encoding)
            _check_header(lines, delimiter, path, role)
            frame = pd.read_csv(
                path,
                sep=delimiter,
                encoding=encoding,
                na_values=na_values or None,
                skipinitialspace=True,
                low_memory=False,
            )
    except UnicodeDecodeError as error:
        raise DataError(
            f"The {role} file '{path}' is not {encoding} text (byte {error.object[error.start:error.start + 1]!r} "
            f"at position {error.start}). Set `data.encoding` to its encoding, e.g. `data.encoding: cp1252` for "
            "files saved by Excel on Windows, or `latin-1`."
        ) from error
    except LookupError as error:
        raise DataError(f"`data.encoding: {encoding}` is not an encoding Python knows ({error}).") from error
    except (ValueError, OSError, pd.errors.ParserError, ImportError, csv.Error) as error:
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
