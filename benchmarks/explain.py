"""How faithful are ``tabcli explain``'s rankings? Planted features, trust checks on real tables, cost.

Three measurements, each printed as a Markdown table (and written as JSON with ``--out``):

* ``planted``: on :func:`planted.planted_table` (only ``alpha`` and ``beta`` decide the target),
  per family, task and seed: the test metric, the ranks of ``alpha`` and ``beta`` in the
  model's ranking (``importance.csv``) and in attention importance, and whether both are first.
* ``tables``: on the bundled tables and the shared benchmark tables, per family and seed: the
  Spearman correlation of each ranking (the model's, attention's) with permutation importance
  and the deletion check (metric drop with its top 3 columns at their training median / mode,
  against 3 random columns), from ``trust.json``.
* ``oracle`` (with ``--oracle``): the deletion check's ceiling, the largest drop over every set
  of 3 columns against the exact mean over all of them.
* ``cost``: seconds of :func:`tabcli.explain.ranking.model_ranking` against permutation
  importance (3 repeats) on the same rows (2,000 of the test split), per table.

Examples::

    python benchmarks/explain.py planted --seeds 0 1 2
    python benchmarks/explain.py tables --tables penguins breast_cancer diabetes --seeds 0 1 2
    python benchmarks/explain.py tables --tables california bank --set training.epochs=10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from planted import PLANTED, planted_table  # noqa: E402

#: Family name -> model section (``context`` is tabular_attention with context attention).
FAMILIES = {
    "tabular_attention": {"type": "tabular_attention"},
    "context": {"type": "tabular_attention", "inter_sample": "context"},
    "interpretable": {"type": "interpretable"},
    "multi_resolution": {"type": "multi_resolution"},
    "ensemble": {"type": "ensemble"},
    "mlp": {"type": "mlp"},
}
#: Table name -> (config, data file or None for the config's own).
TABLES = {
    "penguins": (REPO / "configs/penguins/tabular_attention.yaml", None),
    "breast_cancer": (REPO / "configs/breast_cancer/tabular_attention.yaml", None),
    "diabetes": (REPO / "configs/diabetes/tabular_attention.yaml", None),
    "california": (REPO / "configs/benchmarks/california_housing.yaml", SHARED / "california_housing.parquet"),
    "bank": (REPO / "configs/benchmarks/bank_marketing.yaml", SHARED / "bank_marketing.csv"),
}


def _overrides(sets: list[str]) -> dict:
    import yaml

    return {key.replace(".", "__"): yaml.safe_load(value) for key, value in (s.split("=", 1) for s in sets)}


def _ranks(table, column: str, key: str) -> dict:
    ordered = table.sort_values(key, ascending=False, kind="stable")["column"].tolist()
    return {name: ordered.index(name) + 1 for name in PLANTED}


def planted(args) -> list[dict]:
    import pandas as pd

    import tabcli
    from tabcli.explain.explain import explain_run

    results = []
    for task in args.tasks:
        for family in args.families:
            for seed in args.seeds:
                with tempfile.TemporaryDirectory() as folder:
                    path = Path(folder) / "planted.csv"
                    planted_table(task, rows=args.rows, seed=seed).to_csv(path, index=False)
                    config = {"data": {"train": str(path), "target": "target"}, "seed": seed, "model": FAMILIES[family]}
                    start = time.perf_counter()
                    run = tabcli.train(config, run_dir=Path(folder) / "run", **_overrides(args.set))
                    seconds = time.perf_counter() - start
                    result = explain_run(run.path)
                    table = pd.read_csv(result.output / "importance.csv")
                    row = {"task": task, "family": family, "seed": seed, "train_s": round(seconds, 1),
                           "test": run.metrics["test"].get("roc_auc", run.metrics["test"].get("rmse")),
                           "ranks": _ranks(table, "column", "importance")}
                    if table["attention_importance"].notna().all():
                        row["attention_ranks"] = _ranks(table, "column", "attention_importance")
                    row["planted_first"] = sorted(row["ranks"].values()) == [1, 2]
                    row["spearman"] = result.trust.get("importance", {}).get("spearman_with_permutation")
                    print(json.dumps(row), flush=True)
                    results.append(row)
    print("\n| task | family | seed | test metric | ranks of alpha, beta | planted first | attention ranks |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        attention = r.get("attention_ranks")
        attention = "-" if attention is None else f"{attention['alpha']}, {attention['beta']}"
        print(f"| {r['task']} | {r['family']} | {r['seed']} | {r['test']:.3f} | {r['ranks']['alpha']}, {r['ranks']['beta']} "
              f"| {'yes' if r['planted_first'] else 'no'} | {attention} |")
    return results


def tables(args) -> list[dict]:
    import tabcli
    from tabcli.explain.explain import explain_run

    results = []
    for name in args.tables:
        config, data = TABLES[name]
        if data is not None and not data.exists():
            print(f"skipping {name}: {data} not found", flush=True)
            continue
        for family in args.families:
            for seed in args.seeds:
                with tempfile.TemporaryDirectory() as folder:
                    # The default model is the table's own config as shipped; other families replace it.
                    model = {} if family == "tabular_attention" else {"model": FAMILIES[family]}
                    overrides = {"seed": seed, **model, **_overrides(args.set)}
                    if data is not None:
                        overrides["data__train"] = str(data)
                    start = time.perf_counter()
                    run = tabcli.train(config, run_dir=Path(folder) / "run", **overrides)
                    seconds = time.perf_counter() - start
                    result = explain_run(run.path)
                    row = {"table": name, "family": family, "seed": seed, "train_s": round(seconds, 1), **{
                        f"{ranking}_{key}": check[key] for ranking, check in result.trust.items()
                        for key in ("spearman_with_permutation", "top_drop", "random_drop", "ratio", "passes")}}
                    if args.cost:
                        row.update(_cost(run.path))
                    if args.oracle:
                        row.update(_oracle(run.path))
                    print(json.dumps(row), flush=True)
                    results.append(row)

    def fmt(value, spec=".2f"):
        return "-" if value is None else format(value, spec)

    print("\n| table | family | seed | Spearman (ranking) | top-3 drop / random drop (ratio) | Spearman (attention) | attention top-3 drop (ratio) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['table']} | {r['family']} | {r['seed']} | {fmt(r.get('importance_spearman_with_permutation'))} "
              f"| {fmt(r.get('importance_top_drop'), '.4f')} / {fmt(r.get('importance_random_drop'), '.4f')} ({fmt(r.get('importance_ratio'), '.1f')}x) "
              f"| {fmt(r.get('attention_spearman_with_permutation'))} | {fmt(r.get('attention_top_drop'), '.4f')} ({fmt(r.get('attention_ratio'), '.1f')}x) |")
    return results


def _oracle(run_dir: Path, rows: int = 2000) -> dict:
    """The deletion check's ceiling: the largest metric drop over every set of 3 columns, and the
    exact mean over all of them (what random draws estimate); no ranking can beat their ratio."""
    from itertools import combinations

    import pandas as pd

    from tabcli.explain.explain import MIN_GLOBAL_ROWS
    from tabcli.explain.importance import primary_metric
    from tabcli.explain.occlusion import reference_frame
    from tabcli.explain.trust import metric_drop
    from tabcli.runs.run import LoadedRun

    run = LoadedRun(run_dir)
    frame = run.test_frame()
    if len(frame) < MIN_GLOBAL_ROWS:  # the rows tabcli explain's checks use
        frame = pd.concat([frame, run.splits().valid])
    frame = frame.iloc[np.sort(np.random.default_rng(run.config.seed).choice(len(frame), min(rows, len(frame)), replace=False))]
    reference = reference_frame(run)
    _, baseline = primary_metric(run, frame)
    drops = {subset: metric_drop(run, frame, list(subset), reference, baseline)
             for subset in combinations(run.schema.features, 3)}
    best = max(drops, key=drops.get)
    mean = float(np.mean(list(drops.values())))
    return {"oracle_columns": list(best), "oracle_drop": drops[best], "all_subsets_mean_drop": mean,
            "oracle_ratio": drops[best] / mean if mean > 0 else None}


def _cost(run_dir: Path, rows: int = 2000) -> dict:
    """Seconds of the model's ranking and of permutation importance on the same rows (best of 2)."""
    from tabcli.explain.importance import permutation_importance
    from tabcli.explain.ranking import model_ranking
    from tabcli.runs.run import LoadedRun

    run = LoadedRun(run_dir)
    frame = run.test_frame()
    frame = frame.iloc[np.sort(np.random.default_rng(0).choice(len(frame), min(rows, len(frame)), replace=False))]
    model_ranking(run, run.inputs(frame))  # builds and caches what every later explanation reuses
    ranking, permutation = [], []
    for _ in range(2):
        start = time.perf_counter()
        model_ranking(run, run.inputs(frame))
        ranking.append(time.perf_counter() - start)
        start = time.perf_counter()
        permutation_importance(run, frame, 3, 0)
        permutation.append(time.perf_counter() - start)
    return {"rows": len(frame), "ranking_s": round(min(ranking), 2), "permutation_s": round(min(permutation), 2),
            "cost_ratio": round(min(ranking) / min(permutation), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["planted", "tables"])
    parser.add_argument("--families", nargs="+", default=None, choices=list(FAMILIES))
    parser.add_argument("--tasks", nargs="+", default=["binary", "regression"], choices=["binary", "regression"])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rows", type=int, default=3000, help="rows of the planted tables")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    parser.add_argument("--cost", action="store_true", help="time the ranking against permutation importance")
    parser.add_argument("--oracle", action="store_true",
                        help="also the best possible deletion ratio (every set of 3 columns; slow on wide tables)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args()
    if args.families is None:
        args.families = ["tabular_attention", "context", "interpretable", "multi_resolution", "ensemble"] \
            if args.what == "planted" else ["tabular_attention"]
    results = planted(args) if args.what == "planted" else tables(args)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
