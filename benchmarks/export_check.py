"""Parity and speed of `tabcli export`: every run exported as a SavedModel and as ONNX, both
compared with the run's own predictions, and ONNX Runtime's rows per second beside the model's.

Usage (from the repository root; the ONNX part needs ``pip install '.[export]'``):

    python benchmarks/export_check.py --out /tmp/export-check                      # bundled tables x Keras families
    python benchmarks/export_check.py --out /tmp/x --run runs/bank --throughput    # runs already trained

Without ``--run``, trains one small run (``--epochs``, default 2) per bundled config in
``configs/<table>/<family>.yaml`` for every Keras family. For each run, the rows compared are the
run's test split plus three altered copies of its first rows: a missing number, a missing
category and a category never seen in training (where the table has those columns). Printed per
run: the largest absolute difference of the probabilities (classification) or the largest
relative difference of the predictions (regression) between each export and
:meth:`tabcli.api.Run.predict`, and whether every row gets the same class.

With ``--throughput``: rows per second at batch ``--batch`` (4,096) with one thread, for ONNX
Runtime on the exported file (raw columns in, preprocessing inside) and for the run's Keras model
as ``tabcli predict`` calls it (preprocessed inputs in), each the best of ``--repeats`` passes over
``--rows`` rows drawn from the test split. The thread limit is set before TensorFlow starts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def hard_rows(run, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` and three altered copies of its first rows: a missing number, a missing category,
    an unseen category (each where the table has such a column)."""
    odd = frame.head(3).copy()
    if run.schema.numerical:
        odd.loc[odd.index[0], run.schema.numerical[0]] = np.nan
    if run.schema.categorical:
        column = run.schema.categorical[0]
        odd[column] = odd[column].astype(object)
        odd.loc[odd.index[1], column] = np.nan
        odd.loc[odd.index[2], column] = "never seen in training"
    return pd.concat([frame, odd], ignore_index=True)


def difference(task: str, expected: pd.DataFrame, got: np.ndarray) -> tuple[float, bool]:
    """Largest |Δp| and class agreement (classification), or the largest relative error and True
    (regression), of ``got`` against ``expected`` (:meth:`tabcli.api.Run.predict`'s frame)."""
    if task == "regression":
        want, got = expected["prediction"].to_numpy(np.float64), np.asarray(got, dtype=np.float64).reshape(-1)
        return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-9))), True
    want = expected.filter(like="proba_").to_numpy()
    return float(np.abs(got - want).max()), bool((got.argmax(1) == want.argmax(1)).all())


def train_grid(out: Path, epochs: int) -> list[Path]:
    """One small run per bundled ``configs/<table>/<family>.yaml`` of a Keras family."""
    from tabcli.models.registry import FAMILIES

    keras_families = {name for name, entry in FAMILIES.items() if entry.backend == "keras"}
    runs = []
    for config in sorted((REPO / "configs").glob("*/*.yaml")):
        if config.parent.name == "benchmarks" or config.stem not in keras_families:
            continue
        run_dir = out / f"{config.parent.name}-{config.stem}"
        if not (run_dir / "metrics.json").is_file():
            subprocess.run([sys.executable, "-m", "tabcli", "train", str(config), "--run-dir", str(run_dir), "--quiet",
                            "--set", f"training.epochs={epochs}"], check=True, cwd=REPO)
        runs.append(run_dir)
    return runs


def export(run_dir: Path, output: Path, kind: str) -> float:
    """``tabcli export`` in a child process; returns its wall seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tabcli", "export", str(run_dir), "--output", str(output), "--format", kind,
                    "--overwrite"], check=True, cwd=REPO, capture_output=True)
    return time.perf_counter() - started


def rows_per_second(call, rows: int, batch: int, repeats: int) -> float:
    """Best of ``repeats`` passes of ``call(start, stop)`` over ``rows`` rows, ``batch`` at a time."""
    call(0, min(batch, rows))  # warm-up: tracing, session start
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        for start in range(0, rows, batch):
            call(start, min(start + batch, rows))
        best = min(best, time.perf_counter() - started)
    return rows / best


def check(run_dir: Path, out: Path, args) -> dict:
    """Export ``run_dir`` both ways and compare; with ``args.throughput`` also time both."""
    import onnxruntime as ort
    import tensorflow as tf

    import tabcli
    from tabcli.export.inputs import export_inputs

    run = tabcli.load_run(run_dir)
    frame = hard_rows(run, run.test_frame())
    expected = run.predict(frame)
    columns = export_inputs(run.schema, frame)
    saved, onnx_file = out / f"{run_dir.name}.savedmodel", out / f"{run_dir.name}.onnx"
    row = {"run": run_dir.name, "family": run.config.model.type, "task": run.schema.task, "rows": len(frame),
           "savedmodel s": round(export(run_dir, saved, "savedmodel"), 1), "onnx s": round(export(run_dir, onnx_file, "onnx"), 1)}
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    output = "prediction" if run.schema.task == "regression" else "probabilities"
    served = signature(**{k: tf.constant(v) for k, v in columns.items()})[output].numpy()
    row["savedmodel max Δ"], same_saved = difference(run.schema.task, expected, served)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = args.threads
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: (columns[i.name].astype(object) if i.type == "tensor(string)" else columns[i.name]) for i in session.get_inputs()}
    onnx_out = session.run([output], feeds)[0]
    row["onnx max Δ"], same_onnx = difference(run.schema.task, expected, onnx_out)
    row["same class"] = same_saved and same_onnx
    if args.throughput:
        picks = np.random.default_rng(0).integers(0, len(frame), args.rows)
        many = frame.iloc[picks].reset_index(drop=True)
        wide = export_inputs(run.schema, many)
        wide = {i.name: (wide[i.name].astype(object) if i.type == "tensor(string)" else wide[i.name]) for i in session.get_inputs()}
        row["onnx rows/s"] = round(rows_per_second(
            lambda a, b: session.run([output], {k: v[a:b] for k, v in wide.items()}), args.rows, args.batch, args.repeats))
        inputs = run.inputs(many)
        model, spec = run.model, run.model_spec()
        row["model rows/s"] = round(rows_per_second(
            lambda a, b: run.backend.predict(model, {k: v[a:b] for k, v in inputs.items()}, spec, args.batch),
            args.rows, args.batch, args.repeats))
        row["preprocessing + model rows/s"] = round(rows_per_second(
            lambda a, b: run.predict_raw(many.iloc[a:b]), args.rows, args.batch, args.repeats))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder for trained runs and exports.")
    parser.add_argument("--run", type=Path, action="append", help="A trained run (repeatable); default: train the grid.")
    parser.add_argument("--epochs", type=int, default=2, help="Epochs of each grid run.")
    parser.add_argument("--throughput", action="store_true", help="Also time ONNX Runtime and the Keras model.")
    parser.add_argument("--threads", type=int, default=1, help="Threads for TensorFlow and ONNX Runtime.")
    parser.add_argument("--batch", type=int, default=4096, help="Rows per call when timing.")
    parser.add_argument("--rows", type=int, default=32768, help="Rows timed per pass.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed passes (the best is kept).")
    args = parser.parse_args()
    os.environ["TABCLI_NUM_THREADS"] = str(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = args.run or train_grid(args.out, args.epochs)
    from tabcli.training.trainer import configure_threads

    configure_threads()
    rows = []
    for run_dir in runs:
        rows.append(check(Path(run_dir), args.out, args))
        print(rows[-1], flush=True)
    names = list(dict.fromkeys(k for row in rows for k in row))
    print("| " + " | ".join(names) + " |\n|" + "---|" * len(names))
    for row in rows:
        print("| " + " | ".join(f"{row.get(k, ''):.1e}" if "Δ" in k else f"{row.get(k, '')}" for k in names) + " |")


if __name__ == "__main__":
    main()
