"""Folders of Parquet files read as one table (``pyarrow.dataset``), and their split into shards.

A folder's table is its ``*.parquet`` / ``*.pq`` files in sorted path order (sub-folders
included), so every reader sees its rows in the same order. Sub-folders named ``key=value``
(hive partitioning, as Spark, Hive and ``pyarrow.dataset.write_dataset`` write them) add a
column ``key``. Names starting with ``.`` or ``_`` (``_SUCCESS``, ``_metadata``, hidden
temporary files) are skipped, as pyarrow and Spark do.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from tabcli.errors import ConfigError, DataError

__all__ = ["PARQUET_SUFFIXES", "parquet_files", "open_parquet", "parse_shard", "take_shard"]

PARQUET_SUFFIXES = (".parquet", ".pq")


def parquet_files(folder: Path, role: str = "data") -> list[Path]:
    """The Parquet files of ``folder`` and its sub-folders, sorted by path.

    Raises:
        DataError: If the folder holds no Parquet file.
    """
    folder = Path(folder)
    files = sorted(
        path for path in folder.rglob("*")
        if path.suffix.lower() in PARQUET_SUFFIXES and path.is_file()
        and not any(part.startswith((".", "_")) for part in path.relative_to(folder).parts)
    )
    if not files:
        raise DataError(
            f"The {role} folder '{folder}' holds no Parquet files ({', '.join('*' + s for s in PARQUET_SUFFIXES)}, "
            "searched in its sub-folders too). Give a folder of Parquet files, or the path of one CSV, TSV or "
            "Parquet file."
        )
    return files


def open_parquet(path: Path, role: str = "data", files: Sequence[Path] | None = None):
    """A ``pyarrow.dataset.Dataset`` over one Parquet file or a folder of them.

    Args:
        path: A Parquet file, or a folder of Parquet files (hive partitions become columns).
        role: What the table is for, used in error messages.
        files: For a folder, the files to read in this order (a shard); default all of them
            (:func:`parquet_files`).

    Raises:
        DataError: If the folder holds no Parquet file.
        pyarrow.ArrowInvalid: If a file is not Parquet or the files' columns conflict.
    """
    import pyarrow.dataset as ds

    path = Path(path)
    if not path.is_dir():
        return ds.dataset(str(path), format="parquet")
    files = parquet_files(path, role) if files is None else list(files)
    # An explicit list keeps the sorted order; the base folder lets hive partitions be read.
    return ds.dataset([str(f) for f in files], format="parquet", partitioning="hive", partition_base_dir=str(path))


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)``: the K-th (1-based) of N parts.

    Raises:
        ConfigError: Naming ``--shard`` and the expected form, if ``text`` is not ``K/N`` with
            ``1 <= K <= N``.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ConfigError(
            f"--shard expects K/N, the K-th of N parts with 1 <= K <= N (e.g. --shard 2/4); received '{text}'."
        )
    return int(match.group(1)), int(match.group(2))


def take_shard(items: Sequence, shard: tuple[int, int]) -> list:
    """Part ``(K, N)`` of ``items``: every N-th item, starting with the K-th (1-based).

    Round-robin keeps the parts within one item of each other in size, and the N parts are
    disjoint and together hold every item, so N machines running the same command with
    ``--shard 1/N`` ... ``N/N`` (files of a folder to predict, runs of a batch) do each item
    exactly once. The caller fixes the order (sorted files, a sorted plan).
    """
    k, n = shard
    return list(items)[k - 1::n]
