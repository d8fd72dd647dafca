"""Which runs a batch makes: every config, each with ``repeat`` seeds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tabcli.errors import ConfigError, TabcliError

__all__ = ["PlannedRun", "collect_configs", "plan_runs"]

CONFIG_SUFFIXES = (".yaml", ".yml")


@dataclass
class PlannedRun:
    """One run of a batch.

    Attributes:
        config_path: The config file.
        config_id: The config's id in the batch (its path relative to the common folder of all
            configs, without suffix, e.g. ``penguins/tabular_attention``).
        seed: The run's seed (the config's seed + repeat index).
        run_dir: Where ``tabcli train`` writes the run.
        log: Where the run's output is kept.
        family: ``model.type`` (None if the config is invalid).
        dataset: ``<training file name>:<target>`` (None if the config is invalid).
        error: Why the config cannot run (invalid config), else None.
        task: ``binary``, ``multiclass`` or ``regression`` (None if it cannot be told before
            training, e.g. an unreadable file: the run then fails with the reason).
    """

    config_path: Path
    config_id: str
    seed: int
    run_dir: Path
    log: Path
    family: str | None = None
    dataset: str | None = None
    error: str | None = None
    task: str | None = None


def _task(config) -> str | None:
    """The config's task: as configured, or inferred from the training file's target column."""
    if config.data.task != "auto":
        return config.data.task
    from tabcli.data.io import read_with_settings
    from tabcli.data.schema import infer_task

    try:
        frame = read_with_settings(config.data.train, config.data)
        return infer_task(frame[config.data.target].dropna(), "auto")[0]
    except (TabcliError, KeyError):
        return None


def collect_configs(paths: list[Path]) -> list[Path]:
    """Config files from files and folders (folders searched recursively, sorted).

    Raises:
        ConfigError: If a path does not exist or no config file is found.
    """
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in CONFIG_SUFFIXES and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"'{path}' does not exist; give config files or folders holding them.")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ConfigError(f"No config file (*.yaml, *.yml) found in {[str(p) for p in paths]}.")
    return unique


def _config_ids(configs: list[Path]) -> list[str]:
    root = Path(os.path.commonpath([str(p.parent) for p in configs]))
    return [str(p.relative_to(root).with_suffix("")).replace(os.sep, "/") for p in configs]


def plan_runs(configs: list[Path], repeat: int, overrides: list[str], output: Path) -> list[PlannedRun]:
    """Every (config, repeat) pair, with its seed, run directory and log file.

    Invalid configs are kept (with ``error`` set) so the batch records them as failed runs.
    """
    from tabcli.config import load_config

    planned = []
    for path, config_id in zip(configs, _config_ids(configs)):
        try:
            config = load_config(path, overrides)
            base_seed, family = config.seed, config.model.type
            dataset, error = f"{Path(config.data.train).name}:{config.data.target}", None
            task = _task(config)
        except TabcliError as exc:
            base_seed, family, dataset, error, task = 0, None, None, str(exc), None
        for index in range(repeat):
            seed = base_seed + index
            planned.append(PlannedRun(
                config_path=path, config_id=config_id, seed=seed,
                run_dir=output / "runs" / config_id / f"seed-{seed}",
                log=output / "logs" / config_id / f"seed-{seed}.log",
                family=family, dataset=dataset, error=error, task=task,
            ))
    return planned
