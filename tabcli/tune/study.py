"""The Optuna study behind `tabcli tune`: storage, sampler, pruner, and trials left by dead processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tabcli.config.tune import TuneConfig
from tabcli.errors import ConfigError, TabcliError

__all__ = ["storage_url", "open_study", "fail_dead_trials", "HEARTBEAT_SECONDS", "GRACE_SECONDS"]

#: A running trial's process writes a heartbeat this often; a trial silent for GRACE_SECONDS is
#: failed by the next process that starts a trial (Optuna's RDB heartbeat), so a machine that dies
#: mid-trial does not leave it "running" for ever.
HEARTBEAT_SECONDS = 20
GRACE_SECONDS = 60


def storage_url(storage: str | None, folder: Path) -> str:
    """``storage`` as given, or an SQLite file ``<folder>/study.db`` (nothing to start or install)."""
    if storage:
        return storage
    return f"sqlite:///{(folder / 'study.db').resolve()}"


def _storage(url: str):
    import optuna

    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
            # SQLite: wait for another process' write instead of failing at once.
            engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
        )
    except ImportError as error:  # the URL's database driver (Optuna wraps SQLAlchemy's ModuleNotFoundError)
        missing = getattr(error.__cause__, "name", None) or "its database driver"
        raise TabcliError(
            f"--storage {_safe(url)} needs the database driver '{missing}', which is not installed. "
            "For PostgreSQL: pip install 'tabcli[postgres]'."
        ) from None
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's errors: wrong URL, server down, bad password
        raise TabcliError(
            f"Could not open the study storage {_safe(url)}: {type(error).__name__}: {str(error).splitlines()[0]}. "
            "Check the URL (e.g. postgresql://user:password@host:5432/database) and that the server is running."
        ) from None


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _sampler(config: TuneConfig, seed: int):
    import optuna

    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=config.startup_trials)


def _pruner(config: TuneConfig):
    import optuna

    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=config.startup_trials, n_warmup_steps=2)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2)
    return optuna.pruners.NopPruner()


def open_study(storage: str, name: str, direction: str, config: TuneConfig, seed: int, resume: bool):
    """Create the study ``name`` in ``storage``, or with ``resume`` load the existing one.

    Each process seeds its sampler with ``seed`` plus its process id, so processes sharing one
    study do not propose the same parameters in lock step.

    Raises:
        TabcliError: If the study exists and ``resume`` is false, if ``resume`` is true and there
            is no such study, if the storage cannot be opened, or if an existing study optimises
            in the other direction.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = _storage(storage)
    existing = {summary.study_name: summary for summary in optuna.get_all_study_summaries(store, include_best_trial=False)}
    sampler = _sampler(config, seed + (os.getpid() if resume else 0))
    if name in existing:
        if not resume:
            raise ConfigError(
                f"The study '{name}' already exists in {_safe(storage)} "
                f"({existing[name].n_trials} trials). Pass --resume to continue it (also to join it from "
                "another process), or --study NAME for a new study."
            )
        study = optuna.load_study(study_name=name, storage=store, sampler=sampler, pruner=_pruner(config))
        if study.direction.name.lower() != direction:
            raise ConfigError(
                f"The study '{name}' was created to {study.direction.name.lower()} its metric; this config asks to "
                f"{direction}. Use the same tune.metric/tune.direction, or --study NAME for a new study."
            )
        return study
    if resume:
        names = ", ".join(sorted(existing)) or "none"
        raise ConfigError(f"--resume: there is no study '{name}' in {_safe(storage)} (studies there: {names}).")
    return optuna.create_study(study_name=name, storage=store, direction=direction, sampler=sampler,
                               pruner=_pruner(config))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mark_run_failed(run_dir: str | None, message: str) -> None:
    """A killed process left its run.json saying ``running``; say what happened instead."""
    import json
    from datetime import datetime, timezone

    from tabcli.runs.run_dir import write_json_atomic

    path = Path(run_dir) / "run.json" if run_dir else None
    if path is None or not path.is_file():
        return
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if info.get("status") == "running":
        info.update(status="failed", error=message, finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        write_json_atomic(path, info)


def fail_dead_trials(study) -> list[int]:
    """Mark ``FAIL`` the running trials whose process (on this machine) no longer exists.

    Optuna's heartbeat fails them too, after :data:`GRACE_SECONDS`; this does it at once for a
    process killed on this machine, so ``--resume`` right after a crash reports it, and marks
    the trial's run directory ``failed`` (its ``run.json`` still said ``running``).

    Returns:
        The numbers of the trials marked failed.
    """
    import optuna

    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") == host and isinstance(attrs.get("pid"), int) and not _alive(attrs["pid"]):
            message = f"the process running this trial (pid {attrs['pid']}) stopped (killed or crashed)"
            _mark_run_failed(attrs.get("run_dir"), message)  # trials.csv reads the error from there
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            failed.append(trial.number)
    optuna.storages.fail_stale_trials(study)
    return failed
