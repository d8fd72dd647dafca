"""Run a batch's planned runs as isolated ``tabcli train`` processes, several at a time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable

from tabcli.batch.plan import PlannedRun
from tabcli.runs.run_dir import RunDirectory

__all__ = ["Outcome", "execute", "run_all", "previous_outcome", "terminate_all", "threads_per_job", "thread_environment"]

_ACTIVE: set[subprocess.Popen] = set()
_ACTIVE_LOCK = threading.Lock()


def threads_per_job(jobs: int) -> int:
    """Threads each of ``jobs`` parallel processes gets: its share of the cores, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def thread_environment(threads: int) -> dict[str, str]:
    """A copy of ``os.environ`` that limits a child process (TensorFlow, OpenMP) to ``threads``
    threads; without it N parallel jobs x all cores oversubscribe the CPU."""
    return {**os.environ, "TABCLI_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
            "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1"}


def terminate_all() -> None:
    """Stop every running ``tabcli train`` child (they mark their runs ``interrupted``)."""
    with _ACTIVE_LOCK:
        for process in _ACTIVE:
            if process.poll() is None:
                process.terminate()


@dataclass
class Outcome:
    """What happened to one planned run.

    Attributes:
        run: The planned run.
        status: ``completed``, ``failed`` or ``interrupted``.
        error: The error message of a failed run.
        seconds: Wall time of the process (0 when skipped).
        skipped: True when ``--resume`` found the run already completed.
    """

    run: PlannedRun
    status: str
    error: str | None = None
    seconds: float = 0.0
    skipped: bool = False


def _status(run: PlannedRun) -> tuple[str | None, str | None]:
    record = RunDirectory(run.run_dir)
    return (None if record.status is None else record.status.value), record.error


def previous_outcome(run: PlannedRun) -> Outcome | None:
    """The outcome of a run already completed in the output folder (for ``--resume``), else None."""
    status, _ = _status(run)
    return Outcome(run, "completed", skipped=True) if status == "completed" else None


def execute(run: PlannedRun, overrides: list[str], threads: int) -> Outcome:
    """Run one ``tabcli train`` in its own process, limited to ``threads`` CPU threads.

    An incomplete earlier attempt in the run directory (failed, interrupted or killed) is
    removed first, so the run starts clean.
    """
    if run.error is not None:
        return Outcome(run, "failed", error=run.error)
    if run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    run.log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tabcli", "train", str(run.config_path), "--run-dir", str(run.run_dir),
               "--quiet", "--set", f"seed={run.seed}"]
    for item in overrides:
        command += ["--set", item]
    env = thread_environment(threads)
    started = time.perf_counter()
    with open(run.log, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, text=True)
        with _ACTIVE_LOCK:
            _ACTIVE.add(process)
        try:
            process.wait()
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(process)
    seconds = time.perf_counter() - started
    status, error = _status(run)
    if process.returncode == 0 and status == "completed":
        return Outcome(run, "completed", seconds=seconds)
    if error is None:
        lines = [line for line in run.log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        error = " ".join(lines[-3:]) if lines else f"exit code {process.returncode}"
    interrupted = process.returncode in (130, -15) or status == "interrupted"
    return Outcome(run, "interrupted" if interrupted else "failed", error=error, seconds=seconds)


def run_all(
    planned: list[PlannedRun],
    overrides: list[str],
    jobs: int,
    resume: bool,
    on_done: Callable[[Outcome], None] = lambda outcome: None,
) -> list[Outcome]:
    """Run every planned run, ``jobs`` at a time; a failing run never stops the others.

    Args:
        planned: The runs.
        overrides: ``--set`` items for every run.
        jobs: Parallel processes; each gets ``max(1, cores // jobs)`` threads.
        resume: Skip runs already completed in their run directory.
        on_done: Called with each outcome as it arrives (progress display).

    Returns:
        Outcomes in the order of ``planned``.
    """
    threads = threads_per_job(jobs)
    outcomes: dict[int, Outcome] = {}
    pending = []
    for index, run in enumerate(planned):
        previous = previous_outcome(run) if resume else None
        if previous is not None:
            outcomes[index] = previous
            on_done(previous)
        else:
            pending.append(index)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute, planned[i], overrides, threads): i for i in pending}
        try:
            for future in as_completed(futures):
                outcome = future.result()
                outcomes[futures[future]] = outcome
                on_done(outcome)
        except BaseException:
            # Interrupted: stop queued work and the running children before the pool waits on them.
            for future in futures:
                future.cancel()
            terminate_all()
            raise
    return [outcomes[i] for i in range(len(planned))]
