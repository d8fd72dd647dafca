"""A self-contained HTML report of a run's explanation (images embedded as base64)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import yaml

from tabcli.html_parts import STYLE as _STYLE
from tabcli.html_parts import fmt as _fmt
from tabcli.html_parts import img as _img
from tabcli.html_parts import table as _table
from tabcli.metrics import scalar_metrics

__all__ = ["write_report"]

def _correlation_text(correlation: float | None, metric: str | None) -> str:
    if correlation is None:
        return ("The rank correlation between attention importance and permutation importance could not be "
                "computed (no attention, no labels, or constant importances).")
    if correlation >= 0.7:
        verdict = "they largely agree: the attention ranking is a reasonable guide to what the model uses"
    elif correlation >= 0.3:
        verdict = "they agree only partly: treat the attention ranking as a hint, and check it against permutation importance"
    else:
        verdict = ("they disagree: attention here is not a reliable account of which features drive predictions "
                   "(attention is not explanation, Jain &amp; Wallace 2019)")
    return (f"Spearman rank correlation between attention importance and permutation importance "
            f"({html.escape(metric or '')} drop): <b>{correlation:.2f}</b>, so {verdict}.")


def write_report(path: Path, *, run, source: str, n_rows: int, images: dict, importance: pd.DataFrame,
                 correlation: float | None, metric: str | None, explained_rows: list, context_tables: dict,
                 neighbour_tables: dict | None = None, agreement: dict | None = None,
                 notes: list) -> Path:
    """Write ``report.html``: run summary, metrics, importance with the rank correlation, attention
    heatmaps, branch weights, per-row explanations and context rows, and the config.

    Args:
        path: The HTML file to write.
        run: The :class:`~tabcli.runs.loader.LoadedRun`.
        source: What rows were explained (for the text).
        n_rows: Rows behind the global charts.
        images: Name -> PNG path (embedded as base64, so the file stands alone).
        importance: Table with ``column``, ``attention_importance``, ``permutation_importance``,
            ``permutation_std``.
        correlation: Spearman correlation of the two importances, or None.
        metric: The metric permutation importance is measured with.
        explained_rows: Per chosen row: ``position``, ``row``, ``values``, ``prediction``, ``image``.
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
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>tabcli explain: {html.escape(str(run.config.name))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(str(run.config.name))}</h1>",
        f"<p class='meta'>model <b>{html.escape(run.config.model.type)}</b> · task <b>{schema.task}</b> · target "
        f"<b>{html.escape(schema.target)}</b> · {len(schema.features)} feature columns · explained: {html.escape(source)}, "
        f"{n_rows} rows · run <code>{html.escape(str(run.path))}</code></p>",
    ]
    parts += [f"<div class='note'>{html.escape(note)}</div>" for note in notes]
    metrics = run.metrics
    keys = list(scalar_metrics(metrics["test"]))
    parts.append("<h2>Metrics (from training)</h2>")
    parts.append(_table([{"split": s, **metrics[s]} for s in ("train", "valid", "test")], ["split", *keys]))

    parts.append("<h2>What drives the predictions</h2>")
    parts.append(f"<div class='callout'>{_correlation_text(correlation, metric)}</div>")
    parts.append(_img(images.get("importance"), "global feature importance"))
    parts.append(_table(importance.to_dict("records"), ["column", "attention_importance", "permutation_importance", "permutation_std"]))
    parts.append("<p class='meta'>Attention importance: the share of attention each column's tokens receive "
                 "(from the attention-pooling distribution where the model has one; otherwise averaged over "
                 "layers, heads, queries and rows). Permutation importance: how much the metric drops when the "
                 "column's values are shuffled (Breiman 2001).</p>")
    if "branch_weights" in images:
        parts.append("<h2>Ensemble branch weights</h2>")
        parts.append(_img(images["branch_weights"], "branch weights"))

    heatmaps = [k for k in images if k not in ("importance", "branch_weights") and not k.startswith("row_")]
    if heatmaps:
        parts.append("<h2>Attention maps (mean over rows)</h2>")
        parts.append("<p class='meta'>Each row of a map is a query token; each column the token it attends to; "
                     "rows sum to 1. Per-head maps are folded below each averaged map.</p>")
        for key in heatmaps:
            if key.endswith("_heads"):
                continue
            parts.append(f"<h3>{html.escape(key)}</h3>{_img(images[key], key)}")
            if f"{key}_heads" in images:
                parts.append(f"<details><summary>per head</summary>{_img(images[key + '_heads'], key + ' per head')}</details>")

    for layer, info in (agreement or {}).items():
        parts.append(f"<h2>Which training rows the predictions lean on ({html.escape(layer)})</h2>")
        if "per_class" in info:
            parts.append("<p class='meta'>Share of each row's retrieval weight on training rows with the row's own "
                         f"label (overall {info['overall']:.3f}), against that label's share of the training rows: "
                         "a retrieval blind to the label would match the base rate.</p>")
            records = [{"label": k, "rows": v["rows"], "weight on same label": v["share"], "base rate": v["base_rate"]}
                       for k, v in info["per_class"].items()]
            parts.append(_table(records, ["label", "rows", "weight on same label", "base rate"]))
        else:
            parts.append("<p class='meta'>Correlation between each row's target and the weighted mean target of the "
                         f"training rows it retrieved: {info['correlation']:.3f}.</p>")

    parts.append("<h2>Individual rows</h2>")
    for row in explained_rows:
        prediction = ", ".join(f"{k} = {_fmt(v)}" for k, v in row["prediction"].items())
        parts.append(f"<h3>row {row['position']} (index {html.escape(str(row['row']))})</h3><p>{prediction}</p>")
        values = [{"column": k, "value": v} for k, v in row["values"].items()]
        parts.append(f"<div class='row'><div>{_table(values, ['column', 'value'])}</div><div>{_img(row['image'], 'row importance')}</div></div>")
        for key, per_row in context_tables.items():
            entry = next((e for e in per_row if str(e["row"]) == str(row["row"])), None)
            if entry is None:
                continue
            records = [{"attended": e["key"], "weight": e["weight"], **(e["values"] or {})} for e in entry["attended"]]
            columns = ["attended", "weight", *[c for c in (entry["attended"][0]["values"] or {}).keys()]] if records else []
            if records and entry["attended"][0]["values"] is None:
                columns = ["attended", "weight", *sorted({c for e in entry["attended"] for c in (e["values"] or {})})]
            parts.append(f"<p class='meta'>{html.escape(key)}: the stored training rows this row attended to most "
                         f"(self-attention weight {entry['self_weight']:.2f})</p>")
            parts.append(_table(records, columns))
        for layer, per_row in (neighbour_tables or {}).items():
            entry = next((e for e in per_row if str(e["row"]) == str(row["row"])), None)
            if entry is None or not entry["neighbours"]:
                continue
            columns = list(dict.fromkeys(c for record in entry["neighbours"] for c in record))
            parts.append(f"<p class='meta'>{html.escape(layer)}: the {len(entry['neighbours'])} training rows this "
                         "prediction leaned on most (retrieval weight averaged over heads; label = their target)</p>")
            parts.append(_table(entry["neighbours"], columns))

    parts.append("<h2>Config</h2>")
    parts.append(f"<pre>{html.escape(yaml.safe_dump(run.config.model_dump(mode='json'), sort_keys=False))}</pre>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
