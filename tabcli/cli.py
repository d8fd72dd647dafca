"""The ``tabcli`` command line (Typer).

Only Typer is imported at start-up; each command imports what it needs (TensorFlow only once
training starts), so ``tabcli --help`` answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tabcli._version import __version__
from tabcli.cli_support import console as _console
from tabcli.cli_support import DefaultCommandGroup, GroupDefaultCommand, escape, metrics_table, user_errors

EXIT_CODES = """Exit codes: 0 success; 1 training failed (e.g. the loss diverged) or an unexpected error;
2 invalid config, data or arguments (nothing is trained); 130 interrupted (Ctrl-C)."""

app = typer.Typer(
    name="tabcli",
    help="Attention models for tables: train from a YAML config, get metrics and attention scores.\n\n"
    + EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: Optional[bool]) -> None:
    if value:
        typer.echo(f"tabcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Attention models for tables."""


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
    data.na_values, data.split.{valid,test,stratify}; model.type (tabular_attention |
    multi_resolution | interpretable | ensemble | mlp | gbdt) and its settings;
    training.{epochs,batch_size,learning_rate,early_stopping_patience}; output.dir.
    """
    console = _console()
    with user_errors():
        from tabcli.config import load_config

        experiment = load_config(config, set_ or [])
        from tabcli.experiment import train_experiment

        result = train_experiment(
            experiment,
            run_dir=run_dir,
            console=None if quiet else console,
            config_folder=config.resolve().parent,
        )
    _print_result(console, result)


def _print_result(console, result) -> None:
    console.print(metrics_table(f"metrics ({result.task})", result.metrics))
    unit = "boosting iterations" if result.model_type == "gbdt" else "epochs"
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
        from tabcli.cli_support import RowProgress
        from tabcli.inference import predict_file

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


BATCH_EXIT_CODES = "Exit codes: 0 every run completed and every gate passed; 1 a run failed; 3 a gate failed; 2 invalid arguments; 130 interrupted."

batch_app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Run many experiments unattended and write a leaderboard and a JUnit report; `tabcli batch merge` joins shards.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(batch_app, name="batch")


@batch_app.command(DefaultCommandGroup.default_command, cls=GroupDefaultCommand, hidden=True, epilog=BATCH_EXIT_CODES)
def batch(
    configs: List[Path] = typer.Argument(..., help="Config files and/or folders (searched recursively for *.yaml).", show_default=False),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Runs in parallel; each gets cores/jobs CPU threads."),
    repeat: int = typer.Option(1, "--repeat", "-k", min=1, help="Seeds per config: seed, seed+1, ..."),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help="Override for every run (repeatable)."),
    gate: Optional[List[str]] = typer.Option(
        None, "--gate", "-g", metavar="EXPR",
        help="Pass/fail condition on the mean over repeats, e.g. `test.roc_auc>=0.92`, `test.rmse<=gbdt*1.05` "
        "(relative to the gbdt run on the same table), `penguins*:test.accuracy>0.95`. Repeatable. "
        "With --shard, give it to `tabcli batch merge` instead.",
    ),
    output: Path = typer.Option(Path("batch"), "--output", "-o", help="Folder for runs, logs, leaderboard and JUnit report."),
    resume: bool = typer.Option(False, "--resume", help="Keep runs already completed in OUTPUT; re-run failed or interrupted ones."),
    shard: Optional[str] = typer.Option(
        None, "--shard", metavar="K/N",
        help="Run only the K-th of N disjoint parts of the batch (configs x repeats, sorted, split round-robin), e.g. "
        "`--shard 2/3`: the same command with K = 1..N on N machines runs the whole batch once.",
    ),
) -> None:
    """Run many experiments unattended and write a leaderboard (CSV, Markdown, JSON) and a JUnit report.

    Each config, with each of REPEAT seeds, is one isolated `tabcli train` process; a failing run is
    recorded with its error and the others go on. The leaderboard gives, per config, the test
    primary metric (ROC AUC, accuracy or RMSE) as mean ± std over repeats, train time, parameter
    count and status, sorted best first within each table.

    Across machines: run `--shard K/N` on each, then `tabcli batch merge DIRS... --gate EXPR`
    on their output folders for one leaderboard, JUnit report and gate verdict.
    """
    console = _console()
    with user_errors():
        from tabcli.batch.batch import run_batch
        from tabcli.data.dataset import parse_shard

        result = run_batch(configs, jobs=jobs, repeat=repeat, overrides=set_ or [], gates=gate or [], output=output,
                           resume=resume, console=console, shard=None if shard is None else parse_shard(shard))
    raise typer.Exit(result.exit_code)


@batch_app.command("merge", epilog=BATCH_EXIT_CODES)
def batch_merge(
    dirs: List[Path] = typer.Argument(..., help="The --output folders of `tabcli batch --shard K/N`, one per shard.", show_default=False),
    gate: Optional[List[str]] = typer.Option(
        None, "--gate", "-g", metavar="EXPR", help="Pass/fail condition on the merged results, as in `tabcli batch` (repeatable)."
    ),
    output: Path = typer.Option(Path("batch"), "--output", "-o", help="Folder for the merged leaderboard, gates.json and JUnit report."),
) -> None:
    """Merge the folders of a batch run in shards into one leaderboard (CSV, Markdown, JSON) and JUnit report.

    Every shard of the batch must be given once. Means over repeats and gates such as
    `test.rmse<=gbdt*1.05` are computed on the merged runs, exactly as if the batch had run on
    one machine; the leaderboard's run directories point into the shard folders.
    """
    console = _console()
    with user_errors():
        from tabcli.batch.batch import merge_batches

        result = merge_batches(dirs, gates=gate or [], output=output, console=console)
    raise typer.Exit(result.exit_code)


@app.command()
def serve(
    run_dir: Path = typer.Argument(..., help="Run directory written by `tabcli train`.", show_default=False),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", "-p", min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Server processes, each with the model loaded and cores/workers threads."),
    max_rows: int = typer.Option(10_000, "--max-rows", min=1, help="Most rows accepted in one request."),
) -> None:
    """Serve a trained run over HTTP (FastAPI + uvicorn; pip install 'tabcli[serve]').

    POST /predict takes a JSON list of records (or text/csv) and answers one prediction per record,
    in order, with class probabilities; `?explain=true` adds the columns that move each row's prediction
    most (as `tabcli explain` ranks them) and, for retrieval models, the columns that chose its
    neighbours and the training rows it leaned on. GET /health, GET /metadata; /docs lists
    every column. A record with an unknown or missing column, or a value of the wrong type, is a 422
    naming the record and the column. The server never writes to the run directory.
    """
    console = _console()
    with user_errors():
        from tabcli.serve.launch import serve_run

        serve_run(run_dir, host=host, port=port, workers=workers, max_rows=max_rows, console=console)


TUNE_EXIT_CODES = ("Exit codes: 0 the search ran and at least one trial completed; 1 no trial completed; "
                   "2 invalid config, space, data or arguments (no trial ran); 130 interrupted (--resume continues).")


@app.command(epilog=TUNE_EXIT_CODES)
def tune(
    config: Path = typer.Argument(..., help="Experiment config (YAML); its `tune:` section sets metric, sampler, pruner and space.", show_default=False),
    trials: Optional[int] = typer.Option(None, "--trials", "-n", min=1, help="Trials this process runs (default 20 without --timeout)."),
    timeout: Optional[str] = typer.Option(None, "--timeout", "-t", metavar="DURATION", help="Stop starting trials after this time: 90s, 20m, 1h30m."),
    storage: Optional[str] = typer.Option(
        None, "--storage", metavar="URL",
        help="Optuna storage. Default: SQLite `OUTPUT/study.db`. With a URL given here the study is shared: the same "
        "command, started on any number of machines, creates the study once and every other process joins it "
        "(`postgresql://user:pass@host/db`; pip install 'tabcli[postgres]').",
    ),
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the config's name)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Tune folder (default: `<output.dir>/<name>-tune`)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the existing study (it must exist); finished trials are kept, never "
                                "repeated. Needed to reuse a tune folder with the default storage; with --storage URL a process "
                                "joins the study without it."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Trials at once, each in its own process with cores/jobs threads."),
    refit: int = typer.Option(0, "--refit", min=0, metavar="K",
                              help="After the search, train the best and the starting config with K seeds each (same split) "
                              "and compare their test metric, mean ± std (--jobs runs at a time)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE", help="Override a config key (repeatable)."),
    worker: bool = typer.Option(False, "--worker", hidden=True, help="Run trials only (started by --jobs)."),
) -> None:
    """Search hyper-parameters with Optuna; every trial is an ordinary run directory.

    The metric is read from the validation split (test rows never choose anything). Without
    `tune.space` each model family searches its documented default space (docs/tuning.md).
    Writes to the tune folder: study.db (SQLite storage), study.json (the study it belongs to),
    trials/trial-NNNN (run directories), trials.csv / trials.md / trials.json, best.yaml
    (`tabcli train best.yaml` retrains the best trial),
    plots/ (history, importances, slices), report.html and, with --refit, refit.json / refit.md.
    """
    console = _console()
    with user_errors():
        from tabcli.tune.runner import TuneRequest, parse_duration, run_tune

        seconds = parse_duration(timeout)
        request = TuneRequest(config=config, overrides=set_ or [], trials=trials if trials or seconds else 20,
                              timeout=seconds, storage=storage, study=study, output=output, resume=resume,
                              jobs=jobs, refit=refit, worker=worker)
        outcome = run_tune(request, console=None if worker else console)
    if worker:
        return
    counts = ", ".join(f"{n} {state}" for state, n in sorted(outcome.counts.items())) or "no trials"
    console.print(f"study '{escape(outcome.study_name)}': {counts}")
    if outcome.best_number is not None:
        console.print(f"best: trial {outcome.best_number}, valid.{outcome.metric} {outcome.best_value:.4f}; "
                      f"config [bold]{escape(str(outcome.best_config))}[/]")
    if outcome.refit:
        for label in ("default", "best"):
            entry = outcome.refit[label]
            console.print(f"refit {label}: {outcome.refit['metric']} {entry['mean']:.4f} ± {entry['std']:.4f} "
                          f"over seeds {', '.join(map(str, outcome.refit['seeds']))}")
    console.print(f"trials: {escape(str(outcome.folder / 'trials.csv'))} · report: {escape(str(outcome.folder / 'report.html'))}")
    if outcome.interrupted:
        again = f"tabcli tune {config} --resume --output {outcome.folder}"
        if storage:
            from tabcli.tune.study import safe_url

            again += f" --storage {safe_url(storage)} --study {outcome.study_name}"
        console.print(f"[bold red]Interrupted.[/] Continue with: {escape(again)}")
        raise typer.Exit(130)
    if outcome.best_number is None:
        console.print("[bold red]No trial completed[/]; see the error column of trials.csv.")
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point. SIGTERM (a CI job cancelled, a batch stopped) is handled like
    Ctrl-C, so a run directory is marked ``interrupted`` rather than left looking alive; training
    stops at the next batch even if the first KeyboardInterrupt was lost
    (:mod:`tabcli.training.interrupts`)."""
    from tabcli.training.interrupts import install_handlers

    install_handlers()
    app()


if __name__ == "__main__":
    main()
