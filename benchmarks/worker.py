"""One benchmark cell in its own process: train a model on a table with each seed, measure it.

Usage (``benchmarks/run.py`` calls this; run it by hand to reproduce a single cell):

    python benchmarks/worker.py --dataset bank_marketing --model tabular_attention --seeds 42 43 44 \
        --out /tmp/bench/runs/bank_marketing [--set training.epochs=5]

The seeds of a cell share one process, so TensorFlow is imported once per cell rather than once
per seed (about 4 s each time on the benchmark machine); every seed gets a fresh Keras session.

tabcli's families and ``gbdt`` train through :func:`tabcli.training.train.train_experiment`, the
code behind ``tabcli train``, and are then reloaded from their run directory for the throughput
measurement, as ``tabcli predict`` would. The reference FT-Transformer uses the same data
preparation, trainer (AdamW, early stopping) and metrics, with its own stock-Keras model.

Writes ``result.json`` in ``--out``: the test/valid metrics, fit wall time (s), epochs trained
and best epoch, seconds per epoch (median over the epochs after the first, which also traces
the graphs; validation included), prediction
throughput (rows/s with batches of 4096 rows, preprocessed inputs, after one warm-up call; first
seed of the cell only, None for the others),
peak resident memory of the process so far (MiB, framework included: the high-water mark after
this seed, so the later seeds of a cell report the cell's peak) and the parameter count.
Each seed's record goes to ``--out/<model>-<seed>/result.json`` as soon as it finishes.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from suite import DATASETS, FT_TRANSFORMER, REPO, THROUGHPUT_BATCH, VARIANTS  # noqa: E402


def _config(dataset: str, model: str, seed: int, sets: list[str]):
    from tabcli.config import load_config

    spec = DATASETS[dataset]
    # The FT-Transformer is not a tabcli family: its config borrows a valid model section ("mlp")
    # and uses only the data and training sections.
    family, variant = VARIANTS.get(model, (model, []))
    overrides = [f"seed={seed}", "output.save_attention=false", "output.tensorboard=false",
                 f"model={{type: {'mlp' if family == 'ft_transformer' else family}}}", *variant]
    if spec.data is not None:
        overrides.append(f"data.train={spec.data}")
    return load_config(REPO / spec.config, overrides=[*overrides, *sets], cwd=REPO)


def _steady_epoch_seconds(history) -> float | None:
    """Median seconds of the epochs after the first (which also traces the graphs); None
    without per-epoch times (``gbdt``)."""
    if "seconds" not in history:
        return None
    seconds = history["seconds"].to_numpy()
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


def _tile(inputs: dict, rows: int) -> dict:
    """Repeat the rows of ``inputs`` until there are at least ``rows`` of them."""
    n = len(next(iter(inputs.values())))
    reps = max(1, -(-rows // n))
    return {k: np.concatenate([v] * reps)[: max(rows, n)] for k, v in inputs.items()}


def _throughput(predict, inputs: dict) -> float:
    """Rows per second of ``predict`` over at least 4 batches of ``THROUGHPUT_BATCH`` rows."""
    tiled = _tile(inputs, 4 * THROUGHPUT_BATCH)
    predict({k: v[:THROUGHPUT_BATCH] for k, v in tiled.items()})  # warm-up (tracing)
    started = time.perf_counter()
    predict(tiled)
    return len(next(iter(tiled.values()))) / (time.perf_counter() - started)


def _tabcli_model(config, out: Path, measure_throughput: bool) -> dict:
    from tabcli.training.train import train_experiment
    from tabcli.runs.run import LoadedRun

    result = train_experiment(config, run_dir=out / "run")
    run = LoadedRun(result.run_dir)
    if not measure_throughput:
        predict = None
    else:
        model, spec = run.model, run.model_spec()

        def predict(x):  # as `tabcli predict` runs it
            return run.backend.predict(model, x, spec, THROUGHPUT_BATCH)
    return {
        "task": result.task,
        "metrics": result.metrics,
        "fit_seconds": result.seconds,
        "epochs": result.epochs,
        "best_epoch": run.info.get("best_epoch"),
        "seconds_per_epoch": _steady_epoch_seconds(pd.read_csv(run.path / "history.csv")),
        "parameters": run.info.get("parameters"),
        "throughput": _throughput(predict, run.inputs(run.test_frame())) if predict else None,
    }


def _ft_transformer(config, measure_throughput: bool) -> dict:
    from tabcli.models.backends.quiet import import_keras_quietly

    import_keras_quietly()
    from ft_transformer import build_ft_transformer

    from tabcli.data.prepare import prepare_data
    from tabcli.training.train import best_epoch, split_metrics
    from tabcli.models.spec import ModelSpec
    from tabcli.training.trainer import compile_model, configure_threads, fit_model, predict_model, set_seeds

    data = prepare_data(config.data, seed=config.seed)
    schema = data.schema
    configure_threads()
    set_seeds(config.seed)
    model = build_ft_transformer(ModelSpec.from_preprocessor(data.preprocessor), **FT_TRANSFORMER)
    compile_model(model, schema.task, config.training)
    started = time.perf_counter()
    history = fit_model(model, schema.task, (data.model_inputs("train"), data.targets["train"]),
                        (data.model_inputs("valid"), data.targets["valid"]), config.training)
    seconds = time.perf_counter() - started
    metrics, _, _ = split_metrics(data, lambda inputs, split, rows=None: predict_model(model, inputs, config.training.eval_batch_size),
                                  seed=config.seed)
    return {
        "task": schema.task,
        "metrics": metrics,
        "fit_seconds": seconds,
        "epochs": len(history),
        "best_epoch": best_epoch(history),
        "seconds_per_epoch": _steady_epoch_seconds(history),
        "parameters": int(model.count_params()),
        "throughput": _throughput(lambda x: predict_model(model, x, THROUGHPUT_BATCH), data.model_inputs("test"))
        if measure_throughput else None,
    }


def run_one(dataset: str, model: str, seed: int, out: Path, sets: list[str], measure_throughput: bool = True) -> dict:
    """Train ``model`` on ``dataset`` with ``seed``, measure it, write ``out/result.json``.

    ``measure_throughput=False`` records ``throughput_rows_per_s`` as None: the cell measures it
    on its first seed only (the model's architecture, hence its speed, does not depend on the
    seed; reloading the run and predicting 16,384 rows took 1.4-3.6 s per tabular_attention run,
    measured on California housing, diabetes and bank marketing).

    Returns:
        The result record (see the module docstring); ``task`` and ``metric`` name the primary
        metric (:data:`tabcli.evaluation.metrics.PRIMARY_METRIC`).
    """
    from tabcli.evaluation.metrics import PRIMARY_METRIC, scalar_metrics

    out.mkdir(parents=True, exist_ok=True)
    config = _config(dataset, model, seed, sets)
    measured = (_ft_transformer(config, measure_throughput) if model == "ft_transformer"
                else _tabcli_model(config, out, measure_throughput))
    task = measured["task"]
    metric, higher_is_better = PRIMARY_METRIC[task]
    record = {
        "dataset": dataset,
        "model": model,
        "seed": seed,
        "task": task,
        "metric": metric,
        "higher_is_better": higher_is_better,
        "test": measured["metrics"]["test"][metric],
        "valid": measured["metrics"]["valid"][metric],
        "test_metrics": scalar_metrics(measured["metrics"]["test"]),
        "fit_seconds": measured["fit_seconds"],
        "epochs": measured["epochs"],
        "best_epoch": measured["best_epoch"],
        "seconds_per_epoch": measured["seconds_per_epoch"],
        "throughput_rows_per_s": measured["throughput"],
        # ru_maxrss is in KiB on Linux
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "parameters": measured["parameters"],
        "settings": sets,
    }
    (out / "result.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--model", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True, help="The table's folder; each seed writes <model>-<seed>/.")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    args = parser.parse_args()
    for seed in args.seeds:
        if seed != args.seeds[0] and args.model != "gbdt":
            import keras

            keras.backend.clear_session(free_memory=True)
        run_one(args.dataset, args.model, seed, args.out / f"{args.model}-{seed}", args.sets,
                measure_throughput=seed == args.seeds[0])


if __name__ == "__main__":
    main()
