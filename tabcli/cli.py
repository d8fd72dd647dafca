"""The ``tabcli`` command line (Typer).

Only Typer is imported at start-up; each command imports what it needs (TensorFlow only once
training starts), so ``tabcli --help`` answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tabcli._version import __version__

EXIT_CODES = """Exit codes: 0 success; 1 training failed (e.g. the loss diverged) or an unexpected error;
2 invalid config, data or arguments (nothing is trained); 130 interrupted (Ctrl-C)."""

app = typer.Typer(
    name="tabcli",
    help="Attention models for tables: train from a YAML config, get metrics and attention scores.\n\n"
    + EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
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


def _error_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


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
        help="Exact run directory (must not exist or be empty). Default: <output.dir>/<name>-<YYYYmmdd-HHMMSS>.",
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
    multi_resolution | interpretable | ensemble | mlp) and its settings;
    training.{epochs,batch_size,learning_rate,early_stopping_patience}; output.dir.
    """
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    errors = _error_console()
    try:
        from tabcli.config import load_config

        experiment = load_config(config, set_ or [])
        from tabcli.experiment import train_experiment

        result = train_experiment(
            experiment,
            run_dir=run_dir,
            console=None if quiet else console,
            config_folder=config.resolve().parent,
        )
    except KeyboardInterrupt:
        errors.print("[bold red]Interrupted.[/] The run directory (if any) is marked 'interrupted' in run.json.")
        raise typer.Exit(130)
    except Exception as error:  # noqa: BLE001 - user errors get a message, bugs a traceback
        from tabcli.errors import TabcliError

        if isinstance(error, TabcliError):
            errors.print(f"[bold red]Error:[/] {error}")
            raise typer.Exit(error.exit_code)
        raise
    _print_result(console, result)


def _print_result(console, result) -> None:
    from rich.table import Table

    table = Table(title=f"metrics ({result.task})", title_justify="left")
    table.add_column("metric")
    for split in ("train", "valid", "test"):
        table.add_column(split, justify="right")
    for key in result.metrics["test"]:
        cells = []
        for split in ("train", "valid", "test"):
            value = result.metrics[split].get(key)
            cells.append("-" if value is None else f"{value:.4f}")
        table.add_row(key, *cells)
    console.print(table)
    console.print(f"trained {result.epochs} epochs in {result.seconds:.1f} s")
    console.print(f"run directory: [bold]{result.run_dir}[/]")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
