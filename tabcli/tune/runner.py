"""`tabcli tune` end to end: config -> space -> Optuna study -> trials (ordinary runs) -> outputs."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from tabcli.cli.console import LiveProgress
from tabcli.config.loader import load_config
from tabcli.errors import ConfigError, TabcliError
from tabcli.tune.objective import Objective, TrialFailed, epoch_metric, metric_and_direction
from tabcli.tune.outputs import best_trial, study_marker, trial_rows, write_best, write_study_marker, write_trials
from tabcli.tune.space import resolve_space, starting_values
from tabcli.tune.study import fail_dead_trials, open_study, safe_url, storage_url

__all__ = ["TuneRequest", "TuneOutcome", "run_tune", "parse_duration"]


def parse_duration(text: str | None) -> float | None:
    """Seconds in ``"90"``, ``"90s"``, ``"10m"``, ``"1h"``, ``"1h30m"``; None for None.

    Raises:
        ConfigError: For anything else, naming ``--timeout``.
    """
    import re

    if text is None:
        return None
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.fullmatch(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?", value)
        if not value or parts is None or not any(parts.groups()):
            raise ConfigError(f"--timeout expects a duration such as 90s, 20m, 1h or 1h30m; received '{text}'.")
        hours, minutes, secs = (int(g) if g else 0 for g in parts.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise ConfigError(f"--timeout must be positive; received '{text}'.")
    return seconds


@dataclass
class TuneRequest:
    """What the user asked `tabcli tune` for (command-line options)."""

    config: Path
    overrides: list[str] = field(default_factory=list)
    trials: int | None = None
    timeout: float | None = None
    storage: str | None = None
    study: str | None = None
    output: Path | None = None
    resume: bool = False
    jobs: int = 1
    refit: int = 0
    worker: bool = False


@dataclass
class TuneOutcome:
    """What a search left: its folder, study, metric and best trial (None if none completed)."""

    folder: Path
    study_name: str
    storage: str
    metric: str
    direction: str
    counts: dict[str, int]
    best_number: int | None
    best_value: float | None
    best_config: Path | None
    interrupted: bool = False
    refit: dict | None = None


def _folder(request: TuneRequest, config, study: str) -> Path:
    """The tune folder, created if needed.

    A folder already holding a search is refused without ``--resume``, except when the user
    named a shared storage (``--storage``) and the folder holds trials of that same study: then
    this process joins them (trial numbers come from the study, so trial directories cannot
    collide). Trials of another study would collide, so they are refused even then.
    """
    folder = request.output or (Path(config.output.dir) / f"{config.name}-tune")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output '{folder}' is a file; give a folder.")
    if folder.exists() and any(folder.iterdir()) and not request.resume and not request.worker:
        owner = study_marker(folder)
        if request.storage is None or owner is None:
            raise ConfigError(
                f"The tune folder '{folder}' already holds a search. Pass --resume to continue it, or --output DIR "
                "for a new one (nothing was changed)."
            )
        if owner != {"study": study, "storage": safe_url(request.storage)}:
            raise ConfigError(
                f"The tune folder '{folder}' holds the trials of study '{owner.get('study')}' in {owner.get('storage')}, "
                f"not of study '{study}' in {safe_url(request.storage)}. Trial directories are numbered per study, so "
                "give this study its own --output DIR (nothing was changed)."
            )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _Display(LiveProgress):
    """A rich progress line (trial i of N, best so far, elapsed and remaining budget) and one
    printed line per finished trial."""

    def __init__(self, console: Console | None, total: int | None, timeout: float | None, metric: str):
        self.console = console
        self.metric = metric
        self.progress = None
        if console is None:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[best]}"),
                   TimeElapsedColumn()]
        if timeout:
            columns.append(TextColumn("budget left {task.fields[left]}"))
        self.started = time.monotonic()
        self.timeout = timeout
        self.progress = Progress(*columns, console=console, transient=False, disable=not console.is_terminal)
        self.task = self.progress.add_task("trials", total=total, best="", left=self._left())

    def _left(self) -> str:
        if not self.timeout:
            return ""
        left = max(0.0, self.timeout - (time.monotonic() - self.started))
        return f"{int(left // 60)}:{int(left % 60):02d}"

    def trial_done(self, study, trial) -> None:
        if self.console is None:
            return
        state = trial.state.name.lower()
        value = trial.value if trial.value is not None else trial.user_attrs.get("valid_metric")
        shown = "-" if value is None else f"{value:.4f}"
        params = ", ".join(f"{_key_name(k)}={_short(v)}" for k, v in trial.params.items())
        extra = ""
        if state == "pruned":
            extra = f" (pruned at epoch {trial.user_attrs.get('pruned_at_epoch')})"
        elif state == "fail":
            extra = f" [red]{escape(str(trial.user_attrs.get('error', '')).splitlines()[0][:160])}[/]"
        line = (f"trial {trial.number:>3}  {state:<8} valid.{self.metric} {shown}  "
                f"{trial.user_attrs.get('seconds', 0):.0f} s  {escape(params)}{extra}")
        (self.progress.console if self.progress is not None else self.console).print(line)
        best = best_trial(study)
        if self.progress is not None:
            text = "" if best is None else f"best valid.{self.metric} {best.value:.4f} (trial {best.number})"
            self.progress.update(self.task, advance=1, best=text, left=self._left())


def _key_name(key: str) -> str:
    """A dotted key without its section (``model.d_model`` -> ``d_model``); nested keys keep their
    parent, so ``model.retrieval.dropout_rate`` is not confused with ``model.dropout_rate``."""
    return key.split(".", 1)[-1] if key.count(".") > 1 else key.split(".")[-1]


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def run_tune(request: TuneRequest, console: Console | None = None) -> TuneOutcome:
    """Run (or resume) a search and write its outputs. See ``tabcli tune --help``.

    Every problem a user can fix (config, data, space, storage, an existing folder or study) is
    raised before the first trial. Ctrl-C stops the running trial (its run is marked
    ``interrupted`` and the trial failed), the outputs are written for the trials so far, and
    the outcome says ``interrupted``.

    Raises:
        TabcliError: For those problems (exit code 2; storage problems 1).
    """
    import warnings

    import optuna

    from tabcli.models.registry import family

    config = load_config(request.config, request.overrides)
    backend = family(config.model.type).implementation
    backend.prepare()  # before anything pulls TensorFlow in with its start-up lines
    # Heartbeats and fail_stale_trials are marked experimental in Optuna; they are what keeps a
    # shared study honest when a process dies, and the notice is not the user's concern.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    from tabcli.data.prepare import prepare_data

    data = prepare_data(config.data, seed=config.seed)  # a wrong file or column stops here, not in trial 0
    task = data.schema.task
    metric, direction = metric_and_direction(config, task)
    space = resolve_space(config)
    name = request.study or config.name
    folder = _folder(request, config, name)
    storage = storage_url(request.storage, folder)
    # A storage the user named is shared: the same command on many machines joins one study.
    study, created = open_study(storage, name, direction, config.tune, config.seed, request.resume,
                                join=request.storage is not None)
    if not request.worker:
        write_study_marker(folder, name, storage)
    failed = fail_dead_trials(study)
    say = console.print if console is not None else (lambda *a, **k: None)
    prune = config.tune.pruner != "none" and backend.can_prune and epoch_metric(task, metric) is not None
    say(f"[bold]tune {escape(config.name)}[/]: study '{escape(name)}' in {escape(safe_url(storage))}; {direction} "
        f"valid.{metric} over {len(space)} keys ({', '.join(space)}); sampler {config.tune.sampler}, "
        f"pruner {config.tune.pruner if prune else 'off'}; trials in {escape(str(folder / 'trials'))}")
    if failed:
        say(f"[yellow]note:[/] trials {failed} were running in a process that stopped; marked failed.")
    base = config.model_dump(mode="json")
    # Only the process that created the study (or resumes an empty one) queues the starting
    # config: processes started together on a shared study would otherwise each queue it.
    if config.tune.start_from_config and (created or (request.resume and not study.trials)):
        start = starting_values(base, space)
        if start:
            study.enqueue_trial(start)
            waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
            say(f"trial {waiting[-1].number if waiting else 0} evaluates the starting config "
                f"({len(start)} of {len(space)} searched keys at their config values)")
    display = _Display(console, request.trials, request.timeout, metric)
    interrupted = False
    try:
        with display:
            if request.jobs > 1:
                _run_workers(request, study, storage, name, folder, display)
            else:
                objective = Objective(base, space, folder, metric, task, prune)
                study.optimize(objective, n_trials=request.trials, timeout=request.timeout, catch=(TrialFailed,),
                               callbacks=[display.trial_done], gc_after_trial=True)
    except KeyboardInterrupt:
        interrupted = True
    best_config, refit_result = None, None
    if not request.worker:  # workers leave the outputs to the process that started them
        rows = trial_rows(study, metric)
        write_trials(folder, rows)
        best_config = write_best(folder, base, study, metric)
        best = best_trial(study)
        if request.refit and best is not None and not interrupted and _claim_refit(request, folder):
            from tabcli.tune.refit import refit

            try:
                refit_result = refit(base, best.params, request.refit, folder, metric, progress=say, jobs=request.jobs)
            except KeyboardInterrupt:
                interrupted = True
        elif request.refit and best is not None and not interrupted:
            say(f"[yellow]note:[/] no refit: {escape(str(folder / 'refit'))} already exists (the refit of another process "
                "sharing this tune folder, or an earlier one); remove it to refit here.")
        from tabcli.reports.plots.search import search_plots
        from tabcli.tune.report import write_tune_report

        plots = search_plots(study, folder / "plots", metric)
        write_tune_report(folder / "report.html", study=study, base=base, rows=rows, metric=metric,
                          direction=direction, plots=plots, refit=refit_result)
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    best = best_trial(study)
    return TuneOutcome(
        folder=folder, study_name=name, storage=storage, metric=metric, direction=direction, counts=counts,
        best_number=None if best is None else best.number, best_value=None if best is None else best.value,
        best_config=best_config, interrupted=interrupted, refit=refit_result,
    )


def _run_workers(request: TuneRequest, study, storage: str, name: str, folder: Path, display: _Display) -> None:
    """Run the search in ``request.jobs`` worker processes (each `tabcli tune --resume --worker` on
    the same study, with cores / jobs threads) and show their trials as they finish.

    Processes rather than threads: each trial builds a TensorFlow graph and one Python
    process runs one at a time at full speed. Ctrl-C (or SIGTERM) stops the workers, which
    mark their running trials failed and their runs interrupted.
    """
    import subprocess
    import sys

    from tabcli.batch.runner import thread_environment, threads_per_job

    jobs = request.jobs
    shares = [None] * jobs if request.trials is None else [request.trials // jobs + (i < request.trials % jobs) for i in range(jobs)]
    env = thread_environment(threads_per_job(jobs))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [sys.executable, "-m", "tabcli", "tune", str(request.config), "--resume", "--worker", "--output", str(folder),
               "--storage", storage, "--study", name]
    for item in request.overrides:
        command += ["--set", item]
    if request.timeout:
        command += ["--timeout", f"{request.timeout:.0f}"]
    workers = []
    for share in shares:
        if share == 0:
            continue
        # The pid keeps the logs of two `tabcli tune --jobs` processes sharing this folder apart.
        log = open(_worker_log(folder, len(workers)), "w", encoding="utf-8")  # noqa: SIM115 - closed below
        extra = [] if share is None else ["--trials", str(share)]
        workers.append((subprocess.Popen(command + extra, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    seen: set[int] = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    try:
        while True:
            running = [p for p, _ in workers if p.poll() is None]
            for trial in study.get_trials(deepcopy=False):
                if trial.state.is_finished() and trial.number not in seen:
                    seen.add(trial.number)
                    display.trial_done(study, trial)
            if not running:
                break
            time.sleep(1.0)
    except KeyboardInterrupt:
        for process, _ in workers:
            if process.poll() is None:
                process.terminate()  # tabcli handles SIGTERM as Ctrl-C
        for process, _ in workers:
            process.wait(timeout=120)
        raise
    finally:
        for _, log in workers:
            log.close()
    broken = [(i, p.returncode) for i, (p, _) in enumerate(workers) if p.returncode not in (0, 1)]
    if broken:
        index, code = broken[0]
        raise TabcliError(f"tune worker {index} stopped with exit code {code}; see {_worker_log(folder, index)}.")


def _claim_refit(request: TuneRequest, folder: Path) -> bool:
    """Whether this process may write the refit runs into ``<folder>/refit``.

    Processes sharing a study may share a tune folder too; the first to finish creates
    ``refit/`` (atomically) and refits, the others leave it alone instead of overwriting its run
    directories. With the default storage the folder is this search's own: always true.
    """
    if request.storage is None:
        return True
    try:
        (folder / "refit").mkdir()
    except FileExistsError:
        return False
    return True


def _worker_log(folder: Path, index: int) -> Path:
    """The log file of this process' worker ``index``."""
    return folder / f"worker-{os.getpid()}-{index}.log"
