"""The Optuna study behind `tabcli tune`: storage, sampler, pruner, and trials left by dead processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tabcli.config.tune import TuneConfig
from tabcli.errors import ConfigError, TabcliError

__all__ = ["storage_url", "safe_url", "open_study", "fail_dead_trials", "HEARTBEAT_SECONDS", "GRACE_SECONDS"]

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
    """Optuna's RDB storage at ``url`` (its tables created if the database has none).

    Raises:
        TabcliError: If the driver is missing or the database cannot be opened.
    """
    import random
    import time

    import optuna
    import sqlalchemy.exc

    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                # SQLite: wait for another process' write instead of failing at once.
                engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
            )
        except ImportError as error:  # the URL's database driver (Optuna wraps SQLAlchemy's ModuleNotFoundError)
            missing = getattr(error.__cause__, "name", None) or "its database driver"
            raise TabcliError(
                f"--storage {safe_url(url)} needs the database driver '{missing}', which is not installed. "
                "For PostgreSQL: pip install 'tabcli[postgres]'."
            ) from None
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            # Processes started together on a new database race to create Optuna's tables, and
            # PostgreSQL refuses the losers ("duplicate key ... pg_type"); a moment later the
            # tables are there. Anything else (permissions) still fails after a few seconds.
            last = error
            time.sleep(0.5 + random.random())
        except Exception as error:  # noqa: BLE001 - SQLAlchemy's errors: wrong URL, server down, bad password
            last = error
            break
    raise TabcliError(
        f"Could not open the study storage {safe_url(url)}: {type(last).__name__}: {str(last).splitlines()[0]}. "
        "Check the URL (e.g. postgresql://user:password@host:5432/database) and that the server is running."
    ) from None


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and files other people read."""
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


def open_study(storage: str, name: str, direction: str, config: TuneConfig, seed: int, resume: bool,
               join: bool = False):
    """Create the study ``name`` in ``storage``, or load the existing one with ``resume`` or ``join``.

    ``join`` is for a storage the user named (``--storage``): the same command started on many
    machines creates the study once and every other process joins it, with or without
    ``--resume``. A process that finds the study already there, or loses the race to create it,
    seeds its sampler with ``seed`` plus its process id, so processes sharing one study do not
    propose the same parameters in lock step; the process that creates it uses ``seed``.

    Returns:
        ``(study, created)``: the Optuna study and whether this process created it.

    Raises:
        TabcliError: If the study exists and neither ``resume`` nor ``join`` is set, if
            ``resume`` is set and there is no such study, if the storage cannot be opened, or if
            an existing study optimises in the other direction.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = _storage(storage)
    existing = {summary.study_name: summary for summary in optuna.get_all_study_summaries(store, include_best_trial=False)}
    if name in existing and not (resume or join):
        raise ConfigError(
            f"The study '{name}' already exists in {safe_url(storage)} ({existing[name].n_trials} trials). "
            "Pass --resume to continue it, or --study NAME for a new study."
        )
    if name not in existing and resume:
        names = ", ".join(sorted(existing)) or "none"
        raise ConfigError(f"--resume: there is no study '{name}' in {safe_url(storage)} (studies there: {names}).")
    if name not in existing:
        try:
            study = optuna.create_study(study_name=name, storage=store, direction=direction,
                                        sampler=_sampler(config, seed), pruner=_pruner(config))
            return study, True
        except optuna.exceptions.DuplicatedStudyError:
            if not join:
                raise ConfigError(f"The study '{name}' was created in {safe_url(storage)} by another process just now. "
                                  "Pass --resume to join it, or --study NAME for a new study.") from None
    study = optuna.load_study(study_name=name, storage=store, sampler=_sampler(config, seed + os.getpid()),
                              pruner=_pruner(config))
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"The study '{name}' was created to {study.direction.name.lower()} its metric; this config asks to "
            f"{direction}. Use the same tune.metric/tune.direction, or --study NAME for a new study."
        )
    return study, False


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
    from tabcli.runs.run_dir import RunDirectory, Status

    run = RunDirectory(run_dir) if run_dir else None
    if run is not None and run.status is Status.RUNNING:
        run.finish(Status.FAILED, error=message)


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
