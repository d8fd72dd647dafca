"""Open a finished run directory: its config, fitted preprocessing and model."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tabcli.config import ExperimentConfig, validate_config
from tabcli.data.preprocessing import TabularPreprocessor
from tabcli.errors import ConfigError, DataError
from tabcli.models.registry import family
from tabcli.runs.run_dir import CONFIG_FILE, PREPROCESSING_FILE, RUN_FILE, TEST_PREDICTIONS_FILE, RunDirectory, Status

__all__ = ["LoadedRun", "REQUIRED_FILES"]

REQUIRED_FILES = (CONFIG_FILE, RUN_FILE, PREPROCESSING_FILE)


def _as_saved(raw):
    """A run's saved config as it was trained: a ``tabular_attention`` part saved before
    ``model.inter_sample`` existed (tabcli 0.1) used context rows, whatever today's default is."""
    model = raw.get("model") if isinstance(raw, dict) else None
    if isinstance(model, dict):
        for part in [model, *[b for b in model.get("branches") or [] if isinstance(b, dict)]]:
            if part.get("type", "tabular_attention") == "tabular_attention" and "inter_sample" not in part:
                part["inter_sample"] = "context"
    return raw


class LoadedRun(RunDirectory):
    """A completed run directory, ready to predict, evaluate and explain: a
    :class:`~tabcli.runs.run_dir.RunDirectory` (``info``, ``metrics``, ``branch_weights``) with
    its config, fitted preprocessing and model.

    Args:
        path: The run directory written by ``tabcli train``.

    Attributes:
        path: The run directory.
        config: The run's resolved :class:`~tabcli.config.ExperimentConfig`.
        family: Its model's :class:`~tabcli.models.registry.Family`.
        backend: That family's :class:`~tabcli.models.backends.base.Backend`.
        info: The content of ``run.json``.
        preprocessor: The fitted :class:`~tabcli.data.preprocessing.TabularPreprocessor`.

    Raises:
        ConfigError: If ``path`` is not a folder, lacks a run file, or its run did not complete
            (``run.json`` status other than ``completed``).
    """

    def __init__(self, path: str | Path):
        import joblib

        super().__init__(path)
        if not self.path.is_dir():
            raise ConfigError(f"The run directory '{self.path}' does not exist. Give the folder `tabcli train` printed.")
        # The status first: a run still training, failed or interrupted lacks its model, and
        # saying so (with the recorded error) helps more than naming the missing file.
        status = self.info.get("status")
        if status is not None and status != Status.COMPLETED:
            reason = f": {self.error}" if self.error else ""
            advice = ("It is still training (or its process was killed); wait for it, or train it again."
                      if status == Status.RUNNING else "Train it again.")
            raise ConfigError(f"The run in '{self.path}' has status '{status}'{reason}. {advice}")
        missing = [name for name in REQUIRED_FILES if not (self.path / name).is_file()]
        if missing:
            raise ConfigError(
                f"'{self.path}' is not a complete tabcli run directory: {', '.join(missing)} missing."
            )
        raw = _as_saved(yaml.safe_load((self.path / CONFIG_FILE).read_text(encoding="utf-8")))
        self.config: ExperimentConfig = validate_config(raw, source=f"'{self.path / CONFIG_FILE}'")
        self.family = family(self.config.model.type)
        self.backend = self.family.implementation
        if not (self.path / self.backend.model_file).is_file():
            raise ConfigError(
                f"'{self.path}' is not a complete tabcli run directory: {self.backend.model_file} missing."
            )
        # Before anything imports TensorFlow (the input pipeline does): its C++ start-up lines
        # would otherwise come before tabcli's output, as they never do in `train`.
        self.backend.prepare()
        self.preprocessor: TabularPreprocessor = joblib.load(self.path / PREPROCESSING_FILE)
        self._splits = None

    @property
    def schema(self):
        """The run's :class:`~tabcli.data.schema.TableSchema`."""
        return self.preprocessor.schema

    @cached_property
    def model(self):
        """The trained model, loaded on first use by the family's backend (a Keras model imports
        TensorFlow; ``gbdt`` is a scikit-learn estimator).

        Raises:
            ConfigError: If the model file cannot be read by this tabcli.
        """
        return self.backend.load(self.path, self.config, self.info)

    def model_spec(self):
        """The :class:`~tabcli.models.spec.ModelSpec` the model was built for."""
        from tabcli.models.spec import ModelSpec

        return ModelSpec.from_preprocessor(self.preprocessor, self.config.training.batch_size)

    @property
    def context_ids(self) -> list:
        """Training-table index of every context row stored in the model."""
        return list(self.info.get("context_rows") or [])

    def inputs(self, frame: pd.DataFrame, what: str = "the data", extra_columns=()) -> dict[str, np.ndarray]:
        """Model inputs for ``frame`` (only the inputs the model has), its cells read by the
        training file's rules (:func:`~tabcli.data.conform.conform_frame`: blank cells and
        ``data.na_values`` are missing; the target and ignored columns are accepted).

        Args:
            frame: Rows with the feature columns.
            what: How to name ``frame`` in error messages.
            extra_columns: Columns beyond the training table's to accept (e.g. an id column).

        Raises:
            DataError: If a feature column is missing, a column is unknown to the run, or a
                numerical column holds text.
        """
        from tabcli.data.conform import conform_frame

        frame = conform_frame(frame, self.schema, self.config.data.na_values, what, extra_columns)
        arrays = self.preprocessor.transform(frame, what=what)
        return {k: v for k, v in arrays.items() if v.shape[1] > 0}

    def predict_raw(self, frame: pd.DataFrame, what: str = "the data") -> np.ndarray:
        """Model outputs ``(rows, num_outputs)`` for ``frame``, in row order."""
        return self.predict_inputs(self.inputs(frame, what))

    def predict_inputs(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Model outputs ``(rows, num_outputs)`` for model inputs (:meth:`inputs`), in row order,
        computed ``training.eval_batch_size`` rows at a time from the first row."""
        return self.backend.predict(self.model, inputs, self.model_spec(), self.config.training.eval_batch_size)

    def attention_scores(self, inputs: dict[str, np.ndarray], row_ids: list):
        """Every attention score of the model for ``inputs`` (:func:`tabcli.runs.attention.collect_attention`
        with the run's manifest): ``(arrays, description)``, or None for a model without attention
        layers (``gbdt``, ``mlp``).

        Args:
            inputs: Model inputs (:meth:`inputs`), ``rows`` each.
            row_ids: One id per row, saved beside the scores.
        """
        if not self.backend.has_attention:
            return None
        from tabcli.models.registry import attention_manifest
        from tabcli.runs.attention import collect_attention

        manifest = attention_manifest(self.config.model, self.model_spec(), self.context_ids)
        return collect_attention(self.model, inputs, manifest, row_ids=row_ids, batch_size=self.config.training.eval_batch_size,
                                 decode_target=self.preprocessor.decode_target)

    def splits(self):
        """The run's train/valid/test tables, recreated once from its config and seed (same files,
        same split) and then kept.

        Raises:
            DataError: If the training/test files are gone or changed so that the split fails.
        """
        if self._splits is None:
            from tabcli.data.prepare import load_splits

            _, self._splits = load_splits(self.config.data, seed=self.config.seed)
        return self._splits

    def test_frame(self) -> pd.DataFrame:
        """The run's test rows (see :meth:`splits`)."""
        return self.splits().test

    def check_same_test_rows(self, frame: pd.DataFrame) -> None:
        """Raise DataError if ``frame`` is not the test split the run was evaluated on."""
        saved = self.path / TEST_PREDICTIONS_FILE
        if saved.is_file():
            rows = pd.read_parquet(saved, columns=["row"])["row"].to_numpy()
            if len(rows) != len(frame) or not np.array_equal(rows, frame.index.to_numpy()):
                raise DataError(
                    f"Recreating the test split of '{self.path}' gave other rows than at training time: "
                    f"the data file '{self.config.data.train}' has changed. Evaluate on a file with --data instead."
                )
