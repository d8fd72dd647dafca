"""``tabcli predict``: predictions of a trained run for an (unlabelled) file or folder of any size.

The table is read, preprocessed, predicted and written a chunk of rows at a time
(:class:`~tabcli.data.chunks.TableChunks`), so memory depends on the chunk size, not on the
table. A row's prediction does not depend on the other rows of its chunk, and the model gets
the rows in the batches it gets when the whole table is predicted at once (:class:`_AlignedRows`),
so the output is the whole table's, to the last bit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from tabcli.data.chunks import DEFAULT_CHUNK_ROWS, Progress, TableChunks
from tabcli.data.conform import check_known_columns
from tabcli.data.dataset import parquet_files, parse_shard, take_shard
from tabcli.data.schema import infinite_value_counts, infinite_value_notes_from_counts
from tabcli.errors import ConfigError, DataError
from tabcli.prediction.tables import prediction_table
from tabcli.runs.run import LoadedRun
from tabcli.runs.run_dir import write_atomic

__all__ = ["predict_file", "PredictSummary", "OUTPUT_FORMATS"]

OUTPUT_FORMATS = (".csv", ".parquet")


@dataclass
class PredictSummary:
    """What :func:`predict_file` wrote.

    Attributes:
        output: The predictions file.
        rows: Rows predicted (one output row each).
        class_counts: For classification, predicted class label -> number of rows.
    """

    output: Path
    rows: int = 0
    class_counts: Counter = field(default_factory=Counter)


class _PredictionWriter:
    """Appends prediction tables to one CSV (header once) or Parquet file (a row group per table,
    all with the schema of the first)."""

    def __init__(self, path: Path):
        self.path, self._handle, self._parquet = path, None, None

    def write(self, table: pd.DataFrame) -> None:
        if self.path.suffix.lower() == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._parquet is None:
                arrow = pa.Table.from_pandas(table, preserve_index=False)
                self._parquet = pq.ParquetWriter(self.path, arrow.schema)
            else:
                arrow = pa.Table.from_pandas(table, schema=self._parquet.schema, preserve_index=False)
            self._parquet.write_table(arrow)
        else:
            first = self._handle is None
            if first:
                self._handle = open(self.path, "w", encoding="utf-8", newline="")
            table.to_csv(self._handle, header=first, index=False)

    def close(self) -> None:
        for closable in (self._parquet, self._handle):
            if closable is not None:
                closable.close()


class _AlignedRows:
    """Collects the model inputs (and id values) of consecutive chunks and hands them on in runs
    of whole model batches (``batch_rows``, the run's ``training.eval_batch_size``), so every model
    batch holds the rows it holds when the whole table is predicted at once: a batch's shape
    changes the last bits of float32 results, and the output must not depend on the chunk size."""

    def __init__(self, batch_rows: int):
        self.batch_rows = batch_rows
        self._parts: list[tuple[dict, np.ndarray | None]] = []
        self._rows = 0

    def _merged(self) -> tuple[dict, np.ndarray | None]:
        inputs = {name: np.concatenate([part[name] for part, _ in self._parts]) for name in self._parts[0][0]}
        ids = None if self._parts[0][1] is None else np.concatenate([ids for _, ids in self._parts])
        return inputs, ids

    def add(self, inputs: dict[str, np.ndarray], ids: np.ndarray | None) -> Iterator[tuple[dict, np.ndarray | None]]:
        """Take one chunk's rows; yield the whole batches now complete (as one run, or nothing)."""
        self._parts.append((inputs, ids))
        self._rows += len(next(iter(inputs.values())))
        ready = self._rows - self._rows % self.batch_rows
        if ready:
            inputs, ids = self._merged()
            yield {k: v[:ready] for k, v in inputs.items()}, None if ids is None else ids[:ready]
            self._parts = [({k: v[ready:] for k, v in inputs.items()}, None if ids is None else ids[ready:])]
            self._rows -= ready

    def rest(self) -> Iterator[tuple[dict, np.ndarray | None]]:
        """Yield the rows left after the last whole batch, if any."""
        if self._rows:
            yield self._merged()


def _check_paths(data: Path, output: Path, overwrite: bool) -> None:
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"--output must end in {' or '.join(OUTPUT_FORMATS)}; received '{output}'.")
    if output.exists() and output.resolve() == data.resolve():
        raise ConfigError(f"--output '{output}' is the input file; choose another path so the data is not overwritten.")
    if output.exists() and not overwrite:
        raise ConfigError(f"'{output}' already exists; pass --overwrite to replace it, or choose another --output.")
    if data.is_dir() and output.suffix.lower() == ".parquet" and output.resolve().is_relative_to(data.resolve()):
        raise ConfigError(f"--output '{output}' is inside the input folder '{data}', where it would be read as data "
                          "next time; write it elsewhere.")


def _shard_files(data: Path, shard: str, parts: tuple[int, int]) -> list[Path]:
    """The files of ``--shard K/N`` (``parts``) of the folder ``data``."""
    k, n = parts
    if not data.is_dir():
        raise ConfigError(f"--shard {shard} splits a folder of Parquet files into N parts; '{data}' is a single file. "
                          "Leave --shard out, or give a folder.")
    files = parquet_files(data, "input")
    chosen = take_shard(files, (k, n))
    if not chosen:
        raise ConfigError(f"--shard {shard}: the folder '{data}' holds {len(files)} Parquet file(s), so shard {k} of {n} "
                          f"would be empty; split it into at most {len(files)} parts.")
    return chosen


def predict_file(
    run_dir: str | Path, data: str | Path, output: str | Path, id_column: str | None = None, overwrite: bool = False,
    notes: list[str] | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS, shard: str | None = None,
    progress: Progress | None = None,
) -> PredictSummary:
    """Predict every row of ``data`` with a trained run and write the predictions, a chunk at a time.

    The output has one row per input row, in input order (a folder's files in sorted path
    order): the ``id_column`` (if given), ``prediction`` (class label or value in the target's
    units) and, for classification, one ``proba_<class>`` column per class. The target column
    may be absent. Unseen categories and missing values are handled as in training. The file
    is written under a temporary name beside ``output`` and renamed when complete, so a failure
    or an interruption leaves no partial output and an earlier ``output`` untouched.

    Args:
        run_dir: A completed run directory.
        data: CSV/TSV/Parquet file, or folder of Parquet files, with the training feature columns.
        output: ``.csv`` or ``.parquet`` file to write.
        id_column: A column of ``data`` copied to the output (e.g. a customer id).
        overwrite: Replace ``output`` if it exists.
        notes: If given, remarks for the user are appended to it (e.g. infinite values read
            as missing).
        chunk_rows: Rows read, predicted and written at a time; peak memory grows with it.
        shard: ``"K/N"``: predict only the K-th of N disjoint parts of the folder ``data`` (its
            sorted files, round-robin), so N processes can share a folder.
        progress: Called after each chunk (:data:`tabcli.data.chunks.Progress`).

    Returns:
        A :class:`PredictSummary`.

    Raises:
        ConfigError: For an unsupported output extension, an existing output without
            ``overwrite``, an output path equal to the input (or a Parquet output inside the
            input folder), or a malformed or empty ``shard``.
        DataError: For missing feature columns, a numerical column holding text, an unknown
            ``id_column``, or an unreadable or empty table.
    """
    output, data = Path(output), Path(data)
    parts = None if shard is None else parse_shard(shard)
    if chunk_rows < 1:
        raise ConfigError(f"--chunk-rows must be at least 1; received {chunk_rows}.")
    _check_paths(data, output, overwrite)
    files = None if parts is None else _shard_files(data, shard, parts)
    run = LoadedRun(run_dir)
    settings, schema = run.config.data, run.schema
    chunks = TableChunks(data, settings.na_values, role="input", sep=settings.sep, encoding=settings.encoding,
                         chunk_rows=chunk_rows, pinned=[*schema.categorical, *([id_column] if id_column else [])],
                         files=files)
    what = f"'{data}'"
    if id_column is not None and id_column not in chunks.columns:
        raise DataError(f"--id-column '{id_column}' is not a column of '{data}'. Available columns: {chunks.columns}.")
    extra = [id_column] if id_column else []
    run.preprocessor.check_columns(chunks.columns, what)  # before a long read, not after
    check_known_columns(chunks.columns, schema, what, extra)
    chunks.scan(progress)
    summary, infinite = PredictSummary(output=output), Counter()

    def predict(inputs: dict[str, np.ndarray], ids: np.ndarray | None, writer: _PredictionWriter) -> None:
        table = prediction_table(run.preprocessor, run.predict_inputs(inputs))
        if ids is not None:
            table.insert(0, id_column, ids)
        writer.write(table)
        summary.rows += len(table)
        if schema.task != "regression":
            summary.class_counts.update(table["prediction"].value_counts().to_dict())
        if progress is not None:
            progress("predicting", summary.rows, chunks.completed, chunks.total)

    def write(tmp: Path) -> None:
        writer, aligned = _PredictionWriter(tmp), _AlignedRows(run.config.training.eval_batch_size)
        try:
            for frame in chunks:
                infinite.update(infinite_value_counts(frame, schema.numerical))
                ids = frame[id_column].to_numpy() if id_column is not None else None
                for inputs, batch_ids in aligned.add(run.inputs(frame, what, extra), ids):
                    predict(inputs, batch_ids, writer)
            for inputs, batch_ids in aligned.rest():
                predict(inputs, batch_ids, writer)
        finally:
            writer.close()

    write_atomic(output, write)
    if notes is not None:
        notes.extend(infinite_value_notes_from_counts(infinite, what))
    return summary
