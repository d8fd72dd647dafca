"""One `tabcli tune` trial: a config with the trial's values, trained as an ordinary run directory."""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from tabcli.config.experiment import ExperimentConfig
from tabcli.config.tune import SearchDimension
from tabcli.errors import TabcliError
from tabcli.models.registry import family
from tabcli.evaluation.metrics import LOWER_IS_BETTER, MONITOR_METRIC, PRIMARY_METRIC, TASK_METRICS
from tabcli.tune.space import suggest, trial_config

__all__ = ["TrialFailed", "Objective", "metric_and_direction", "epoch_metric"]


class TrialFailed(Exception):
    """A trial whose config was invalid or whose training failed; the search goes on."""


def metric_and_direction(config: ExperimentConfig, task: str) -> tuple[str, str]:
    """The validation metric a search optimises and ``"minimize"`` / ``"maximize"``.

    Default: the task's primary metric (rmse, roc_auc, accuracy); the direction follows
    :data:`tabcli.evaluation.metrics.LOWER_IS_BETTER` unless ``tune.direction`` says otherwise.

    Raises:
        ConfigError: If ``tune.metric`` is not a metric the task produces (every trial would fail).
    """
    from tabcli.errors import ConfigError

    metric = config.tune.metric or PRIMARY_METRIC[task][0]
    if metric not in TASK_METRICS[task]:
        raise ConfigError(f"tune.metric '{metric}' is not a metric of a {task} task; choose one of "
                          f"{', '.join(TASK_METRICS[task])}.")
    if config.tune.direction:
        return metric, config.tune.direction
    return metric, "minimize" if metric in LOWER_IS_BETTER else "maximize"


def epoch_metric(task: str, metric: str) -> str | None:
    """The Keras log key that follows ``metric`` epoch by epoch (for pruning), or None."""
    keras_name = MONITOR_METRIC[task]
    same = {"rmse": "rmse", "roc_auc": "auc", "accuracy": "accuracy"}.get(metric)
    return f"val_{keras_name}" if same == keras_name else None


class Objective:
    """Callable for ``study.optimize``: samples the trial's values, trains the run
    ``<folder>/trials/trial-NNNN`` and returns its validation metric.

    Every trial records in the study (user attributes): ``run_dir``, ``host``, ``pid``,
    ``seconds`` and, if it failed, ``error``. A trial whose config is refused or whose training
    fails raises :class:`TrialFailed` (the study marks it failed and goes on). A pruned trial's
    run is still a complete run directory (training stopped at the pruned epoch, best weights
    restored), marked pruned in the study.

    Args:
        base: The resolved config as a mapping (every trial starts from it).
        space: Dotted key -> :class:`SearchDimension`.
        folder: The tune folder.
        metric: Validation metric name (a key of ``metrics.json["valid"]``).
        task: The table's task (for the per-epoch metric used by the pruner).
        prune: Whether to report epochs to the pruner (never for gbdt).
    """

    def __init__(self, base: dict, space: dict[str, SearchDimension], folder: Path, metric: str, task: str,
                 prune: bool):
        self.base = base
        self.space = space
        self.folder = Path(folder)
        self.metric = metric
        self.task = task
        self.prune = prune

    def __call__(self, trial) -> float:
        import optuna

        run_dir = self.folder / "trials" / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        values = suggest(trial, self.space, self.base)
        started = time.perf_counter()
        try:
            config = trial_config(self.base, values, source=f"of trial {trial.number}")
        except TabcliError as error:
            self._fail(trial, str(error), started)
        callbacks = []
        pruning = None
        key = epoch_metric(self.task, self.metric)
        backend = family(config.model.type).implementation
        if self.prune and backend.can_prune and key is not None:
            from tabcli.tune.pruning import PruningCallback

            pruning = PruningCallback(trial, key)
            callbacks.append(pruning)
        from tabcli.training.train import train_experiment

        backend.release()
        try:
            result = train_experiment(config, run_dir=run_dir, console=None, callbacks=callbacks)
        except TabcliError as error:
            self._fail(trial, str(error), started)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:  # noqa: BLE001 - a bug in one trial must not end the search
            self._fail(trial, f"{type(error).__name__}: {error}", started)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
        value = (result.metrics.get("valid") or {}).get(self.metric)
        if value is None or not math.isfinite(value):
            self._fail(trial, f"the run has no finite valid.{self.metric} (metrics.json)", started)
        if pruning is not None and pruning.pruned_at is not None:
            trial.set_user_attr("pruned_at_epoch", pruning.pruned_at)
            trial.set_user_attr("valid_metric", float(value))
            raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_at}")
        return float(value)

    @staticmethod
    def _fail(trial, message: str, started: float) -> Any:
        trial.set_user_attr("error", message)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
        raise TrialFailed(message)
