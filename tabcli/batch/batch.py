"""``tabcli batch`` end to end: plan, run, leaderboard, gates, JUnit; and ``tabcli batch merge``, the same
report from the folders of a batch run in shards."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tabcli.batch.gates import GateResult, check_gates, evaluate_gates, parse_gate
from tabcli.batch.junit import write_junit
from tabcli.batch.leaderboard import summarize, write_leaderboard
from tabcli.batch.plan import collect_configs, plan_runs
from tabcli.batch.runner import Outcome, run_all
from tabcli.batch.shards import read_shards, select_shard, write_manifest
from tabcli.cli.console import LiveProgress
from tabcli.errors import ConfigError

__all__ = ["BatchResult", "run_batch", "merge_batches", "report", "EXIT_OK", "EXIT_RUN_FAILED", "EXIT_GATE_FAILED"]

EXIT_OK, EXIT_RUN_FAILED, EXIT_GATE_FAILED = 0, 1, 3


@dataclass
class BatchResult:
    """Outcomes, leaderboard rows, gate results, written files and the exit code of a batch."""

    outcomes: list[Outcome]
    rows: list[dict]
    gates: list[GateResult]
    files: dict
    exit_code: int


def run_batch(configs, jobs=1, repeat=1, overrides=(), gates=(), output=Path("batch"), resume=False, console=None,
              shard: tuple[int, int] | None = None) -> BatchResult:
    """Run every config ``repeat`` times, ``jobs`` at a time, and report.

    Writes into ``output``: ``runs/<config>/seed-<seed>/`` (run directories), ``logs/``,
    ``leaderboard.{csv,md,json}``, ``gates.json``, ``junit.xml`` and ``batch.json`` (what
    ``tabcli batch merge`` reads).

    Args:
        shard: ``(K, N)``: run only the K-th of N disjoint parts of the plan
            (:func:`~tabcli.batch.shards.select_shard`); the leaderboard and report cover that
            part. Gates need the whole batch, so they are refused with a shard.

    Returns:
        :class:`BatchResult`; ``exit_code`` is 0 (all completed, gates passed), 1 (a run
        failed) or 3 (a gate failed).

    Raises:
        ConfigError: For unreadable gate expressions or ones that could never be checked
            (:func:`~tabcli.batch.gates.check_gates`), gates with ``shard``, no configs, or an
            ``output`` holding runs without ``resume``.
    """
    output = Path(output)
    parsed_gates = [parse_gate(text) for text in gates]
    if shard is not None and parsed_gates:
        raise ConfigError(
            "--gate cannot be checked on one shard: a gate compares means over repeats and other families, which "
            "other shards may hold. Run the shards without --gate and pass it to `tabcli batch merge SHARD_DIRS...`."
        )
    files = collect_configs([Path(c) for c in configs])
    if (output / "runs").exists() and any((output / "runs").iterdir()) and not resume:
        raise ConfigError(f"'{output}' already holds runs of a batch; pass --resume to continue it, or choose another --output.")
    planned = plan_runs(files, repeat, list(overrides), output)
    check_gates(parsed_gates, {run.config_id: run.task for run in planned})
    mine = planned if shard is None else select_shard(planned, *shard)
    say = console.print if console is not None else (lambda *a, **k: None)
    part = "" if shard is None else f"; shard {shard[0]}/{shard[1]} runs {len(mine)} of them"
    say(f"batch: {len(files)} config(s) x {repeat} seed(s) = {len(planned)} run(s){part}, {jobs} at a time -> {output}")
    progress = _Progress(console, len(mine))
    with progress:  # on Ctrl-C/SIGTERM run_all stops its children; --resume re-runs what they left
        outcomes = run_all(mine, list(overrides), jobs, resume, on_done=progress.done)
    write_manifest(output, planned, shard or (1, 1), list(overrides), outcomes)
    return report(outcomes, parsed_gates, output, console)


def merge_batches(folders, gates=(), output=Path("batch"), console=None) -> BatchResult:
    """One leaderboard, JUnit report and gate verdict from the folders of a batch run in shards
    (``tabcli batch --shard K/N``, one folder per shard), as if it had run on one machine.

    Writes ``leaderboard.{csv,md,json}``, ``gates.json`` and ``junit.xml`` into ``output``; the
    leaderboard's run directories point into the shard folders.

    Returns:
        :class:`BatchResult`, with the exit codes of :func:`run_batch`.

    Raises:
        ConfigError: For unreadable gates, gates that could never be checked, ``output`` being
            one of the shard folders, or shard folders that do not make one whole batch
            (:func:`~tabcli.batch.shards.read_shards`).
    """
    output = Path(output)
    parsed_gates = [parse_gate(text) for text in gates]
    folders = [Path(f) for f in folders]
    if any(output.resolve() == folder.resolve() for folder in folders):
        raise ConfigError(f"--output '{output}' is one of the shard folders; its own leaderboard would be replaced. "
                          "Choose another --output.")
    outcomes = read_shards(folders)
    check_gates(parsed_gates, {o.run.config_id: o.run.task for o in outcomes})
    if console is not None:
        console.print(f"batch merge: {len(outcomes)} run(s) from {len(folders)} shard folder(s) -> {output}")
    return report(outcomes, parsed_gates, output, console)


def report(outcomes: list[Outcome], gates: list, output: Path, console=None) -> BatchResult:
    """Leaderboard, gate verdicts and JUnit report of ``outcomes``, written into ``output``
    (``leaderboard.{csv,md,json}``, ``gates.json``, ``junit.xml``) and printed on ``console``.

    Returns:
        :class:`BatchResult` with the exit code: 1 if a run did not complete, else 3 if a gate
        failed, else 0.
    """
    rows = summarize(outcomes)
    gate_results = evaluate_gates(gates, rows)
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
