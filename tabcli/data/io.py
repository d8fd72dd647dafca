"""Read CSV, TSV and Parquet tables (a file, or a folder of Parquet files) with pandas/pyarrow,
with errors that name the file."""

from __future__ import annotations

import contextlib
import csv
import gzip
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from tabcli.errors import DataError

__all__ = ["read_table", "read_with_settings", "table_format", "csv_options", "read_errors", "mask_na_values", "missing_text_mask", "check_not_empty",
           "SUPPORTED_SUFFIXES", "DELIMITERS", "PARQUET_FOLDER"]

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

#: The format name of a folder of Parquet files (a pyarrow dataset).
PARQUET_FOLDER = "Parquet folder"


#: The config key that names the file read in each role; other roles are paths given directly.
_CONFIG_KEYS = {"training": "data.train", "test": "data.test", "validation": "data.valid"}


def table_format(path: Path, role: str = "data") -> str:
    """``"CSV"``, ``"TSV"``, ``"Parquet"`` (by the file's extension) or :data:`PARQUET_FOLDER`.

    Raises:
        DataError: If ``path`` does not exist or a file's extension is not one tabcli reads.
    """
    if not path.exists():
        key = _CONFIG_KEYS.get(role)
        where = (f"Check {key} in the config (relative paths in a config file resolve against the config "
                 "file's folder)." if key else "Check the path given on the command line or to the function.")
        raise DataError(f"The {role} file '{path}' does not exist. {where}")
    if path.is_dir():
        return PARQUET_FOLDER
    name = path.name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUPPORTED_SUFFIXES[suffix]
    raise DataError(
        f"Cannot tell the format of '{path}' from its extension; tabcli reads "
        f"{', '.join(sorted(SUPPORTED_SUFFIXES))} files and folders of Parquet files. Rename the file or convert it."
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


def csv_options(path: Path, fmt: str, na_values: Sequence[str], role: str, sep: str, encoding: str) -> dict:
    """The keyword arguments of ``pandas.read_csv`` for a CSV/TSV file with a config's settings:
    the detected (or given) separator, the encoding, extra missing-value strings. Every reader of
    such a file (whole or in chunks) uses these, so a row is parsed the same way by each.

    Raises:
        DataError: If the file repeats a column name (or cannot be decoded: see :func:`read_errors`).
    """
    delimiter, lines = _separator(path, fmt, sep, encoding)
    _check_header(lines, delimiter, path, role)
    return {"sep": delimiter, "encoding": encoding, "na_values": [str(v) for v in na_values] or None,
            "skipinitialspace": True, "low_memory": False}


def missing_text_mask(series: pd.Series, na_values: Sequence[str] = ()):
    """bool ``(rows,)``: the cells of ``series`` that a CSV file's reader reads as missing: blank
    or space-only text, or (spaces aside) one of ``na_values``; None when ``series`` holds no
    text (numbers are never masked)."""
    if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        return None
    stripped = series.astype("string").str.strip()
    return ((stripped == "") | stripped.isin([str(v) for v in na_values])).fillna(False).to_numpy(dtype=bool)


def mask_na_values(frame: pd.DataFrame, na_values: Sequence[str]) -> pd.DataFrame:
    """``frame`` with the blank cells and ``na_values`` strings of its text columns read as
    missing (in place; :func:`missing_text_mask`): what ``read_csv`` does for CSV, applied to
    Parquet, so a table reads the same in either format."""
    for column in frame.columns:
        mask = missing_text_mask(frame[column], na_values)
        if mask is not None and mask.any():
            frame[column] = frame[column].mask(mask)
    return frame


@contextlib.contextmanager
def read_errors(path: Path, fmt: str, role: str, encoding: str) -> Iterator[None]:
    """Turn the errors of pandas/pyarrow readers into a :class:`DataError` naming ``path``, its
    format and, for text that cannot be decoded, the ``data.encoding`` key."""
    try:
        yield
    except UnicodeDecodeError as error:
        raise DataError(
            f"The {role} file '{path}' is not {encoding} text (byte {error.object[error.start:error.start + 1]!r} "
            f"at position {error.start}). Set `data.encoding` to its encoding, e.g. `data.encoding: cp1252` for "
            "files saved by Excel on Windows, or `latin-1`."
        ) from error
    except LookupError as error:
        raise DataError(f"`data.encoding: {encoding}` is not an encoding Python knows ({error}).") from error
    except (ValueError, OSError, pd.errors.ParserError, ImportError, csv.Error) as error:
        # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        what = "every file a valid Parquet file with the same columns" if fmt == PARQUET_FOLDER else \
            f"the file a valid {fmt} file (the format is chosen from the extension)"
        raise DataError(f"Cannot read the {role} file '{path}' as {fmt}: {first_line}. Check that {what}.") from error


def check_not_empty(path: Path, role: str, rows: int, columns: int) -> None:
    """Raise :class:`DataError` if a table read from ``path`` has no rows or no columns."""
    if rows == 0 or columns == 0:
        raise DataError(f"The {role} file '{path}' holds no data ({rows} rows, {columns} columns).")


def read_table(path: str | Path, na_values: Sequence[str] = (), role: str = "data", sep: str = "auto",
               encoding: str = "utf-8") -> pd.DataFrame:
    """Read one table into a DataFrame, choosing the reader from the file extension.

    CSV (``.csv``) and TSV (``.tsv``, ``.tab``; optionally gzipped) go through
    ``pandas.read_csv``; Parquet (``.parquet``, ``.pq``) through ``pandas.read_parquet`` with
    pyarrow; a folder of Parquet files (possibly hive-partitioned, ``year=2024/part-0.parquet``)
    through ``pyarrow.dataset``, its files in sorted path order (:mod:`tabcli.data.dataset`).
    A CSV's separator is detected among ``,``, ``;`` (European spreadsheet exports),
    tab and ``|`` unless ``sep`` names it. ``na_values`` are extra strings read as missing, on top of pandas' defaults
    (``""``, ``NA``, ``NaN``, ...); for Parquet they are applied to string columns after
    reading (leading/trailing spaces ignored).

    Args:
        path: The file or folder to read.
        na_values: Extra strings that mean "missing".
        role: What the file is for ("train", "test", ...), used in error messages.
        sep: Field separator of CSV/TSV files, or ``"auto"`` (``data.sep``).
        encoding: Text encoding of CSV/TSV files (``data.encoding``), e.g. ``cp1252`` for
            files saved by Excel on Windows.

    Returns:
        The table, one row per record, columns as in the file.

    Raises:
        DataError: If the path does not exist, has an unknown extension, is a folder without
            Parquet files, cannot be parsed or decoded with ``encoding``, repeats a column name,
            or holds no rows or no columns.
    """
    path = Path(path)
    fmt = table_format(path, role)
    with read_errors(path, fmt, role, encoding):
        if fmt == PARQUET_FOLDER:
            from tabcli.data.dataset import open_parquet

            frame = mask_na_values(open_parquet(path, role).to_table().to_pandas(), na_values)
        elif fmt == "Parquet":
            frame = mask_na_values(pd.read_parquet(path, engine="pyarrow"), na_values)
        else:
            frame = pd.read_csv(path, **csv_options(path, fmt, na_values, role, sep, encoding))
    check_not_empty(path, role, frame.shape[0], frame.shape[1])
    frame.columns = [str(c) for c in frame.columns]
    return frame


def read_with_settings(path: str | Path, settings, role: str = "data") -> pd.DataFrame:
    """:func:`read_table` with a config's ``data`` section (``na_values``, ``sep``, ``encoding``):
    how training reads its files, and how every command reads a table for a trained run, so a
    row is parsed the same way by each.

    Raises:
        DataError: As :func:`read_table`.
    """
    return read_table(path, settings.na_values, role=role, sep=settings.sep, encoding=settings.encoding)
