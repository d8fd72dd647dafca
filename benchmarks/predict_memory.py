"""Wall time, rows per second and peak memory of `tabcli predict` on a large synthetic Parquet file.

Usage (from the repository root):

    python benchmarks/predict_memory.py --rows 2000000                  # trains a penguins run first
    python benchmarks/predict_memory.py --run runs/penguins-... --rows 2000000 --chunk-rows 65536

Writes a Parquet file of ``--rows`` rows with the columns of the run's training table (rows drawn
at random, with replacement, from that table, plus a ``row_id`` column), written and never held
whole in memory; then runs ``tabcli predict RUN --data FILE --output OUT --id-column row_id`` as a
child process and prints its wall time, rows per second and peak resident memory (the child's
``ru_maxrss``, from ``os.wait4``). With a chunked predict the peak
depends on ``--chunk-rows``, not on ``--rows``: run it at two sizes to see it stay flat.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TINY_PENGUINS = ["training.epochs=5", "model.d_model=16", "model.num_heads=2", "model.num_feature_blocks=1"]


def _tabcli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tabcli", *args]


def write_synthetic(run: Path, rows: int, path: Path, piece_rows: int = 200_000, seed: int = 0) -> None:
    """Write ``rows`` rows drawn from the run's training table to ``path`` (Parquet), ``piece_rows``
    at a time, with a ``row_id`` column first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tabcli.data.io import read_table
    from tabcli.runs.run import LoadedRun

    data = LoadedRun(run).config.data
    source = read_table(data.train, data.na_values, role="training", sep=data.sep, encoding=data.encoding)
    source = source.drop(columns=[data.target])
    rng = np.random.default_rng(seed)
    writer = None
    try:
        for start in range(0, rows, piece_rows):
            count = min(piece_rows, rows - start)
            piece = source.iloc[rng.integers(0, len(source), count)].reset_index(drop=True)
            piece.insert(0, "row_id", np.arange(start, start + count, dtype=np.int64))
            table = pa.Table.from_pandas(piece, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="Run directory (default: train a small penguins run first).")
    parser.add_argument("--rows", type=int, default=2_000_000, help="Rows of the synthetic file.")
    parser.add_argument("--chunk-rows", type=int, default=65_536, help="tabcli predict --chunk-rows.")
    parser.add_argument("--output", choices=("parquet", "csv"), default="parquet", help="Format of the predictions file.")
    parser.add_argument("--keep", action="store_true", help="Keep the synthetic and predictions files.")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tabcli-predict-bench-"))
    run = args.run
    if run is None:
        run = folder / "run"
        overrides = [arg for item in TINY_PENGUINS for arg in ("--set", item)]
        subprocess.run(_tabcli("train", str(REPO / "configs/penguins/tabular_attention.yaml"), "--run-dir", str(run),
                               "--quiet", *overrides), check=True, cwd=REPO)
    data, output = folder / "synthetic.parquet", folder / f"predictions.{args.output}"
    started = time.perf_counter()
    write_synthetic(run, args.rows, data)
    print(f"wrote {args.rows:,} rows ({data.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    child = subprocess.Popen(_tabcli("predict", str(run), "--data", str(data), "--output", str(output), "--id-column",
                                     "row_id", "--chunk-rows", str(args.chunk_rows)),
                             cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    # wait4 gives this child's own peak, where RUSAGE_CHILDREN would include the training run.
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tabcli predict failed with exit code {os.waitstatus_to_exitcode(status)}")
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    print(f"tabcli predict: {args.rows:,} rows, chunk {args.chunk_rows:,} rows, {wall:.1f} s wall, "
          f"{args.rows / wall:,.0f} rows/s, peak RSS {peak_mb:,.0f} MB; cores: {os.cpu_count()}; run: {run}")
    if not args.keep:
        data.unlink()
        output.unlink()


if __name__ == "__main__":
    main()
