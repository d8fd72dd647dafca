"""`report.html` of a search: summary, best trial against the starting config, refit, plots, all trials."""

from __future__ import annotations

import html
from pathlib import Path

from tabcli.html_parts import STYLE, img, table
from tabcli.config.dotted import get_dotted
from tabcli.runs.run_dir import write_atomic

__all__ = ["write_tune_report"]


def write_tune_report(path: Path, *, study, base: dict, rows: list[dict], metric: str, direction: str,
                      plots: dict[str, Path], refit: dict | None = None) -> Path:
    """Write a self-contained ``report.html`` (plots inlined) and return its path.

    Args:
        study: The Optuna study.
        base: The starting config (mapping): the best trial's values are shown against it.
        rows: :func:`tabcli.tune.outputs.trial_rows`.
        metric: Validation metric name.
        direction: ``"minimize"`` or ``"maximize"``.
        plots: Name -> PNG (:func:`tabcli.tune.plots.search_plots`).
        refit: :func:`tabcli.tune.refit.refit`'s result, if ``--refit`` was given.
    """
    from tabcli.tune.outputs import best_trial

    name = html.escape(study.study_name)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>tabcli tune: {name}</title><style>{STYLE}</style></head><body>",
        f"<h1>Search: {name}</h1>",
        f"<p class='meta'>{direction} <b>valid.{html.escape(metric)}</b> · "
        + " · ".join(f"{n} {html.escape(state)}" for state, n in sorted(counts.items()))
        + " · test rows chose nothing</p>",
    ]
    best = best_trial(study)
    if best is None:
        parts.append("<div class='note'>No trial completed; the error column below says why.</div>")
    else:
        parts.append(f"<h2>Best trial: {best.number}</h2>")
        parts.append(f"<div class='callout'>valid.{html.escape(metric)} = <b>{best.value:.4f}</b>; "
                     "retrain it with <code>tabcli train best.yaml</code>.</div>")
        changes = [{"key": key, "starting config": get_dotted(base, key), "best trial": value} for key, value in best.params.items()]
        parts.append(table(changes, ["key", "starting config", "best trial"]))
    if refit:
        parts.append(f"<h2>Refit: {html.escape(refit['metric'])} over seeds {', '.join(map(str, refit['seeds']))}</h2>")
        parts.append(table([{"config": label, "mean": refit[label]["mean"], "std": refit[label]["std"],
                             "per seed": ", ".join(f"{v:.4f}" for v in refit[label]["values"])}
                            for label in ("default", "best")], ["config", "mean", "std", "per seed"]))
    titles = {"history": "Optimisation history", "importances": "Parameter importances (fANOVA)",
              "slices": "Metric against each searched key"}
    for key, title in titles.items():
        if key in plots:
            parts.append(f"<h2>{title}</h2>{img(plots[key], title)}")
    parts.append("<h2>All trials</h2>")
    columns = [c for c in (rows[0].keys() if rows else []) if c not in ("host",)]
    parts.append(table(rows, columns))
    parts.append("</body></html>")
    write_atomic(path, lambda tmp: tmp.write_text("\n".join(parts), encoding="utf-8"))
    return path
