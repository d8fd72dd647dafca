"""The interface every model backend implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["Backend", "Fitted"]

#: What :meth:`Backend.fit` returns: ``(predict, history, seconds)`` where ``predict(inputs, split, rows)``
#: gives raw outputs ``(len(inputs), num_outputs)`` for the rows at positions ``rows`` of ``split``
#: (None: the whole split), ``history`` is a DataFrame with one row per epoch
#: (or boosting iteration) and ``seconds`` the fit's wall time.
Fitted = tuple[Callable, "object", float]


class Backend:
    """How models of one framework are fitted, saved, loaded and asked for predictions.

    Args:
        family: The :class:`~tabcli.models.registry.Family` whose models this instance handles.

    Attributes:
        family: That family.
        model_file: The model's file name in a run directory.
        iteration_unit: What one row of ``history.csv`` is (``"epochs"``, ``"boosting iterations"``).
        can_prune: Whether a fit reports a validation metric after every epoch, so that
            ``tabcli tune``'s pruner can stop a trial early.
        uses_training_settings: Whether ``training.*`` (optimizer, learning rate, epochs) applies,
            and so whether ``tabcli tune``'s default space searches it.
        has_attention: Whether its models hold attention layers whose scores and internals
            ``explain`` reads (attention scores, per-row rankings, neighbours).
    """

    model_file: str = ""
    iteration_unit: str = "epochs"
    can_prune: bool = False
    uses_training_settings: bool = False
    has_attention: bool = False

    def __init__(self, family):
        self.family = family

    def prepare(self) -> None:
        """Import the framework (quietly) before anything else pulls it in. Default: nothing."""

    def configure_threads(self) -> None:
        """Apply ``TABCLI_NUM_THREADS`` before the first operation. Default: nothing."""

    def resolve_config(self, model_config, training_rows: int) -> None:
        """Settle options that depend on the number of training rows, in place, before the
        run's ``config.yaml`` is written. Default: nothing."""

    def fit(self, run, config, data, spec, console, say, callbacks: Sequence = ()) -> Fitted:
        """Build, train and save the model of ``config.model`` into the run directory ``run``
        (:class:`~tabcli.runs.run_dir.RunDirectory`) from ``data``
        (:class:`~tabcli.data.prepare.PreparedData`) shaped as ``spec``; see :data:`Fitted`."""
        raise NotImplementedError

    def load(self, path: Path, config, info: dict):
        """The trained model saved in the run directory ``path`` (``config`` its resolved
        :class:`~tabcli.config.ExperimentConfig`, ``info`` its ``run.json``).

        Raises:
            tabcli.errors.ConfigError: If the model file cannot be read by this tabcli.
        """
        raise NotImplementedError

    def predict(self, model, inputs: dict[str, np.ndarray], spec, batch_size: int) -> np.ndarray:
        """Raw outputs ``(rows, num_outputs)`` for preprocessed ``inputs`` (``{"numerical":
        (rows, n), "categorical": (rows, c)}``), in row order, ``batch_size`` rows at a time:
        probabilities (classification; P(class 1) for binary) or standardised values."""
        raise NotImplementedError

    def release(self) -> None:
        """Free what earlier fits left in the process (between ``tabcli tune`` trials). Default: nothing."""
