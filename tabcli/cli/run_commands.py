"""``tabcli train``, ``evaluate``, ``predict`` and ``explain``: one run at a time."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tabcli.cli.application import app
from tabcli.cli.console import console as _console
from tabcli.cli.console import escape, metrics_table, user_errors
from tabcli.models.registry import FAMILIES

@app.command()
def train(
    config: Path = typer.Argument(..., help="Experiment config (YAML).", show_default=False),
    set_: Optional[List[str]] = typer.Option(
        None,
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a config key; the value is read as YAML. Repeatable, e.g. "
        "--set training.epochs=5 --set model.d_model=32. Relative paths are relative to the current directory.",
    ),
    run_dir: Optional[Path] = typer.Option(
        None,
        "--run-dir",
        help="Exact run directory (must not exist or be empty). Default: `<output.dir>/<name>-<YYYYmmdd-HHMMSS>`.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display; print only the result."),
) -> None:
    """Train a model from CONFIG and write a run directory.

    The run directory holds config.yaml (resolved), run.json (status, versions, times),
    model.keras, preprocessing.joblib, history.csv, metrics.json, predictions/test.parquet and
    attention/test.npz (+ test.json describing every array).

    Config keys (see configs/ for examples): data.train and data.target are required; data.task
    (auto|binary|multiclass|regression), data.numerical / data.categorical (force column types;
    others are inferred: numbers are numerical, strings/booleans categorical, integer columns
    with <= data.integer_categorical_max_unique distinct values categorical), data.drop,
    data.na_values, data.split.{valid,test,stratify}; model.type
    ({families}) and its settings;
    training.{epochs,batch_size,learning_rate,early_stopping_patience}; output.dir.
    """
    console = _console()
    with user_errors():
        from tabcli.config import load_config

        experiment = load_config(config, set_ or [])
        from tabcli.training.train import train_experiment

        result = train_experiment(
            experiment,
            run_dir=run_dir,
            console=None if quiet else console,
            config_folder=config.resolve().parent,
        )
    _print_result(console, result)


train.__doc__ = train.__doc__.replace("{families}", " | ".join(FAMILIES))


def _print_result(console, result) -> None:
    console.print(metrics_table(f"metrics ({result.task})", result.metrics))
    from tabcli.models.registry import family

    unit = family(result.model_type).implementation.iteration_unit
    console.print(f"trained {result.epochs} {unit} in {result.seconds:.1f} s")
    console.print(f"run directory: [bold]{escape(str(result.run_dir))}[/]")
    run = escape(str(result.run_dir))
    console.print(f"next: tabcli evaluate {run} · tabcli explain {run} · "
                  f"tabcli predict {run} --data FILE --output predictions.csv")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory written by `tabcli train`.", show_default=False),
    data: Optional[Path] = typer.Option(
        None, "--data", "-d", help="Labelled CSV/TSV/Parquet file with the training columns. Default: the run's test split."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Metrics JSON to write; plots go in its folder. Default: `RUN_DIR/evaluation/<test|data>/metrics.json`."
    ),
) -> None:
    """Measure a trained run on its test split or on a new labelled file.

    Classification: accuracy, balanced accuracy, ROC AUC, PR AUC, log loss, F1 macro, Brier score,
    confusion matrix; plots roc.png, pr.png, confusion_matrix.png, calibration.png.
    Regression: RMSE, MAE, R², MAPE; plots predicted_vs_actual.png, residuals.png.
    The test split is recreated from the run's config and seed (the data file must be unchanged).
    """
    console = _console()
    with user_errors():
        from tabcli.evaluation.evaluate import evaluate_run

        result = evaluate_run(run_dir, data, output)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    console.print(metrics_table(f"{result.name}: {result.rows} rows", {result.name: result.metrics}))
    matrix = result.metrics.get("confusion_matrix")
    if matrix is not None:
        console.print(f"confusion matrix (rows: true, columns: predicted): {escape(str(matrix))}")
    console.print(f"metrics: [bold]{escape(str(result.json_path))}[/]")
    console.print(escape(f"plots: {', '.join(str(p.name) for p in result.plots.values())} in {result.json_path.parent}"))


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="Run directory written by `tabcli train`.", show_default=False),
    data: Path = typer.Option(..., "--data", "-d", help="CSV/TSV/Parquet file, or folder of Parquet files (hive partitions become columns), to predict; the target column may be absent.", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Predictions file: .csv or .parquet.", show_default=False),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="Column of DATA copied to the output to identify rows."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
    chunk_rows: int = typer.Option(65_536, "--chunk-rows", min=1, help="Rows read, predicted and written at a time; memory grows with it, not with the table."),
    shard: Optional[str] = typer.Option(
        None, "--shard", metavar="K/N",
        help="Predict only the K-th of N disjoint parts of a folder (its sorted files, round-robin), so N machines "
        "share it with the same command; give each its own OUTPUT, e.g. `--shard 2/4 --output part-2-of-4.parquet`.",
    ),
) -> None:
    """Predict every row of a file (or a folder of Parquet files) with a trained run.

    The output has one row per input row, in input order (a folder's files in sorted path order):
    the id column (if given), `prediction` and, for classification, one `proba_<class>` column per
    class (summing to 1). Unseen categories and missing values are handled as in training. The table
    is read and the output written a chunk of rows at a time, so a table larger than memory works;
    the output appears, complete, only when every row is predicted.
    """
    console = _console()
    with user_errors():
        from tabcli.cli.console import RowProgress
        from tabcli.prediction.files import predict_file

        notes: list[str] = []
        with RowProgress(console) as progress:
            summary = predict_file(run_dir, data, output, id_column=id_column, overwrite=overwrite, notes=notes,
                                   chunk_rows=chunk_rows, shard=shard, progress=progress)
    for note in notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    console.print(f"{summary.rows} predictions written to [bold]{escape(str(output))}[/]")
    if summary.class_counts:
        console.print("predicted classes: " + ", ".join(f"{escape(str(k))}: {v}" for k, v in summary.class_counts.most_common(10)))


@app.command()
def explain(
    run_dir: Path = typer.Argument(..., help="Run directory written by `tabcli train`.", show_default=False),
    data: Optional[Path] = typer.Option(
        None, "--data", "-d", help="CSV/TSV/Parquet file with the training columns. Default: the run's test split (with its validation split for the global figures when the test split has under 500 rows)."
    ),
    rows: Optional[str] = typer.Option(
        None, "--rows", "-r", help="Rows to explain one by one: 0-based positions and ranges, e.g. '0,3,10-12'. Default: 0-4."
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder. Default: RUN_DIR/explain."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier explanation in the output folder."),
) -> None:
    """Show which columns drive the model's predictions, whether that can be trusted, and what its attention looked at.

    Writes importance.csv (the model's column ranking: how far the outputs move when a column alone is set to
    its training median / mode, measured for the default retrieval model on its retrieval and inter-feature
    paths and added; attention and permutation importance beside it), trust.json (each ranking's Spearman correlation with permutation importance and the metric drop when its
    top 3 columns are set to their training median / mode, against 3 random columns), attention.npz/.json and
    heatmaps of every attention layer, ensemble branch weights, per-row charts, the training rows each explained
    row retrieved or attended to, and a self-contained report.html.
    """
    console = _console()
    with user_errors():
        from tabcli.explain.explain import explain_run

        result = explain_run(run_dir, data, rows, output, overwrite=overwrite)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    if result.importance:
        top = sorted(result.importance.items(), key=lambda kv: -kv[1])[:5]
        console.print(f"top columns ({result.method}): " + ", ".join(f"{escape(k)} ({v:.2f})" for k, v in top))
    if result.paths:
        console.print("output change by path: " + ", ".join(f"{k} {v:.0%}" for k, v in result.paths.items()))
    if result.permutation_importance:
        top = sorted(result.permutation_importance.items(), key=lambda kv: -kv[1])[:5]
        console.print("top columns by permutation importance: " + ", ".join(f"{escape(k)} ({v:.3f})" for k, v in top))
    if result.attention_importance:
        top = sorted(result.attention_importance.items(), key=lambda kv: -kv[1])[:5]
        console.print("top columns by attention (what the layers attended to): "
                      + ", ".join(f"{escape(k)} ({v:.2f})" for k, v in top))
    for name, check in result.trust.items():
        rho = "n/a" if check["spearman_with_permutation"] is None else f"{check['spearman_with_permutation']:.2f}"
        ratio = "n/a" if check["ratio"] is None else f"{check['ratio']:.1f}x"
        mark = "[green]passes[/]" if check["passes"] else "[red]fails[/]"
        console.print(f"trust check, {name}: Spearman with permutation {rho}; deleting its top 3 costs "
                      f"{check['top_drop']:.4f} {check['metric']} vs {check['random_drop']:.4f} for 3 random columns "
                      f"({ratio}): {mark}")
    console.print(f"report: [bold]{escape(str(result.report))}[/]")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="Run directory written by `tabcli train` (a Keras family).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Folder (savedmodel) or file (onnx) to write.", show_default=False),
    format_: str = typer.Option(
        "savedmodel", "--format", "-f",
        help="`savedmodel`: a TensorFlow SavedModel folder, for TensorFlow Serving or `tf.saved_model.load` in any "
        "TensorFlow program. `onnx`: one .onnx file (opset 18), for ONNX Runtime from Python, Java, C#, C++ or the "
        "browser; needs `pip install 'tabcli[export]'`.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
    attention: bool = typer.Option(
        False, "--attention",
        help="Also output every attention layer's scores (named LAYER__SCORE and shaped as in the run's "
        "attention/*.npz; for a retrieval model the retrieved training rows' ids, labels and weights), to show why "
        "each served prediction came out as it did.",
    ),
) -> None:
    """Export a trained run as one self-contained model that takes the table's raw columns.

    The fitted preprocessing (imputation, quantile transform, category codes with unseen and rare
    categories) is part of the graph: the model's `serving_default` signature takes one input per
    feature column (numbers as float64 with NaN for missing, categories as strings, empty for
    missing) and returns `probabilities` (one column per class) or `prediction` in the target's
    units, the same numbers as `tabcli predict`. A retrieval model searches its stored training
    rows exactly inside the graph. The metadata (SavedModel: `assets/tabcli_export.json`; ONNX: the
    `tabcli_export` metadata property) names the columns, classes, tabcli version and test metrics.
    """
    console = _console()
    with user_errors():
        from tabcli.export.savedmodel import export_run

        result = export_run(run_dir, output, format_, overwrite=overwrite, attention=attention)
    console.print(f"exported {escape(result.metadata['model_type'])} ({escape(format_)}) to [bold]{escape(str(result.path))}[/]")
    outputs = [*result.metadata["outputs"], *result.metadata.get("attention_outputs", {})]
    console.print(f"inputs: {len(result.metadata['inputs'])} columns; outputs: {escape(', '.join(outputs))}")
    renamed = {column: name for column, name in result.metadata["input_names"].items() if column != name}
    if renamed:
        console.print("inputs named other than their column (a signature key takes letters, digits and _ only): "
                      + escape(", ".join(f"'{column}' -> {name}" for column, name in renamed.items())))
