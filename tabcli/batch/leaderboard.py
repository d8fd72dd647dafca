"""The batch leaderboard: one row per config, mean ± std over its repeats, sorted by the primary metric."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tabcli.batch.runner import Outcome
from tabcli.evaluation.metrics import PRIMARY_METRIC, scalar_metrics
from tabcli.runs.run_dir import RunDirectory

__all__ = ["summarize", "write_leaderboard", "markdown"]


def summarize(outcomes: list[Outcome]) -> list[dict]:
    """Leaderboard rows from run outcomes.

    Each row: ``config``, ``family``, ``dataset``, ``task``, ``metric`` (the primary one: ROC AUC
    for binary, accuracy for multiclass, RMSE for regression), ``mean``/``std`` of its test value,
    ``means``/``stds`` of every scalar metric as ``"<split>.<metric>"``, ``train_seconds``
    (mean), ``parameters``, ``completed``/``runs``, ``status`` (``completed`` or ``failed``),
    ``errors`` and ``run_dirs``. Sorted: by table, then best primary metric first, failed last.
    """
    by_config: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_config.setdefault(outcome.run.config_id, []).append(outcome)
    rows = []
    for config_id, group in by_config.items():
        values: dict[str, list[float]] = {}
        seconds, parameters, task = [], None, None
        for outcome in group:
            if outcome.status != "completed":
                continue
            run = RunDirectory(outcome.run.run_dir)
            info, metrics = run.info, run.metrics or {}
            task = info.get("task", task)
            seconds.append(info.get("train_seconds") or 0.0)
            parameters = info.get("parameters", parameters)
            for split, split_metrics in metrics.items():
                for name, value in scalar_metrics(split_metrics).items():
                    if value is not None:
                        values.setdefault(f"{split}.{name}", []).append(float(value))
        completed = sum(o.status == "completed" for o in group)
        metric = PRIMARY_METRIC[task][0] if task else None
        primary = values.get(f"test.{metric}", [])
        rows.append({
            "config": config_id,
            "family": group[0].run.family,
            "dataset": group[0].run.dataset,
            "task": task,
            "metric": metric,
            "mean": float(np.mean(primary)) if primary else None,
            "std": float(np.std(primary)) if primary else None,
            "means": {k: float(np.mean(v)) for k, v in values.items()},
            "stds": {k: float(np.std(v)) for k, v in values.items()},
            "train_seconds": float(np.mean(seconds)) if seconds else None,
            "parameters": parameters,
            "completed": completed,
            "runs": len(group),
            "status": "completed" if completed == len(group) else "failed",
            "errors": [o.error for o in group if o.error],
            "run_dirs": [str(o.run.run_dir) for o in group],
        })

    def key(row):
        if row["mean"] is None:
            return (1, row["dataset"] or "", 0.0, row["config"])
        higher_is_better = PRIMARY_METRIC[row["task"]][1]
        return (0, row["dataset"] or "", -row["mean"] if higher_is_better else row["mean"], row["config"])

    return sorted(rows, key=key)


def _cell(row: dict) -> str:
    if row["mean"] is None:
        return "-"
    return f"{row['mean']:.4f} ± {row['std']:.4f}"


def markdown(rows: list[dict]) -> str:
    """The leaderboard as a Markdown table."""
    lines = [
        "| rank | config | dataset | family | metric | test mean ± std | runs | train s | parameters | status |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rank, last_dataset = 0, None
    for row in rows:
        rank = 1 if row["dataset"] != last_dataset else rank + 1
        last_dataset = row["dataset"]
        seconds = "-" if row["train_seconds"] is None else f"{row['train_seconds']:.1f}"
        parameters = "-" if row["parameters"] is None else f"{row['parameters']:,}"
        lines.append(
            f"| {rank if row['mean'] is not None else '-'} | {row['config']} | {row['dataset'] or '-'} | {row['family'] or '-'} "
            f"| {row['metric'] or '-'} | {_cell(row)} | {row['completed']}/{row['runs']} | {seconds} | {parameters} | {row['status']} |"
        )
    return "\n".join(lines) + "\n"


def write_leaderboard(rows: list[dict], output: Path) -> dict[str, Path]:
    """Write ``leaderboard.csv``, ``leaderboard.md`` and ``leaderboard.json`` into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    paths = {"json": output / "leaderboard.json", "md": output / "leaderboard.md", "csv": output / "leaderboard.csv"}
    paths["json"].write_text(json.dumps(rows, indent=2) + "\n")
    paths["md"].write_text(markdown(rows))
    metric_keys = sorted({k for row in rows for k in row["means"]})
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["config", "dataset", "family", "task", "metric", "mean", "std", "completed", "runs", "status",
                         "train_seconds", "parameters", *(f"{k} mean" for k in metric_keys), *(f"{k} std" for k in metric_keys),
                         "run_dirs", "errors"])
        for row in rows:
            writer.writerow([row["config"], row["dataset"], row["family"], row["task"], row["metric"], row["mean"], row["std"],
                             row["completed"], row["runs"], row["status"], row["train_seconds"], row["parameters"],
                             *(row["means"].get(k) for k in metric_keys), *(row["stds"].get(k) for k in metric_keys),
                             " ".join(row["run_dirs"]), " | ".join(row["errors"])])
    return paths
