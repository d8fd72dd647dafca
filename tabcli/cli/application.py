"""The ``tabcli`` Typer application: its options, exit codes and entry point. The commands are
defined in :mod:`tabcli.cli.run_commands` (train, evaluate, predict, explain) and
:mod:`tabcli.cli.workflow_commands` (batch, serve, tune)."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from tabcli._version import __version__

__all__ = ["app", "main", "EXIT_CODES"]

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


def main() -> None:
    """Console-script entry point. SIGTERM (a CI job cancelled, a batch stopped) is handled like
    Ctrl-C, so a run directory is marked ``interrupted`` rather than left looking alive; training
    stops at the next batch even if the first KeyboardInterrupt was lost
    (:mod:`tabcli.training.interrupts`)."""
    from tabcli.training.interrupts import install_handlers

    install_handlers()
    try:
        app()
    except SystemExit as stop:
        _exit_without_teardown(stop.code)
        raise
    _exit_without_teardown(0)


def _exit_without_teardown(code) -> None:
    """End the process with ``code`` once a command is over, skipping the interpreter's module
    teardown when TensorFlow was imported: destroying TensorFlow's and Keras' modules takes
    seconds after every output is already written, a large share of a short ``tabcli predict``. ``atexit`` handlers (logging, joblib's temporary folders,
    ``weakref.finalize`` callbacks) still run and standard streams are flushed first; returns
    without exiting for a non-integer code (Click prints those) or when TensorFlow is absent."""
    if "tensorflow" not in sys.modules or not (code is None or isinstance(code, int)):
        return
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    main()
