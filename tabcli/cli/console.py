"""Console helpers shared by the ``tabcli`` commands: consoles, escaping, metric tables, the
one place where user errors become a one-paragraph message and an exit code, and a command group
whose default command runs when no subcommand is named."""

from __future__ import annotations

import contextlib

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["error_console", "user_errors", "escape", "console", "metrics_table", "DefaultCommandGroup", "GroupDefaultCommand"]


def error_console():
    """A rich console on stderr (errors, interruptions), without highlighting or hard wraps."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def user_errors():
    """Turn tabcli's user errors into a one-paragraph message and an exit code; Ctrl-C into 130.

    Unexpected exceptions (bugs) keep their traceback.
    """
    try:
        yield
    except KeyboardInterrupt as error:
        console = error_console()
        console.show_cursor(True)  # a progress bar stopped mid-line leaves it hidden
        run_dir = getattr(error, "run_dir", None)
        where = f"The run directory {run_dir} is" if run_dir else "A run directory, if any, is"
        console.print(f"\n[bold red]Interrupted.[/] {escape(where)} marked 'interrupted' in run.json.")
        raise typer.Exit(130)
    except Exception as error:  # noqa: BLE001
        from tabcli.errors import TabcliError

        if isinstance(error, TabcliError):
            error_console().print(f"[bold red]Error:[/] {escape(str(error))}")
            raise typer.Exit(error.exit_code)
        if isinstance(error, OSError) and error.errno is not None:
            # A full disk, a file-size limit, a permission change mid-run: the machine's
            # problem, not a bug; name the file and the cause.
            where = f" '{error.filename}'" if error.filename else ""
            run_dir = getattr(error, "run_dir", None)
            error_console().print(
                f"[bold red]Error:[/] could not read or write{escape(where)}: {escape(error.strerror or str(error))}. "
                f"{_os_error_advice(error.errno)} "
                + (f"The run directory {escape(str(run_dir))} is marked 'failed' in run.json and holds no partial model.keras."
                   if run_dir else "")
            )
            raise typer.Exit(1)
        raise


def _os_error_advice(code: int) -> str:
    """What to do about a failed read or write, by its errno."""
    import errno

    advice = {
        errno.ENOSPC: "Free disk space and run again.",
        errno.EDQUOT: "Free space within your disk quota and run again.",
        errno.EFBIG: "A file-size limit stopped the write (see `ulimit -f`); raise it and run again.",
        errno.EACCES: "Fix the permissions of that path and run again.",
        errno.EPERM: "Fix the permissions of that path and run again.",
        errno.EROFS: "That file system is read-only; choose another output directory and run again.",
    }
    return advice.get(code, "Check the path and the disk, then run again.")


def escape(text: str) -> str:
    """Escape rich markup in user-provided text (paths, messages may hold brackets)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def console():
    """The commands' rich console on stdout: live progress on a terminal; 160 columns in logs and pipes."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:  # logs and pipes: room for wide tables instead of 80 columns
        console = Console(highlight=False, soft_wrap=True, width=max(console.width, 160))
    return console


def metrics_table(title: str, columns: dict):
    """A rich table of scalar metrics, one column per entry of ``columns`` (name -> metrics)."""
    from rich.table import Table

    from tabcli.evaluation.metrics import scalar_metrics

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    first = next(iter(columns.values()))
    for key in scalar_metrics(first):
        cells = [("-" if m.get(key) is None else f"{m[key]:.4f}") for m in columns.values()]
        table.add_row(key, *cells)
    return table


class LiveProgress:
    """Base of the progress displays of long commands (`batch`, `tune`): ``self.progress`` is a
    started ``rich.progress.Progress`` inside the ``with`` block, or None (no console)."""

    progress = None

    def __enter__(self):
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()


class DefaultCommandGroup(TyperGroup):
    """A command group that also works as a command: ``tabcli batch CONFIGS...`` runs the group's
    default command, ``tabcli batch merge DIRS...`` its ``merge`` subcommand.

    Arguments whose first word names no subcommand (config paths, options, ``--help``) go to the
    subcommand named :attr:`default_command` (registered hidden, with
    :class:`GroupDefaultCommand`), so the group keeps the usage, help and errors of a plain
    command. A config folder named like a subcommand is reached as ``./NAME``.
    """

    default_command = "run"

    def parse_args(self, ctx, args):
        """Put the default command's name in front of ``args`` unless they start with a subcommand."""
        if not args or args[0] not in self.commands:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class GroupDefaultCommand(TyperCommand):
    """The default command of a :class:`DefaultCommandGroup`: its usage line, help and error
    messages name the group (``tabcli batch CONFIGS...``), not ``tabcli batch run``."""

    def make_context(self, info_name, args, parent=None, **extra):
        """A context that takes the group's place in the command path."""
        if parent is not None:
            info_name, parent = parent.info_name, parent.parent
        return super().make_context(info_name, args, parent=parent, **extra)


class RowProgress(LiveProgress):
    """The progress bar of a command that reads a table in chunks (:data:`tabcli.data.chunks.Progress`):
    one line per phase with the rows done and, when the size is known, the share of the table read.
    Shown on a terminal only; logs get the command's final lines."""

    def __init__(self, console):
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._tasks: dict[str, int] = {}
        if console.is_terminal:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                     TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn(), TimeRemainingColumn(),
                                     console=console)

    def __call__(self, phase: str, rows: int, completed: float, total: float | None) -> None:
        if self.progress is None:
            return
        if phase not in self._tasks:
            self._tasks[phase] = self.progress.add_task(phase, total=total, rows=0)
        self.progress.update(self._tasks[phase], completed=completed, total=total, rows=rows)
