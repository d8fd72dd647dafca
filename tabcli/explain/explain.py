"""``tabcli explain``: which columns drive a trained model's predictions, whether that ranking can be
trusted, what its attention looked at, and the training rows a retrieval model leaned on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tabcli.data.io import read_with_settings
from tabcli.data.schema import infinite_value_notes
from tabcli.errors import ConfigError
from tabcli.explain.attention_views import attention_heatmaps, context_tables
from tabcli.explain.importance import (
    attention_importance,
    column_importance,
    permutation_importance,
)
from tabcli.explain.neighbours import label_agreement, neighbour_tables
from tabcli.runs.run import LoadedRun

__all__ = ["ExplainResult", "explain_run", "parse_rows"]

#: Rows used for the global charts and permutation importance (a seeded sample beyond this).
MAX_GLOBAL_ROWS = 2000
#: With a test split smaller than this (and no ``--data``), the validation rows join the global figures.
MIN_GLOBAL_ROWS = 500
#: Columns listed per explained row (what moves it; what made its neighbours its neighbours), if
#: their share is at least half a percent.
TOP_ROW_COLUMNS = 5


@dataclass
class ExplainResult:
    """What ``explain_run`` wrote.

    Attributes:
        output: The output folder.
        report: Path of ``report.html``.
        importance: Column -> share of what drives the predictions
            (:func:`~tabcli.explain.ranking.model_ranking`; empty for ``gbdt``).
        method: How ``importance`` was measured (``"retrieval paths"``, ``"occlusion"``, or "").
        paths: Retrieval models: path -> share of the output change it accounts for.
        attention_importance: Column -> importance from attention (empty for models without attention).
        permutation_importance: Column -> mean drop of the primary metric (empty without labels).
        rank_correlation: Spearman correlation of ``importance`` with permutation importance
            (None if undefined).
        trust: Ranking name (``"importance"``, ``"attention"``) -> its trust check
            (:meth:`~tabcli.explain.trust.TrustCheck.as_dict`); empty without labels.
        images: Every PNG written, by name.
        notes: Remarks for the user.
    """

    output: Path
    report: Path
    importance: dict
    method: str
    paths: dict
    attention_importance: dict
    permutation_importance: dict
    rank_correlation: float | None
    trust: dict = field(default_factory=dict)
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


def explain_run(
    run_dir: str | Path,
    data: str | Path | None = None,
    rows: str | None = None,
    output: str | Path | None = None,
    permutation_repeats: int = 3,
    overwrite: bool = False,
) -> ExplainResult:
    """Explain a run's predictions: a faithful column ranking with its trust checks, attention
    arrays and heatmaps, retrieved training rows, and a report.

    Writes to ``output`` (default ``<run_dir>/explain``): ``importance.csv`` (per column: the
    model's ranking, :func:`~tabcli.explain.ranking.model_ranking`, and for retrieval models its
    two paths; attention importance; permutation importance), ``trust.json`` (Spearman
    correlation with permutation importance and the deletion check of each ranking,
    :mod:`tabcli.explain.trust`), ``attention.npz`` + ``attention.json`` (the scores of the
    chosen rows, every array described; for a retrieval model also the ids, labels and weights
    of the training rows each row retrieved), PNG heatmaps per attention layer (per head and
    averaged, mean over up to 2000 rows), the branch weights of an ensemble, the ranking beside
    permutation importance, per-row charts for the chosen rows and ``report.html`` (images embedded).

    Args:
        run_dir: A completed run directory.
        data: A CSV/TSV/Parquet file with the training columns; default: the run's test split
            (with the validation split too, for the global figures, when the test split has fewer
            than :data:`MIN_GLOBAL_ROWS` rows; ``rows`` always index the test split).
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
    from tabcli.reports.plots import bar_chart
    from tabcli.explain.ranking import model_ranking, top_columns
    from tabcli.explain.report import write_report
    from tabcli.prediction.tables import prediction_table
    from tabcli.runs.attention import save_attention

    schema = run.schema
    notes: list[str] = []
    if data is None:
        frame, source = run.test_frame(), "the run's test split"
    else:
        frame, source = read_with_settings(data, run.config.data, role="input"), f"'{data}'"
    notes.extend(infinite_value_notes(frame, schema.numerical, source))
    positions = parse_rows(rows, len(frame))
    if data is None and len(frame) < MIN_GLOBAL_ROWS and len(run.splits().valid):
        # Rankings and their checks from a few dozen rows are noisy (adding penguins' 52 validation
        # rows to its 69 test rows moved one run's Spearman from 0.48 to 0.77); the validation rows
        # were never trained on either (they only chose the early-stopping epoch).
        frame = pd.concat([frame, run.splits().valid])  # test rows first: --rows positions stay theirs
        source = "the run's test and validation splits"
        notes.append(f"The test split has fewer than {MIN_GLOBAL_ROWS} rows, so the global figures also use the "
                     f"{len(run.splits().valid)} validation rows ({len(frame)} rows in all).")
    folder = Path(output) if output is not None else run.path / "explain"
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise ConfigError(
            f"'{folder}' already holds an explanation; pass --overwrite to replace it, or --output to write elsewhere."
        )
    if len(frame) > MAX_GLOBAL_ROWS:
        sample = np.sort(np.random.default_rng(run.config.seed).choice(len(frame), MAX_GLOBAL_ROWS, replace=False))
        global_positions = np.union1d(sample, positions)
        notes.append(f"Global charts use {len(global_positions)} of the {len(frame)} rows (a seeded sample).")
    else:
        global_positions = np.arange(len(frame))
    rows_frame = frame.iloc[global_positions]
    explained = [int(np.searchsorted(global_positions, p)) for p in positions]
    folder.mkdir(parents=True, exist_ok=True)
    images: dict[str, Path] = {}

    inputs = run.inputs(rows_frame, what=source)
    collected = run.attention_scores(inputs, rows_frame.index.tolist())
    predictions = prediction_table(run.preprocessor, run.predict_raw(rows_frame, what=source))
    branch_weights = run.branch_weights
    if branch_weights is not None:
        images["branch_weights"] = bar_chart(
            list(branch_weights.values()), list(branch_weights), "ensemble branch weights (SparseAttentionWeighting)",
            folder / "branch_weights.png", xlabel="weight", sort=False,
        )

    attention_columns, contexts, neighbours, agreement, neighbour_targets = {}, {}, {}, {}, {}
    if collected is None:
        notes.append(
            f"Model type '{run.config.model.type}' has no attention layer, so there are no attention scores to show."
        )
    else:
        arrays, description = collected
        save_attention(folder, "attention", {k: v[explained] for k, v in arrays.items()}, description)
        images.update(attention_heatmaps(arrays, description, folder))
        attention_columns = column_importance(attention_importance(arrays, description, branch_weights))
        train_frame = None
        if any(info.get("axes", [None])[-1:] in (["key_sample"], ["neighbour"]) for info in description.values()):
            train_frame = run.splits().train  # context and retrieved rows are training rows; read once
        explained_ids = rows_frame.index[explained].tolist()
        contexts = context_tables(arrays, description, explained, train_frame, explained_ids)
        neighbours = neighbour_tables(arrays, description, explained, explained_ids, train_frame, schema.target)
        if neighbours and train_frame is not None:
            own = rows_frame[schema.target] if schema.target in rows_frame.columns and rows_frame[schema.target].notna().all() \
                else predictions["prediction"]
            agreement = label_agreement(arrays, description, own.to_numpy(), train_frame[schema.target], schema.task)
        if neighbours and schema.task == "regression":
            neighbour_targets = _neighbour_targets(arrays, description, explained)

    ranking = model_ranking(run, inputs)
    importance = ranking.global_importance() if ranking is not None else {}
    labelled = schema.target in rows_frame.columns and rows_frame[schema.target].notna().all()
    permutation, permutation_std, metric, trust = {}, {}, None, {}
    if labelled:
        permutation, permutation_std, metric = permutation_importance(run, rows_frame, permutation_repeats, run.config.seed)
        from tabcli.explain.trust import significant

        trust = _trust(run, rows_frame, {"importance": importance, "attention": attention_columns},
                       significant(permutation, permutation_std, permutation_repeats))
    else:
        notes.append(f"'{schema.target}' is missing from the data, so permutation importance and the trust checks "
                     "(which need labels) are skipped.")
    (folder / "trust.json").write_text(json.dumps({k: v.as_dict() for k, v in trust.items()}, indent=2) + "\n",
                                       encoding="utf-8")

    table = _importance_table(list(schema.features), importance, ranking, attention_columns, permutation, permutation_std)
    table.to_csv(folder / "importance.csv", index=False)
    images.update(_importance_images(folder, table, metric, ranking, trust))

    explained_rows = []
    for position, index in zip(positions, explained):
        row = {"position": position, "row": rows_frame.index[index], "values": rows_frame.iloc[index].to_dict(),
               "prediction": predictions.iloc[index].to_dict(), "image": None, "neighbour_columns": None}
        if ranking is not None:
            shares = dict(zip(ranking.columns, ranking.per_row[index].tolist()))
            row["image"] = images[f"row_{position}"] = bar_chart(
                list(shares.values()), list(shares), f"row {position}: what drives this prediction",
                folder / f"row_{position}.png", xlabel="share of the output change",
            )
            row["top_columns"] = top_columns(ranking.per_row[index], ranking.columns, TOP_ROW_COLUMNS, 0.005)
            if ranking.neighbour_columns is not None:
                row["neighbour_columns"] = top_columns(ranking.neighbour_columns[index], ranking.columns,
                                                       TOP_ROW_COLUMNS, 0.005)
        if index in neighbour_targets:
            row["neighbour_target"] = neighbour_targets[index]
        explained_rows.append(row)
    correlation = trust["importance"].correlation if "importance" in trust else None
    report = write_report(
        folder / "report.html", run=run, source=source, n_rows=len(rows_frame), images=images, importance=table,
        ranking=ranking, trust=trust, metric=metric, explained_rows=explained_rows, context_tables=contexts,
        neighbour_tables=neighbours, agreement=agreement, notes=notes,
    )
    return ExplainResult(
        output=folder, report=report, importance=importance, method=ranking.method if ranking else "",
        paths=ranking.paths if ranking else {}, attention_importance=attention_columns,
        permutation_importance=permutation, rank_correlation=correlation,
        trust={k: v.as_dict() for k, v in trust.items()}, images=images, notes=notes,
    )


def _neighbour_targets(arrays: dict, description: dict, explained: list[int]) -> dict[int, float]:
    """Regression: each explained row's retrieval-weighted mean of its neighbours' targets (target units)."""
    from tabcli.explain.neighbours import retrieval_layers

    layer = retrieval_layers(description)[0]
    weights = np.asarray(arrays[f"{layer}__weights"], dtype=np.float64).mean(axis=1)
    labels = np.asarray(arrays[f"{layer}__labels"], dtype=np.float64)
    return {i: float((weights[i] * labels[i]).sum() / weights[i].sum()) for i in explained}


def _trust(run, frame: pd.DataFrame, rankings: dict, permutation: dict) -> dict:
    """:func:`~tabcli.explain.trust.trust_check` of every non-empty ranking (one random-deletion baseline)."""
    from tabcli.explain.importance import primary_metric
    from tabcli.explain.occlusion import reference_frame
    from tabcli.explain.trust import random_deletion, trust_check

    rankings = {name: values for name, values in rankings.items() if values}
    if not rankings:
        return {}
    reference = reference_frame(run)
    metric, baseline = primary_metric(run, frame)
    random_drop = random_deletion(run, frame, reference, baseline, seed=run.config.seed)
    return {name: trust_check(run, frame, values, permutation, reference, baseline, random_drop, metric)
            for name, values in rankings.items()}


def _importance_table(columns: list[str], importance: dict, ranking, attention: dict, permutation: dict,
                      permutation_std: dict) -> pd.DataFrame:
    """``importance.csv``: one row per column, the model's ranking first (largest on top)."""
    table = pd.DataFrame({"column": columns})
    table["importance"] = [importance.get(c) for c in columns]
    for path in (ranking.path_rankings if ranking is not None else {}):
        shares = ranking.path_importance(path)
        table[f"{path.replace('-', '_')}_path"] = [shares[c] for c in columns]
    table["attention_importance"] = [attention.get(c) for c in columns]
    table["permutation_importance"] = [permutation.get(c) for c in columns]
    table["permutation_std"] = [permutation_std.get(c) for c in columns]
    key = "importance" if importance else "permutation_importance" if permutation else "column"
    return table.sort_values(key, ascending=key == "column", kind="stable").reset_index(drop=True)


def _importance_images(folder: Path, table: pd.DataFrame, metric: str | None, ranking, trust: dict) -> dict:
    """The global charts: the model's ranking (beside permutation importance when there are labels),
    and attention importance beside permutation importance, titled with the trust check's correlation."""
    from tabcli.reports.plots import bar_chart, importance_comparison

    images = {}
    labelled = table["permutation_importance"].notna().all()
    columns = table["column"].tolist()
    has_attention = table["attention_importance"].notna().all()
    if ranking is not None and labelled:
        images["importance"] = importance_comparison(
            table["importance"], table["permutation_importance"], columns, folder / "importance.png",
            title=f"what drives the predictions ({ranking.method})", permutation_std=table["permutation_std"],
            name="importance", correlation=trust["importance"].correlation if "importance" in trust else None,
        )
    elif ranking is not None:
        images["importance"] = bar_chart(table["importance"].tolist(), columns, f"what drives the predictions ({ranking.method})",
                                         folder / "importance.png")
    elif labelled:
        images["importance"] = bar_chart(table["permutation_importance"].tolist(), columns,
                                         f"permutation importance ({metric} drop)", folder / "importance.png")
    if has_attention and labelled:
        images["attention_importance"] = importance_comparison(
            table["attention_importance"], table["permutation_importance"], columns, folder / "attention_importance.png",
            title="attention importance (what the layers attended to)", permutation_std=table["permutation_std"],
            correlation=trust["attention"].correlation if "attention" in trust else None,
        )
    elif has_attention:
        images["attention_importance"] = bar_chart(table["attention_importance"].tolist(), columns, "attention importance",
                                                   folder / "attention_importance.png")
    return images
