"""Open a finished run directory: its config, fitted preprocessing and model."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tabcli.config import ExperimentConfig, validate_config
from tabcli.data.preprocessing import TabularPreprocessor
from tabcli.errors import ConfigError, DataError

__all__ = ["LoadedRun", "REQUIRED_FILES"]

REQUIRED_FILES = ("config.yaml", "run.json", "preprocessing.joblib")
#: The model file: Keras families, or the scikit-learn ``gbdt`` baseline.
MODEL_FILES = ("model.keras", "model.joblib")


def _as_saved(raw):
    """A run's saved config as it was trained: a ``tabular_attention`` part saved before
    ``model.inter_sample`` existed (tabcli 0.1) used context rows, whatever today's default is."""
    model = raw.get("model") if isinstance(raw, dict) else None
    if isinstance(model, dict):
        for part in [model, *[b for b in model.get("branches") or [] if isinstance(b, dict)]]:
            if part.get("type", "tabular_attention") == "tabular_attention" and "inter_sample" not in part:
                part["inter_sample"] = "context"
    return raw


class LoadedRun:
    """A completed run directory, ready to predict, evaluate and explain.

    Args:
        path: The run directory written by ``tabcli train``.

    Attributes:
        path: The run directory.
        config: The run's resolved :class:`~tabcli.config.ExperimentConfig`.
        info: The content of ``run.json``.
        preprocessor: The fitted :class:`~tabcli.data.preprocessing.TabularPreprocessor`.

    Raises:
        ConfigError: If ``path`` is not a folder, lacks a run file, or its run did not complete
            (``run.json`` status other than ``completed``).
    """

    def __init__(self, path: str | Path):
        import joblib

        self.path = Path(path)
        if not self.path.is_dir():
            raise ConfigError(f"The run directory '{self.path}' does not exist. Give the folder `tabcli train` printed.")
        # The status first: a run still training, failed or interrupted lacks its model, and
        # saying so (with the recorded error) helps more than naming the missing file.
        try:
            self.info = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.info = {}
        status = self.info.get("status")
        if status is not None and status != "completed":
            reason = f": {self.info['error']}" if self.info.get("error") else ""
            advice = ("It is still training (or its process was killed); wait for it, or train it again."
                      if status == "running" else "Train it again.")
            raise ConfigError(f"The run in '{self.path}' has status '{status}'{reason}. {advice}")
        missing = [name for name in REQUIRED_FILES if not (self.path / name).is_file()]
        if not any((self.path / name).is_file() for name in MODEL_FILES):
            missing.append(" or ".join(MODEL_FILES))
        if missing:
            raise ConfigError(
                f"'{self.path}' is not a complete tabcli run directory: {', '.join(missing)} missing."
            )
        if (self.path / "model.keras").is_file():
            # Before anything imports TensorFlow (the input pipeline does): its C++ start-up
            # lines would otherwise come before tabcli's output, as they never do in `train`.
            from tabcli._quiet import import_keras_quietly

            import_keras_quietly()
        raw = _as_saved(yaml.safe_load((self.path / "config.yaml").read_text(encoding="utf-8")))
        self.config: ExperimentConfig = validate_config(raw, source=f"'{self.path / 'config.yaml'}'")
        self.preprocessor: TabularPreprocessor = joblib.load(self.path / "preprocessing.joblib")
        self._splits = None

    @property
    def schema(self):
        """The run's :class:`~tabcli.data.schema.TableSchema`."""
        return self.preprocessor.schema

    @property
    def is_keras(self) -> bool:
        """Whether the model is a Keras model (every family but ``gbdt``)."""
        return (self.path / "model.keras").is_file()

    @cached_property
    def model(self):
        """The trained model, loaded on first use: a Keras model (imports TensorFlow) or, for
        ``gbdt``, a scikit-learn estimator."""
        if not self.is_keras:
            import joblib

            return joblib.load(self.path / "model.joblib")
        from tabcli._quiet import import_keras_quietly

        keras = import_keras_quietly()
        try:
            # Not compiled: a loaded run only predicts, and building the optimizer and reading its
            # state back costs a fifth of the load.
            model = keras.saving.load_model(self.path / "model.keras", compile=False)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as error:  # noqa: BLE001 - any deserialisation failure is the same advice
            commit = self.info.get("git_commit")
            written = f"at commit {commit[:10]}" if commit else self.info.get("versions", {}).get("tabcli", "of an unknown version")
            cause = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise ConfigError(
                f"The model file '{self.path / 'model.keras'}' cannot be loaded by this tabcli "
                f"({type(error).__name__}: {cause[:300]}). The run was written by tabcli {written}; a model "
                "saved by a development version whose layers have since changed, or a damaged file, cannot "
                "be read. Retrain it: `tabcli train " + str(self.path / "config.yaml") + "`."
            ) from error
        from tabcli.models.key_indexes import INDEX_FOLDER, load_indexes

        load_indexes(model, self.path / INDEX_FOLDER, seed=self.config.seed)
        return model

    def model_spec(self):
        """The :class:`~tabcli.models.spec.ModelSpec` the model was built for."""
        from tabcli.models.spec import ModelSpec

        return ModelSpec.from_preprocessor(self.preprocessor, self.config.training.batch_size)

    @property
    def metrics(self) -> dict:
        """The run's ``metrics.json``."""
        return json.loads((self.path / "metrics.json").read_text(encoding="utf-8"))

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
        if not self.is_keras:
            from tabcli.models.gbdt.model import predict_raw

            return predict_raw(self.model, self.model_spec(), inputs)
        from tabcli.training.trainer import predict_model

        return predict_model(self.model, inputs, self.config.training.eval_batch_size)

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
        saved = self.path / "predictions" / "test.parquet"
        if saved.is_file():
            rows = pd.read_parquet(saved, columns=["row"])["row"].to_numpy()
            if len(rows) != len(frame) or not np.array_equal(rows, frame.index.to_numpy()):
                raise DataError(
                    f"Recreating the test split of '{self.path}' gave other rows than at training time: "
                    f"the data file '{self.config.data.train}' has changed. Evaluate on a file with --data instead."
                )
