"""A self-contained HTML report of a run's explanation (images embedded as base64)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from tabcli.evaluation.metrics import scalar_metrics
from tabcli.reports.html import cell, render

__all__ = ["write_report"]

_METHODS = {
    "retrieval paths": (
        "A column's importance is how far the outputs move when it alone is set to its training median / mode, "
        "measured on both paths of the model and added: the inter-feature path (the row's own columns through "
        "attention) with the retrieval held fixed, and the retrieval (which training rows are found and what is "
        "read from them) with the inter-feature path held fixed. The retrieval is run again for each row's 4 "
        "columns with the largest retrieval attribution (their Shapley share of how much closer the retrieved "
        "rows are than a random training row); the other columns get their share of that attribution."
    ),
    "occlusion": (
        "A column's share is how far the model's outputs move when that column alone is set to its training "
        "median / mode (occlusion, Zeiler & Fergus 2014), over the rows explained."
    ),
}


def _trust_records(trust: dict) -> list[dict]:
    return [{"ranking": name, "Spearman with permutation": check.correlation,
             "deleted (top 3)": ", ".join(check.top_columns), f"{check.metric} drop": check.top_drop,
             "drop, 3 random columns": check.random_drop, "ratio": check.ratio,
             "passes": "yes" if check.passes else "no"} for name, check in trust.items()]


def write_report(path: Path, *, run, source: str, n_rows: int, images: dict, importance: pd.DataFrame,
                 ranking, trust: dict, metric: str | None, explained_rows: list, context_tables: dict,
                 neighbour_tables: dict | None = None, agreement: dict | None = None,
                 notes: list) -> Path:
    """Write ``report.html`` (template ``explain.html``): run summary, metrics, what drives the predictions with its trust
    checks, attention importance and heatmaps (labelled as what the layers attended to), branch
    weights, per-row explanations with their retrieved or context rows, and the config.

    Args:
        path: The HTML file to write.
        run: The :class:`~tabcli.runs.run.LoadedRun`.
        source: What rows were explained (for the text).
        n_rows: Rows behind the global charts.
        images: Name -> PNG path (embedded as base64, so the file stands alone).
        importance: ``importance.csv`` as a table (``column``, ``importance``, path columns,
            ``attention_importance``, ``permutation_importance``, ``permutation_std``).
        ranking: The :class:`~tabcli.explain.ranking.ModelRanking` (None for ``gbdt``).
        trust: Ranking name -> :class:`~tabcli.explain.trust.TrustCheck` (empty without labels).
        metric: The metric permutation importance is measured with.
        explained_rows: Per chosen row: ``position``, ``row``, ``values``, ``prediction``,
            ``image``, ``neighbour_columns`` (retrieval: ``[(column, share)]``) and, for a
            regression retrieval model, ``neighbour_target``.
        context_tables: Array name -> per-row lists of the context rows attended to.
        neighbour_tables: Retrieval layer -> per-row lists of the training rows leaned on most
            (``tabcli.explain.neighbours.neighbour_tables``).
        agreement: Retrieval layer -> share of retrieval weight on same-label training rows
            (``tabcli.explain.neighbours.label_agreement``).
        notes: Remarks shown at the top.

    Returns:
        ``path``.
    """
    schema = run.schema
    metrics = run.metrics
    heatmaps = [k for k in images if k not in ("importance", "attention_importance", "branch_weights")
                and not k.startswith("row_") and not k.endswith("_heads")]
    return render(
        "explain.html", path,
        name=str(run.config.name), model_type=run.config.model.type, task=schema.task, target=schema.target,
        n_features=len(schema.features), source=source, n_rows=n_rows, run_path=str(run.path), notes=notes,
        metric_rows=[{"split": s, **metrics[s]} for s in ("train", "valid", "test")],
        metric_columns=["split", *scalar_metrics(metrics["test"])],
        importance_verdict=trust["importance"].verdict() if "importance" in trust else None,
        method=ranking.method if ranking is not None else None,
        method_text=_METHODS[ranking.method] if ranking is not None else "",
        path_shares=", ".join(f"{name} path {share:.0%}" for name, share in ranking.paths.items()) if ranking is not None and ranking.paths else "",
        images=images,
        importance_rows=importance.to_dict("records"),
        importance_columns=[c for c in importance.columns if importance[c].notna().any()],
        metric=metric or "", trust_rows=_trust_records(trust),
        trust_verdicts=[(name, check.verdict()) for name, check in trust.items()],
        heatmaps=heatmaps,
        agreement=[(layer, _agreement_view(info)) for layer, info in (agreement or {}).items()],
        explained=[_row_view(row, context_tables, neighbour_tables or {}) for row in explained_rows],
        config_yaml=yaml.safe_dump(run.config.model_dump(mode="json"), sort_keys=False),
    )


def _agreement_view(info: dict) -> dict:
    if "per_class" not in info:
        return {"correlation": info["correlation"]}
    return {"overall": info["overall"], "per_class": True,
            "records": [{"label": k, "rows": v["rows"], "weight on same label": v["share"], "base rate": v["base_rate"]}
                        for k, v in info["per_class"].items()]}


def _shares(pairs) -> str:
    return ", ".join(f"{c} ({share:.0%})" for c, share in pairs)


def _row_view(row: dict, context_tables: dict, neighbour_tables: dict) -> dict:
    """What the template shows of one explained row: its values, prediction, the columns that
    move it and the stored or retrieved training rows it attended to."""
    contexts = []
    for key, per_row in context_tables.items():
        entry = next((e for e in per_row if str(e["row"]) == str(row["row"])), None)
        if entry is None:
            continue
        records = [{"attended": e["key"], "weight": e["weight"], **(e["values"] or {})} for e in entry["attended"]]
        if records and entry["attended"][0]["values"] is None:
            columns = ["attended", "weight", *sorted({c for e in entry["attended"] for c in (e["values"] or {})})]
        else:
            columns = ["attended", "weight", *(entry["attended"][0]["values"] or {}).keys()] if records else []
        contexts.append({"key": key, "self_weight": entry["self_weight"], "records": records, "columns": columns})
    neighbours = []
    for layer, per_row in neighbour_tables.items():
        entry = next((e for e in per_row if str(e["row"]) == str(row["row"])), None)
        if entry is None or not entry["neighbours"]:
            continue
        neighbours.append({"layer": layer, "records": entry["neighbours"],
                           "columns": list(dict.fromkeys(c for record in entry["neighbours"] for c in record))})
    return {
        "position": row["position"], "row": row["row"], "image": row["image"],
        "prediction": ", ".join(f"{k} = {cell(v)}" for k, v in row["prediction"].items()),
        "predicted": row["prediction"].get("prediction"),
        "cells": [{"column": k, "value": v} for k, v in row["values"].items()],
        "top_columns": _shares(row.get("top_columns") or []),
        "neighbour_columns": _shares(row.get("neighbour_columns") or []),
        "neighbour_target": row.get("neighbour_target"),
        "contexts": contexts, "neighbours": neighbours,
    }
