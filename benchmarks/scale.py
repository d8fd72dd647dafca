"""What the default model costs as the table grows: seconds per epoch, context freeze, prediction rate, memory.

Usage (from the repository root, ../shared/datasets beside it for California housing):

    python benchmarks/scale.py --rows 10000 100000 1000000 --models default context
    python benchmarks/scale.py --table synthetic --rows 1000000 --models default "default|model.retrieval.search=exact"

For each number of rows N and each model, one fresh process (so that its peak RSS is its own):

* writes the table once (``california``: the California housing rows tiled to N with 1 % Gaussian
  jitter on every number; ``synthetic``: 12 numerical and 8 categorical columns, a target from
  a few of them), and reads it through tabcli's own data path (split 64/16/20, preprocessing);
* builds the model as ``tabcli train`` does (``search``, ``step_candidates`` and the freeze
  resolved for N) and times ``--steps`` ``train_on_batch`` calls at batch 256 after 5 warm-up
  steps: ms per step, and an epoch as ms per step x training rows / 256;
* for a retrieval model: the index build (``search: index``) and the context freeze, through
  the index or exact, timed once; ms per step after the freeze;
* with ``--fit-steps S``, S more (untimed) training steps before the index is built: the keys
  a few steps from random weights are much harder to search than a trained model's (the
  index probes more lists to reach its recall), so predictions after 30 steps are a worst case;
* ``predict_model`` on 4 batches of 4,096 test rows (rows/s), as ``tabcli predict`` runs it;
* the size of ``model.keras`` plus the index files, and the process's peak RSS.

Prints one JSON line per measurement and a Markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
MODELS = {"default": {"type": "tabular_attention"}, "context": {"type": "tabular_attention", "inter_sample": "context"}}
BATCH = 256
PREDICT_BATCH = 4096


def write_table(kind: str, rows: int, path: Path, seed: int = 0) -> str:
    """Write an N-row Parquet table; returns its target column."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    if kind == "california":
        source = SHARED / "california_housing.parquet"
        if not source.is_file():
            sys.exit(f"{source} is missing: put ../shared/datasets beside the repository, or use --table synthetic.")
        base = pd.read_parquet(source)
        frame = base.iloc[rng.integers(0, len(base), size=rows)].reset_index(drop=True)
        numbers = frame.select_dtypes("number").columns
        frame[numbers] = frame[numbers] * (1 + 0.01 * rng.standard_normal((rows, len(numbers))))
        frame.to_parquet(path, index=False)
        return base.columns[-1]
    columns = {f"x{i}": rng.standard_normal(rows).astype("float32") for i in range(12)}
    for i in range(8):
        columns[f"c{i}"] = rng.integers(0, 4 + 3 * i, size=rows).astype(str)
    frame = pd.DataFrame(columns)
    signal = frame["x0"] * frame["x1"] + np.sin(2 * frame["x2"]) + (frame["c0"] == "1") - 0.5 * (frame["c3"] == "2")
    frame["target"] = (signal + 0.3 * rng.standard_normal(rows) > 0.2).map({True: "yes", False: "no"})
    frame.to_parquet(path, index=False)
    return "target"


def measure(path: Path, target: str, model: str, steps: int, out: Path, fit_steps: int = 0) -> dict:
    """One model on one table, in this process."""
    import numpy as np

    from tabcli.models.backends.quiet import import_keras_quietly

    import_keras_quietly()
    from tabcli.config import validate_config
    from tabcli.config.loader import apply_overrides
    from tabcli.data.prepare import prepare_data
    from tabcli.models.stored_rows import build_keras_model, resolve_retrieval
    from tabcli.models.key_indexes import build_indexes
    from tabcli.models.candidates import retrieval_layers, with_candidate_index
    from tabcli.models.spec import ModelSpec
    from tabcli.training.trainer import compile_model, configure_threads, fit_targets, predict_model, set_seeds

    name, *sets = model.split("|")
    raw = apply_overrides({"data": {"train": str(path), "target": target}, "seed": 0, "model": dict(MODELS[name])}, sets)
    config = validate_config(raw)
    configure_threads()
    set_seeds(0)
    started = time.perf_counter()
    data = prepare_data(config.data, seed=0)
    result = {"rows": len(data.targets["train"]) + len(data.targets["valid"]) + len(data.targets["test"]),
              "model": model, "prepare_s": round(time.perf_counter() - started, 1)}
    resolve_retrieval(config.model, len(data.targets["train"]))
    spec = ModelSpec.from_preprocessor(data.preprocessor, BATCH)
    keras_model, _, candidates = build_keras_model(config, data, spec)
    compile_model(keras_model, spec.task, config.training)
    retrieval = getattr(config.model, "retrieval", None) if config.model.inter_sample == "retrieval" else None
    if retrieval is not None:
        result.update(search=retrieval.search, step_candidates=retrieval.step_candidates,
                      candidates=len(candidates.labels))
    inputs = data.model_inputs("train")
    if candidates is not None:
        inputs = with_candidate_index(keras_model, inputs, candidates.training_index())
    targets = fit_targets(spec.task, data.targets["train"])
    rng = np.random.default_rng(0)

    def step_ms(count: int) -> float:
        batches = [rng.integers(0, len(targets), size=BATCH) for _ in range(count)]
        began = time.perf_counter()
        for rows in batches:
            keras_model.train_on_batch({k: v[rows] for k, v in inputs.items()}, targets[rows])
        return 1000 * (time.perf_counter() - began) / count

    step_ms(5)
    result["ms_per_step"] = round(step_ms(steps), 1)
    result["s_per_epoch"] = round(result["ms_per_step"] * len(targets) / BATCH / 1000, 1)
    if fit_steps:
        step_ms(fit_steps)
        result["fit_steps"] = fit_steps
    if retrieval is not None:
        began = time.perf_counter()
        if retrieval.search == "index":
            build_indexes(keras_model, 0)
            result["index_build_s"] = round(time.perf_counter() - began, 1)
        began = time.perf_counter()
        for layer in retrieval_layers(keras_model):
            layer.freeze_contexts()
        result["freeze_s"] = round(time.perf_counter() - began, 1)
        step_ms(3)
        result["ms_per_step_frozen"] = round(step_ms(steps), 1)
        for layer in retrieval_layers(keras_model):
            layer.unfreeze_contexts()
        if retrieval.search == "index":
            build_indexes(keras_model, 0)
    test = {k: v[:PREDICT_BATCH * 4] for k, v in data.model_inputs("test").items()}
    predict_model(keras_model, {k: v[:PREDICT_BATCH] for k, v in test.items()}, PREDICT_BATCH)
    began = time.perf_counter()
    predict_model(keras_model, test, PREDICT_BATCH)
    result["predict_rows_per_s"] = int(len(next(iter(test.values()))) / (time.perf_counter() - began))
    keras_model.save(out / "model.keras")
    size = (out / "model.keras").stat().st_size
    if retrieval is not None and retrieval.search == "index":
        from tabcli.models.key_indexes import save_indexes

        save_indexes(keras_model, out / "index")
        size += sum(p.stat().st_size for p in (out / "index").iterdir())
    result["run_mb"] = round(size / 2**20, 1)
    result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--models", nargs="+", default=["default", "context"],
                        help="default, context, or either with |key=value overrides")
    parser.add_argument("--table", choices=["california", "synthetic"], default="california")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--fit-steps", type=int, default=0, help="untimed training steps before the index and predictions")
    parser.add_argument("--one", nargs=3, metavar=("TABLE", "TARGET", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(measure(Path(args.one[0]), args.one[1], args.one[2], args.steps, Path(folder), args.fit_steps)),
                  flush=True)
        return
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            path = Path(folder) / f"{args.table}-{rows}.parquet"
            target = write_table(args.table, rows, path)
            for model in args.models:
                done = subprocess.run([sys.executable, __file__, "--one", str(path), target, model, "--steps", str(args.steps),
                                       "--fit-steps", str(args.fit_steps)],
                                      capture_output=True, text=True)
                lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                if done.returncode or not lines:
                    print(f"{model} at {rows} rows failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                    continue
                results.append(json.loads(lines[-1]))
                print(lines[-1], flush=True)
    print("\n| rows | model | search | ms/step | s/epoch | freeze s | ms/step frozen | predict rows/s | run MB | peak RSS GB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['rows']:,} | {r['model']} | {r.get('search', '-')} | {r['ms_per_step']} | {r['s_per_epoch']} "
              f"| {r.get('freeze_s', '-')} | {r.get('ms_per_step_frozen', '-')} | {r['predict_rows_per_s']:,} "
              f"| {r['run_mb']} | {r['peak_rss_gb']} |")


if __name__ == "__main__":
    main()
