"""``tabcli batch`` end to end: plan, run, leaderboard, gates, JUnit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tabcli.batch.gates import GateResult, check_gates, evaluate_gates, parse_gate
from tabcli.batch.junit import write_junit
from tabcli.batch.leaderboard import summarize, write_leaderboard
from tabcli.batch.plan import collect_configs, plan_runs
from tabcli.batch.runner import Outcome, run_all
from tabcli.cli_support import LiveProgress
from tabcli.errors import ConfigError

__all__ = ["BatchResult", "run_batch", "EXIT_OK", "EXIT_RUN_FAILED", "EXIT_GATE_FAILED"]

EXIT_OK, EXIT_RUN_FAILED, EXIT_GATE_FAILED = 0, 1, 3


@dataclass
class BatchResult:
    """Outcomes, leaderboard rows, gate results, written files and the exit code of a batch."""

    outcomes: list[Outcome]
    rows: list[dict]
    gates: list[GateResult]
    files: dict
    exit_code: int


def run_batch(configs, jobs=1, repeat=1, overrides=(), gates=(), output=Path("batch"), resume=False, console=None) -> BatchResult:
    """Run every config ``repeat`` times, ``jobs`` at a time, and report.

    Writes into ``output``: ``runs/<config>/seed-<seed>/`` (run directories), ``logs/``,
    ``leaderboard.{csv,md,json}``, ``gates.json`` and ``junit.xml``.

    Returns:
        :class:`BatchResult`; ``exit_code`` is 0 (all completed, gates passed), 1 (a run
        failed) or 3 (a gate failed).

    Raises:
        ConfigError: For unreadable gate expressions or ones that could never be checked
            (:func:`~tabcli.batch.gates.check_gates`), no configs, or an ``output`` holding runs
            without ``resume``.
    """
    output = Path(output)
    parsed_gates = [parse_gate(text) for text in gates]
    files = collect_configs([Path(c) for c in configs])
    if (output / "runs").exists() and any((output / "runs").iterdir()) and not resume:
        raise ConfigError(f"'{output}' already holds runs of a batch; pass --resume to continue it, or choose another --output.")
    planned = plan_runs(files, repeat, list(overrides), output)
    check_gates(parsed_gates, {run.config_id: run.task for run in planned})
    say = console.print if console is not None else (lambda *a, **k: None)
    say(f"batch: {len(files)} config(s) x {repeat} seed(s) = {len(planned)} run(s), {jobs} at a time -> {output}")
    progress = _Progress(console, len(planned))
    with progress:  # on Ctrl-C/SIGTERM run_all stops its children; --resume re-runs what they left
        outcomes = run_all(planned, list(overrides), jobs, resume, on_done=progress.done)
    rows = summarize(outcomes)
    gate_results = evaluate_gates(parsed_gates, rows)
    written = write_leaderboard(rows, output)
    written["junit"] = write_junit(outcomes, gate_results, output / "junit.xml")
    from tabcli.runs.run_dir import write_json_atomic

    write_json_atomic(output / "gates.json", [
        {"gate": r.gate.text, "config": r.config, "passed": r.passed, "message": r.message} for r in gate_results
    ])
    if console is not None:
        _print(console, rows, gate_results, written)
    failed = any(o.status != "completed" for o in outcomes)
    exit_code = EXIT_RUN_FAILED if failed else EXIT_GATE_FAILED if any(not r.passed for r in gate_results) else EXIT_OK
    return BatchResult(outcomes=outcomes, rows=rows, gates=gate_results, files=written, exit_code=exit_code)


class _Progress(LiveProgress):
    """A rich progress bar over runs (a line per run when not on a terminal)."""

    def __init__(self, console, total: int):
        self.console, self.total = console, total
        self.progress = None
        if console is not None and console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                     TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"), console=console)
            self.task = self.progress.add_task("", total=total)

    def done(self, outcome: Outcome) -> None:
        from rich.markup import escape

        label = f"{outcome.run.config_id} seed {outcome.run.seed}: {'resumed' if outcome.skipped else outcome.status}"
        if outcome.status != "completed":
            label += f" ({outcome.error})"
        if self.progress is not None:
            self.progress.update(self.task, advance=1, description=escape(label[:80]))
            if outcome.status != "completed":
                self.console.print(f"[red]failed[/] {escape(label)}")
        elif self.console is not None:
            self.console.print(escape(label) + (f" in {outcome.seconds:.1f} s" if outcome.seconds else ""))


def _print(console, rows, gate_results, written) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="leaderboard (test, mean ± std over repeats)", title_justify="left")
    for column in ("config", "dataset", "family", "metric", "mean ± std", "runs", "train s", "parameters", "status"):
        table.add_column(column, justify="right" if column in ("mean ± std", "train s", "parameters") else "left")
    for row in rows:
        table.add_row(
            row["config"], row["dataset"] or "-", row["family"] or "-", row["metric"] or "-",
            "-" if row["mean"] is None else f"{row['mean']:.4f} ± {row['std']:.4f}",
            f"{row['completed']}/{row['runs']}", "-" if row["train_seconds"] is None else f"{row['train_seconds']:.1f}",
            "-" if row["parameters"] is None else f"{row['parameters']:,}",
            row["status"] if row["status"] == "completed" else f"[red]{row['status']}[/]",
        )
    console.print(table)
    for row in rows:
        for error in row["errors"][:1]:
            console.print(f"[red]{escape(row['config'])}[/]: {escape(error)}")
    for result in gate_results:
        mark = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        console.print(f"gate {mark} {escape(result.gate.text)} ({escape(result.config or 'whole batch')}): {escape(result.message)}")
    console.print("written: " + escape(", ".join(str(p) for p in written.values())))
