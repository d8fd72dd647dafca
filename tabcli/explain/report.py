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
        "median / mode (occlusion, Zeiler &amp; Fergus 2014), over the rows explained."
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
    """Write ``report.html``: run summary, metrics, what drives the predictions with its trust
    checks, attention importance and heatmaps (labelled as what the layers attended to), branch
    weights, per-row explanations with their retrieved or context rows, and the config.

    Args:
        path: The HTML file to write.
        run: The :class:`~tabcli.runs.loader.LoadedRun`.
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
    if "importance" in trust:
        parts.append(f"<div class='callout'>{html.escape(trust['importance'].verdict())}</div>")
    if ranking is not None:
        parts.append(f"<p class='meta'>Method: {ranking.method}. {_METHODS[ranking.method]}</p>")
        if ranking.paths:
            shares = ", ".join(f"{name} path {share:.0%}" for name, share in ranking.paths.items())
            parts.append(f"<p>Share of the columns' summed effect that goes through each path: <b>{html.escape(shares)}</b>.</p>")
    parts.append(_img(images.get("importance"), "what drives the predictions"))
    shown = [c for c in importance.columns if importance[c].notna().any()]
    parts.append(_table(importance.to_dict("records"), shown))
    parts.append("<p class='meta'>Permutation importance: how much the metric drops when the column's values are "
                 "shuffled (Breiman 2001).</p>")
    if trust:
        parts.append("<h3>Can these rankings be trusted?</h3>")
        parts.append(f"<p class='meta'>Each ranking beside permutation importance ({html.escape(metric or '')} drop), "
                     "and the metric drop when its top 3 columns are set to their training median / mode, against "
                     "the mean drop for 3 random columns. A ranking that knows what the model uses agrees "
                     "(Spearman &ge; 0.5) and loses at least 1.5 times as much as chance.</p>")
        parts.append(_table(_trust_records(trust), list(_trust_records(trust)[0])))
        parts += [f"<p><b>{html.escape(name)}</b>: {html.escape(check.verdict())}</p>" for name, check in trust.items()]
    if "branch_weights" in images:
        parts.append("<h2>Ensemble branch weights</h2>")
        parts.append(_img(images["branch_weights"], "branch weights"))

    heatmaps = [k for k in images if k not in ("importance", "attention_importance", "branch_weights")
                and not k.startswith("row_")]
    if "attention_importance" in images or heatmaps:
        parts.append("<h2>What the attention layers looked at</h2>")
        parts.append("<p class='meta'>Where each layer's attention went: not by itself the model's reasons (a "
                     "layer can attend to a column whose value then barely moves the output; Jain &amp; Wallace "
                     "2019). Attention importance: the attention rollout (Abnar &amp; Zuidema 2020) read by the "
                     "model's pooling, or the attention each column receives.</p>")
        parts.append(_img(images.get("attention_importance"), "attention importance"))
    if heatmaps:
        parts.append("<p class='meta'>Heatmaps, mean over rows: each row of a map is a query token; each column the "
                     "token it attends to; rows sum to 1. Per-head maps are folded below each averaged map.</p>")
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
        if row.get("top_columns"):
            listed = ", ".join(f"{html.escape(str(c))} ({share:.0%})" for c, share in row["top_columns"])
            parts.append(f"<p>What moves this prediction most: <b>{listed}</b> (share of the output change when "
                         "each column alone is set to its training median / mode).</p>")
        if row.get("neighbour_columns"):
            listed = ", ".join(f"{html.escape(str(c))} ({share:.0%})" for c, share in row["neighbour_columns"])
            parts.append(f"<p>The columns that made this row's neighbours its neighbours: <b>{listed}</b> "
                         "(share of how much closer they are than a random training row).</p>")
        if row.get("neighbour_target") is not None:
            parts.append(f"<p>Weighted mean target of the retrieved training rows: <b>{_fmt(row['neighbour_target'])}</b>; "
                         f"prediction: <b>{_fmt(row['prediction'].get('prediction'))}</b>.</p>")
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
