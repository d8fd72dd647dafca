"""What `tabcli tune` writes in its folder: the trial table (CSV, Markdown, JSON), best.yaml and study.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from tabcli.config.loader import config_to_yaml
from tabcli.runs.run_dir import write_atomic, write_json_atomic
from tabcli.tune.space import trial_config
from tabcli.tune.study import safe_url

__all__ = ["trial_rows", "write_trials", "write_best", "best_trial", "write_study_marker", "study_marker"]


def best_trial(study):
    """The best completed trial, or None if no trial completed."""
    import optuna

    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not completed:
        return None
    return study.best_trial


def _run_error(run_dir: str | None) -> str | None:
    """The error a failed trial's run directory recorded (a trial failed by another process, after
    its own process died, has it only there)."""
    if not run_dir:
        return None
    from tabcli.runs.run_dir import RunDirectory

    return RunDirectory(run_dir).error


def trial_rows(study, metric: str) -> list[dict[str, Any]]:
    """One row per trial, in trial order: ``trial``, ``state`` (complete, pruned, fail, running),
    ``valid.<metric>``, each searched key, ``seconds``, ``run_dir``, ``host``, ``pruned_at_epoch``
    and ``error`` (empty when not applicable)."""
    rows = []
    keys = sorted({key for trial in study.get_trials(deepcopy=False) for key in trial.params})
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        value = trial.value if trial.value is not None else attrs.get("valid_metric")
        row = {"trial": trial.number, "state": trial.state.name.lower(), f"valid.{metric}": value}
        row.update({key: trial.params.get(key) for key in keys})
        row.update({
            "seconds": attrs.get("seconds"),
            "pruned_at_epoch": attrs.get("pruned_at_epoch"),
            "run_dir": attrs.get("run_dir"),
            "host": attrs.get("host"),
            "error": attrs.get("error") or (_run_error(attrs.get("run_dir")) if trial.state.name == "FAIL" else None),
        })
        rows.append(row)
    return rows


def _markdown(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.6g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for record in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in record) + " |")
    return "\n".join(lines) + "\n"


def write_trials(folder: Path, rows: list[dict[str, Any]]) -> None:
    """``trials.csv``, ``trials.md`` and ``trials.json`` in ``folder`` (each written whole or not at all)."""
    # object columns: a parameter used by some trials only (a `when` key) stays 96, not 96.0
    frame = pd.DataFrame(rows, dtype=object)
    write_atomic(folder / "trials.csv", lambda tmp: frame.to_csv(tmp, index=False))
    write_atomic(folder / "trials.md", lambda tmp: tmp.write_text(_markdown(frame), encoding="utf-8"))
    write_json_atomic(folder / "trials.json", rows)


def write_best(folder: Path, base: dict, study, metric: str) -> Path | None:
    """``best.yaml``: the complete config of the best trial (``tabcli train best.yaml`` retrains it),
    with a header naming the trial and its validation metric. None if no trial completed."""
    trial = best_trial(study)
    if trial is None:
        return None
    config = trial_config(base, trial.params, source=f"of the best trial {trial.number}")
    changed = ", ".join(f"{key}={value!r}" for key, value in trial.params.items())
    header = (
        f"# Best trial {trial.number} of study '{study.study_name}': valid.{metric} = {trial.value:.6g}\n"
        f"# Searched keys: {changed}\n"
        f"# Retrain it: tabcli train {folder / 'best.yaml'}\n"
    )
    path = folder / "best.yaml"
    write_atomic(path, lambda tmp: tmp.write_text(header + config_to_yaml(config), encoding="utf-8"))
    return path


def write_study_marker(folder: Path, study: str, storage: str) -> None:
    """``study.json``: the study (name, storage URL without its password) whose trials the folder holds,
    so a process joining a shared study can tell that folder from one of another study."""
    write_json_atomic(folder / "study.json", {"study": study, "storage": safe_url(storage)})


def study_marker(folder: Path) -> dict | None:
    """The ``study.json`` written by :func:`write_study_marker`, or None if absent or unreadable."""
    try:
        marker = json.loads((folder / "study.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None
