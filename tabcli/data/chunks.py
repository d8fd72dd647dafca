"""Read a table a chunk of rows at a time, each row parsed as reading the whole table would.

Memory then depends on the chunk size, not on the table. CSV/TSV files go through
``pandas.read_csv(chunksize=...)`` with the options of :func:`tabcli.data.io.csv_options`;
Parquet files and folders through ``pyarrow.dataset`` record batches, regrouped into chunks of
exactly ``chunk_rows`` rows (row groups and files cut batches short).

``read_csv`` infers each column's type per chunk, where the whole table gives one type per
column: zip codes ``01234`` in a chunk without letters would become the number 1234, an integer
column with a gap in another chunk only would be integer here and float there. For the columns
whose values must not depend on that (categorical features, an id column copied to the
output), :meth:`TableChunks.scan` reads them once through and settles the type the whole table
has: text columns are then read as strings, numbers and booleans cast to the whole table's type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import pandas as pd

from tabcli.data.io import PARQUET_FOLDER, check_not_empty, csv_options, mask_na_values, read_errors, table_format

__all__ = ["TableChunks", "DEFAULT_CHUNK_ROWS", "Progress"]

#: Rows read, predicted and written at a time by default (tens of MB for a table of tens of columns).
DEFAULT_CHUNK_ROWS = 65_536

#: ``progress(phase, rows, completed, total)``: called after each chunk; ``completed`` and
#: ``total`` are in :attr:`TableChunks.unit` (``total`` None when unknown).
Progress = Callable[[str, int, float, Optional[float]], None]

_TEXT = "text"
_KINDS = {"empty": "missing", "boolean": "bool", "integer": "int", "floating": "float", "mixed-integer-float": "float"}


def _kind(values: pd.Series) -> str:
    """What a chunk of a column holds: ``missing`` (nothing), ``bool``, ``int``, ``float`` or
    text. A pandas extension type (``str``, nullable ``Int64``, ``category``) counts as text:
    the same in every chunk of a Parquet table, text in a CSV."""
    if not isinstance(values.dtype, np.dtype):
        return _TEXT
    return _KINDS.get(pd.api.types.infer_dtype(values, skipna=True), _TEXT)


def _whole_table_type(kinds: set[str], missing: bool) -> Optional[str]:
    """The type a column gets when the whole table is parsed at once, from the kinds of values
    its chunks held (``pandas.api.types.infer_dtype``) and whether any value was missing: text
    (any text, or booleans beside numbers), ``object`` (booleans with gaps), ``float64``
    (integers with gaps or beside floats), or None (every chunk already has it)."""
    if _TEXT in kinds or ("bool" in kinds and kinds & {"int", "float"}):
        return _TEXT
    if "bool" in kinds:
        return "object" if missing else None
    if "int" in kinds and (missing or "float" in kinds):
        return "float64"
    return None


class TableChunks:
    """A CSV/TSV/Parquet file or a folder of Parquet files, read ``chunk_rows`` rows at a time
    with a config's settings (``data.na_values``, ``data.sep``, ``data.encoding``).

    Iterating yields DataFrames of at most ``chunk_rows`` rows, in table order, columns as in
    the file. Call :meth:`scan` first when ``pinned`` columns are given.

    Args:
        path: The file, or a folder of Parquet files.
        na_values: Extra strings that mean "missing".
        role: What the table is for, used in error messages.
        sep: Field separator of CSV/TSV files, or ``"auto"``.
        encoding: Text encoding of CSV/TSV files.
        chunk_rows: Rows per chunk (>= 1).
        pinned: Columns whose values must be those of the whole table (see the module docstring).
        files: For a folder, the files to read (a shard); default every file.

    Attributes:
        columns: The table's column names.
        unit: ``"rows"`` (Parquet: the row count is in the metadata) or ``"bytes"`` (CSV/TSV:
            bytes of the file read, gzip-compressed bytes for ``.gz``).
        total: The table's size in ``unit``.
        completed: How much of ``total`` has been read so far.

    Raises:
        DataError: As :func:`tabcli.data.io.read_table`, naming the file.
    """

    def __init__(self, path: str | Path, na_values: Sequence[str] = (), role: str = "data", sep: str = "auto",
                 encoding: str = "utf-8", chunk_rows: int = DEFAULT_CHUNK_ROWS, pinned: Sequence[str] = (),
                 files: Sequence[Path] | None = None):
        self.path, self.role, self.encoding = Path(path), role, encoding
        self.na_values = [str(v) for v in na_values]
        self.chunk_rows = int(chunk_rows)
        self.format = table_format(self.path, role)
        self.completed = 0
        self._text: list[str] = []
        self._casts: dict[str, str] = {}
        with self._errors():
            if self.format in ("Parquet", PARQUET_FOLDER):
                from tabcli.data.dataset import open_parquet

                self._dataset = open_parquet(self.path, role, files)
                self.columns = [str(name) for name in self._dataset.schema.names]
                self.unit, self.total = "rows", self._dataset.count_rows()
                check_not_empty(self.path, role, self.total, len(self.columns))
            else:
                self._csv = csv_options(self.path, self.format, self.na_values, role, sep, encoding)
                self.columns = [str(name) for name in pd.read_csv(self.path, nrows=0, **self._csv).columns]
                self.unit, self.total = "bytes", self.path.stat().st_size
        self.pinned = [c for c in pinned if c in self.columns]

    def _errors(self):
        return read_errors(self.path, self.format, self.role, self.encoding)

    def _frames(self, columns: Sequence[str] | None = None, text: Sequence[str] = ()) -> Iterator[pd.DataFrame]:
        """The table's chunks as read (``columns`` only, if given; ``text`` columns as strings),
        advancing :attr:`completed`."""
        self.completed = 0
        if self.format in ("Parquet", PARQUET_FOLDER):
            import pyarrow as pa

            import pyarrow.dataset as ds

            pending, count = [], 0
            # By default pyarrow reads ahead (batches, files, and the bytes of whole files) on its
            # threads while the model, much slower than the reader, catches up, so its memory grows
            # with the table; read serially it stays flat (docs/benchmarks.md, "Predicting large files").
            batches = self._dataset.to_batches(
                columns=columns, batch_size=self.chunk_rows, use_threads=False, batch_readahead=1, fragment_readahead=1,
                fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
            )
            for batch in batches:
                pending.append(batch)
                count += batch.num_rows
                while count >= self.chunk_rows:
                    table = pa.Table.from_batches(pending)
                    rest = table.slice(self.chunk_rows)
                    pending, count = rest.to_batches(), rest.num_rows
                    self.completed += self.chunk_rows
                    yield mask_na_values(table.slice(0, self.chunk_rows).to_pandas(), self.na_values)
            if count:
                self.completed += count
                yield mask_na_values(pa.Table.from_batches(pending).to_pandas(), self.na_values)
            return
        gzipped = self.path.name.lower().endswith(".gz")
        with open(self.path, "rb") as raw, pd.read_csv(raw, chunksize=self.chunk_rows, usecols=columns,
                                                       dtype={c: str for c in text} or None,
                                                       compression="gzip" if gzipped else None, **self._csv) as reader:
            for frame in reader:
                self.completed = raw.tell()
                yield frame

    def scan(self, progress: Progress | None = None) -> None:
        """Read the ``pinned`` columns once through and settle the type each has in the whole
        table (nothing to do without pinned columns). Only those columns are kept, a chunk at a time."""
        if not self.pinned:
            return
        kinds: dict[str, set[str]] = {c: set() for c in self.pinned}
        missing: dict[str, bool] = dict.fromkeys(self.pinned, False)
        rows = 0
        with self._errors():
            for frame in self._frames(columns=self.pinned):
                for column in self.pinned:
                    kinds[column].add(_kind(frame[column]))
                    missing[column] = missing[column] or bool(frame[column].isna().any())
                rows += len(frame)
                if progress is not None:
                    progress("reading column types", rows, self.completed, self.total)
        settled = {c: _whole_table_type(kinds[c], missing[c]) for c in self.pinned}
        # Parquet columns have one type in every batch: only casts can be needed there.
        self._text = [c for c, kind in settled.items() if kind == _TEXT and self.format not in ("Parquet", PARQUET_FOLDER)]
        self._casts = {c: kind for c, kind in settled.items() if kind not in (None, _TEXT)}

    def __iter__(self) -> Iterator[pd.DataFrame]:
        rows = 0
        with self._errors():
            for frame in self._frames(text=self._text):
                if frame.empty:  # read_csv's only chunk of a file with a header and no rows
                    continue
                for column, dtype in self._casts.items():
                    if frame[column].dtype != dtype:
                        frame[column] = frame[column].astype(dtype)
                frame.columns = [str(c) for c in frame.columns]
                rows += len(frame)
                yield frame
        check_not_empty(self.path, self.role, rows, len(self.columns))
