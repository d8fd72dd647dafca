"""``tabcli batch`` (and ``batch merge``), ``serve`` and ``tune``: many runs, or a run in service."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tabcli.cli.application import app
from tabcli.cli.console import console as _console
from tabcli.cli.console import DefaultCommandGroup, GroupDefaultCommand, escape, user_errors

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
