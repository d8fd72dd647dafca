"""A Keras callback that reports each epoch's validation metric to an Optuna trial and stops
training when the pruner says the trial is unpromising (after ``optuna-integration``'s
``KerasPruningCallback``, which stops by raising; this one stops the fit so the run completes)."""

from __future__ import annotations

import math

import keras

__all__ = ["PruningCallback"]


class PruningCallback(keras.callbacks.Callback):
    """Report ``logs[monitor]`` after every epoch (step = the 0-based epoch) to ``trial``; when
    ``trial.should_prune()``, stop training (``model.stop_training``) and remember the epoch.

    The fit then ends as an early stop does (best weights restored), so a pruned trial still
    leaves a complete run directory; the caller raises ``optuna.TrialPruned`` afterwards.

    Args:
        trial: The ``optuna.Trial``.
        monitor: Key of the epoch logs, e.g. ``"val_rmse"``.

    Attributes:
        pruned_at: 1-based epoch at which the trial was pruned, or None.
    """

    def __init__(self, trial, monitor: str):
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.model.stop_training = True
