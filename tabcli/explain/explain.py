"""``tabcli explain``: what a trained model's attention looked at, next to permutation importance."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tabcli.data.io import read_table
from tabcli.data.schema import infinite_value_notes
from tabcli.errors import ConfigError
from tabcli.explain.neighbours import label_agreement, neighbour_tables
from tabcli.explain.importance import (
    attention_importance,
    column_importance,
    permutation_importance,
    rank_correlation,
)
from tabcli.runs.loader import LoadedRun

__all__ = ["ExplainResult", "explain_run", "parse_rows"]

#: Rows used for the global charts and permutation importance (a seeded sample beyond this).
MAX_GLOBAL_ROWS = 2000
#: Context rows listed per explained row for inter-sample attention.
TOP_CONTEXT = 5


@dataclass
class ExplainResult:
    """What ``explain_run`` wrote.

    Attributes:
        output: The output folder.
        report: Path of ``report.html``.
        attention_importance: Column -> importance from attention (empty for models without attention).
        permutation_importance: Column -> mean drop of the primary metric (empty without labels).
        rank_correlation: Spearman correlation of the two rankings (None if undefined).
        images: Every PNG written, by name.
        notes: Remarks for the user.
    """

    output: Path
    report: Path
    attention_importance: dict
    permutation_importance: dict
    rank_correlation: float | None
    images: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def parse_rows(spec: str | None, count: int) -> list[int]:
    """Row positions from a spec such as ``"0,3,10-12"`` (0-based, in table order; ranges inclusive).

    Args:
        spec: The spec; None means the first 5 rows.
        count: Number of rows in the table.

    Returns:
        Sorted unique positions.

    Raises:
        ConfigError: If the spec is malformed or names a row outside ``[0, count)``.
    """
    if spec is None:
        return list(range(min(5, count)))
    positions = set()
    for part in str(spec).split(","):
        part = part.strip()
        try:
            if "-" in part:
                start, end = (int(p) for p in part.split("-", 1))
                if end < start:
                    raise ConfigError(
                        f"--rows range '{part}' is reversed: write it from the lower row to the higher, '{end}-{start}'."
                    )
                positions.update(range(start, end + 1))
            elif part:
                positions.add(int(part))
        except ValueError:
            raise ConfigError(f"--rows expects positions and ranges such as '0,3,10-12'; cannot read '{part}'.") from None
    bad = sorted(p for p in positions if p < 0 or p >= count)
    if bad or not positions:
        raise ConfigError(f"--rows must name rows between 0 and {count - 1} of the data; received '{spec}'.")
    return sorted(positions)


def _pair_axes(axes: list[str]) -> tuple[str, str] | None:
    """The (query, key) axes of a token-by-token score array, if it is one."""
    queries = [a for a in axes if a.startswith("query_") and a != "query_sample"]
    keys = [a for a in axes if a.startswith("key_") and a != "key_sample"]
    return (queries[0], keys[0]) if queries and keys else None


def _heatmaps(arrays, description, folder: Path) -> dict[str, Path]:
    """Per-head and head-averaged heatmaps (mean over rows) of every token-by-token score array."""
    from tabcli.evaluation.plots import heatmap, heatmap_grid

    images = {}
    for key, info in description.items():
        pair = _pair_axes(info.get("axes", []))
        if key == "row_ids" or pair is None:
            continue
        query_axis, key_axis = pair
        axes = info["axes"]
        mean = arrays[key].mean(axis=axes.index("row"))  # (heads, Tq, Tk)
        rest = [a for a in axes if a != "row"]
        rows, cols = info["labels"][query_axis], info["labels"][key_axis]
        title = f"{info['layer']}: {info.get('kind', info['score'])}"
        if "head" in rest:
            per_head = np.moveaxis(mean, rest.index("head"), 0)
            images[f"{key}_heads"] = heatmap_grid(
                per_head, rows, cols, [f"head {h}" for h in range(per_head.shape[0])],
                folder / f"{key}_heads.png", suptitle=f"{title} (per head, mean over rows)",
            )
            mean = per_head.mean(axis=0)
        images[key] = heatmap(
            mean, rows, cols, f"{title} (mean over heads and rows)", folder / f"{key}.png",
            xlabel=key_axis.replace("_", " ") + " (attended to)", ylabel=query_axis.replace("_", " "),
        )
    return images


def _context_tables(arrays, description, positions, train_frame: pd.DataFrame | None, explained_ids) -> dict[str, list]:
    """For each explained row: the context rows its inter-sample attention weighted most."""
    tables = {}
    for key, info in description.items():
        if info.get("axes", [None])[-1:] != ["key_sample"]:
            continue
        value = arrays[key][positions].mean(axis=info["axes"].index("head"))  # (rows, 1 + M)
        labels = info["labels"]["key_sample"]
        by_id = {} if train_frame is None else {str(i): i for i in train_frame.index}
        per_row = []
        for row_id, weights in zip(explained_ids, value):
            order = np.argsort(weights)[::-1][:TOP_CONTEXT]
            entries = []
            for index in order:
                label = labels[index]
                context_id = None if label == "self" else label.split(":", 1)[1]
                values = None
                if context_id in by_id:
                    values = train_frame.loc[by_id[context_id]].to_dict()
                entries.append({"key": label, "weight": float(weights[index]), "values": values})
            per_row.append({"row": row_id, "attended": entries, "self_weight": float(weights[0])})
        tables[key] = per_row
    return tables


def explain_run(
    run_dir: str | Path,
    data: str | Path | None = None,
    rows: str | None = None,
    output: str | Path | None = None,
    permutation_repeats: int = 3,
    overwrite: bool = False,
) -> ExplainResult:
    """Explain a run's predictions: attention arrays, heatmaps, importance, report.

    Writes to ``output`` (default ``<run_dir>/explain``): ``attention.npz`` + ``attention.json``
    (the scores of the chosen rows, every array described; for a retrieval model also the ids,
    labels and weights of the training rows each row retrieved), PNG heatmaps per attention layer
    (per head and averaged, mean over up to 2000 rows), the branch weights of an ensemble, a
    global importance chart from attention beside permutation importance on the same rows,
    per-row charts for the chosen rows, ``importance.csv`` and ``report.html`` (images embedded).

    Args:
        run_dir: A completed run directory.
        data: A CSV/TSV/Parquet file with the training columns; default: the run's test split.
        rows: Rows to explain individually (:func:`parse_rows`); default the first 5.
        output: Output folder.
        permutation_repeats: Shuffles per column for permutation importance.
        overwrite: Replace the files of an earlier explanation in ``output``.

    Returns:
        :class:`ExplainResult`.

    Raises:
        tabcli.errors.TabcliError: For an incomplete run, unreadable data or missing columns,
            or an ``output`` that already holds an explanation (without ``overwrite``).
    """
    run = LoadedRun(run_dir)
    if run.is_keras:
        from tabcli._quiet import import_keras_quietly

        import_keras_quietly()
    from tabcli.evaluation.plots import bar_chart, importance_comparison
    from tabcli.explain.report import write_report
    from tabcli.models.registry import attention_manifest
    from tabcli.runs.attention import collect_attention, save_attention

    schema = run.schema
    notes: list[str] = []
    if data is None:
        frame, source = run.test_frame(), "the run's test split"
    else:
        frame, source = read_table(data, run.config.data.na_values, role="input", sep=run.config.data.sep, encoding=run.config.data.encoding), f"'{data}'"
    notes.extend(infinite_value_notes(frame, schema.numerical, source))
    positions = parse_rows(rows, len(frame))
    target = Path(output) if output is not None else run.path / "explain"
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ConfigError(
            f"'{target}' already holds an explanation; pass --overwrite to replace it, or --output to write elsewhere."
        )
    if len(frame) > MAX_GLOBAL_ROWS:
        sample = np.sort(np.random.default_rng(run.config.seed).choice(len(frame), MAX_GLOBAL_ROWS, replace=False))
        global_positions = np.union1d(sample, positions)
        notes.append(f"Global charts use {len(global_positions)} of the {len(frame)} rows (a seeded sample).")
    else:
        global_positions = np.arange(len(frame))
    rows_frame = frame.iloc[global_positions]
    explained = [int(np.searchsorted(global_positions, p)) for p in positions]
    folder = Path(output) if output is not None else run.path / "explain"
    folder.mkdir(parents=True, exist_ok=True)
    images: dict[str, Path] = {}

    spec = run.model_spec()
    collected = None
    if run.is_keras:
        manifest = attention_manifest(run.config.model, spec, run.context_ids)
        collected = collect_attention(run.model, run.inputs(rows_frame, what=source), manifest,
                                      row_ids=rows_frame.index.tolist(), batch_size=run.config.training.eval_batch_size,
                                      decode_target=run.preprocessor.decode_target)
    raw = run.predict_raw(rows_frame, what=source)
    from tabcli.predictions import prediction_table

    predictions = prediction_table(run.preprocessor, raw)
    branch_weights = None
    weights_file = run.path / "branch_weights.json"
    if weights_file.is_file():
        branch_weights = json.loads(weights_file.read_text())
        images["branch_weights"] = bar_chart(
            list(branch_weights.values()), list(branch_weights), "ensemble branch weights (SparseAttentionWeighting)",
            folder / "branch_weights.png", xlabel="weight", sort=False,
        )

    token_importance, attention_columns, context_tables, neighbours, agreement = {}, {}, {}, {}, {}
    if collected is None:
        notes.append(
            f"Model type '{run.config.model.type}' has no attention layer, so there are no attention scores to "
            "show; the report gives permutation importance only."
        )
    else:
        arrays, description = collected
        chosen = {k: v[explained] for k, v in arrays.items()}
        save_attention(folder, "attention", chosen, description)
        images.update(_heatmaps(arrays, description, folder))
        token_importance = attention_importance(arrays, description, branch_weights)
        attention_columns = column_importance(token_importance)
        train_frame = None
        if any(info.get("axes", [None])[-1:] in (["key_sample"], ["neighbour"]) for info in description.values()):
            train_frame = run.splits().train  # context and retrieved rows are training rows; read once
        context_tables = _context_tables(arrays, description, explained, train_frame, rows_frame.index[explained].tolist())
        neighbours = neighbour_tables(arrays, description, explained, rows_frame.index[explained].tolist(),
                                      train_frame, schema.target)
        if neighbours and train_frame is not None:
            own = rows_frame[schema.target] if schema.target in rows_frame.columns and rows_frame[schema.target].notna().all() \
                else predictions["prediction"]
            agreement = label_agreement(arrays, description, own.to_numpy(), train_frame[schema.target], schema.task)
        for position, index in zip(positions, explained):
            row_arrays = {k: v[index : index + 1] for k, v in arrays.items()}
            row_importance = column_importance(attention_importance(row_arrays, description, branch_weights))
            images[f"row_{position}"] = bar_chart(
                list(row_importance.values()), list(row_importance), f"row {position}: attention importance",
                folder / f"row_{position}.png", xlabel="share of attention",
            )

    permutation, permutation_std, metric = {}, {}, None
    if schema.target in rows_frame.columns and rows_frame[schema.target].notna().all():
        permutation, permutation_std, metric = permutation_importance(run, rows_frame, permutation_repeats, run.config.seed)
    else:
        notes.append(f"'{schema.target}' is missing from the data, so permutation importance (which needs labels) is skipped.")

    correlation = rank_correlation(attention_columns, permutation) if attention_columns and permutation else None
    columns = list(schema.features)
    table = pd.DataFrame({"column": columns})
    table["attention_importance"] = [attention_columns.get(c) for c in columns]
    table["permutation_importance"] = [permutation.get(c) for c in columns]
    table["permutation_std"] = [permutation_std.get(c) for c in columns]
    table = table.sort_values("attention_importance" if attention_columns else "permutation_importance", ascending=False)
    table.to_csv(folder / "importance.csv", index=False)
    if attention_columns and permutation:
        images["importance"] = importance_comparison(
            [attention_columns[c] for c in columns], [permutation[c] for c in columns], columns, folder / "importance.png",
            title="global feature importance", permutation_std=[permutation_std[c] for c in columns],
        )
    elif permutation:
        images["importance"] = bar_chart(list(permutation.values()), list(permutation), f"permutation importance ({metric} drop)",
                                         folder / "importance.png")
    elif attention_columns:
        images["importance"] = bar_chart(list(attention_columns.values()), list(attention_columns), "attention importance",
                                         folder / "importance.png")

    explained_rows = []
    for position, index in zip(positions, explained):
        explained_rows.append({
            "position": position,
            "row": rows_frame.index[index],
            "values": rows_frame.iloc[index].to_dict(),
            "prediction": predictions.iloc[index].to_dict(),
            "image": images.get(f"row_{position}"),
        })
    report = write_report(
        folder / "report.html", run=run, source=source, n_rows=len(rows_frame), images=images, importance=table,
        correlation=correlation, metric=metric, explained_rows=explained_rows, context_tables=context_tables,
        neighbour_tables=neighbours, agreement=agreement, notes=notes,
    )
    return ExplainResult(
        output=folder, report=report, attention_importance=attention_columns, permutation_importance=permutation,
        rank_correlation=correlation, images=images, notes=notes,
    )
