"""The Python API: train a run or load one, then predict, evaluate and explain on DataFrames.

    >>> import tabcli
    >>> run = tabcli.load_run("runs/penguins-20261122-101500")
    >>> run.predict(frame)                 # same columns and order as `tabcli predict`
    >>> run = tabcli.train("configs/penguins/tabular_attention.yaml", training__epochs=20)

Like AutoGluon's ``TabularPredictor.load`` and Ludwig's ``LudwigModel.load``; errors are the
command line's :class:`~tabcli.errors.TabcliError` subclasses, with the same messages.
TensorFlow is imported only when a model is first needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from tabcli.errors import ConfigError, DataError
from tabcli.runs.run import LoadedRun

__all__ = ["Run", "load_run", "train"]


def _frame(data: Any, what: str) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a list of records (dicts) or one record."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame([dict(data)])
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        records = list(data)
        if all(isinstance(r, Mapping) for r in records):
            return pd.DataFrame.from_records(records)
    raise DataError(f"{what} must be a pandas DataFrame, a list of records (dicts) or one record; "
                    f"received {type(data).__name__}.")


class Run(LoadedRun):
    """A completed run directory, usable from Python: the run object every command uses
    (:class:`~tabcli.runs.run.LoadedRun`: ``path``, ``config``, ``schema``, ``info``,
    ``metrics``, ``preprocessor``, ``model``) with methods that take DataFrames or records.

    Args:
        path: The run directory (``tabcli train`` prints it).

    Raises:
        ConfigError: If ``path`` is not a completed run directory (the message gives the run's
            status and, for a failed run, its error).
    """

    def __repr__(self) -> str:
        return f"tabcli.Run('{self.path}', model={self.config.model.type}, task={self.schema.task}, target={self.schema.target!r})"

    def predict(self, data) -> pd.DataFrame:
        """Predictions, one row per input row in input order: ``prediction`` (class label, or value
        in the target's units) and, for classification, ``proba_<class>`` per class (rows sum to 1).
        The same table as ``tabcli predict`` writes.

        Args:
            data: DataFrame (or list of records) with the training feature columns, read as the
                training file was (blank and space-only cells and ``data.na_values`` are missing
                values, numbers may be text); the target and the columns the run ignores
                (``data.drop``) may be present and are not used.

        Raises:
            DataError: If a feature column is missing, a column is one the training table did
                not have (the message names it), or a numerical column holds other text.
        """
        from tabcli.prediction.tables import prediction_table

        frame = _frame(data, "data")
        return prediction_table(self.preprocessor, self.predict_raw(frame, what="the data"))

    def predict_proba(self, data) -> pd.DataFrame:
        """Class probabilities ``(rows, classes)``, columns ``proba_<class>``.

        Raises:
            ConfigError: For a regression run.
        """
        if self.schema.task == "regression":
            raise ConfigError(f"predict_proba needs a classification run; '{self.path}' predicts the number "
                              f"'{self.schema.target}'. Use predict().")
        table = self.predict(data)
        return table[[c for c in table.columns if c.startswith("proba_")]]

    def evaluate(self, data) -> dict:
        """Metrics on labelled rows (the target column present): the same as ``tabcli evaluate --data``
        (classification: accuracy, ROC AUC, log loss, ...; regression: RMSE, MAE, R², ...).

        Raises:
            DataError: If the target column is missing or holds classes unseen in training.
        """
        from tabcli.prediction.tables import frame_metrics

        frame = _frame(data, "data")
        target = self.schema.target
        if target not in frame.columns:
            raise DataError(f"evaluate needs the target column '{target}' in the data; its columns are {list(frame.columns)}.")
        frame = frame[frame[target].notna()]
        raw = self.predict_raw(frame, what="the data")
        return frame_metrics(self.preprocessor, frame, raw, what="the data")

    def explain(self, data, rows=None, top_features: int = 5, top_neighbours: int = 10) -> list[dict]:
        """Per-row explanations: the prediction, the ``top_features`` columns that move it most
        (the ranking of ``tabcli explain``'s ``importance.csv``, per row) and, for a retrieval
        model, the columns that made the row's neighbours its neighbours and the ``top_neighbours``
        training rows it leaned on most (their index in the training table, weight and label). For
        heatmaps, permutation importance, the trust checks and the HTML report use ``tabcli explain``.

        Args:
            data: DataFrame (or records) with the training feature columns.
            rows: Positions in ``data`` to explain (an int, a list of ints); default all rows.

        Returns:
            One dict per explained row: ``{"row", "prediction", "top_features": [{"column",
            "importance"}], "neighbour_columns"?, "neighbours"?}`` (``top_features`` is empty for
            ``gbdt``).

        Raises:
            DataError: For missing columns or positions outside ``data``.
        """
        from tabcli.explain.rows import row_explanations

        frame = _frame(data, "data")
        positions = list(range(len(frame))) if rows is None else ([rows] if isinstance(rows, int) else list(rows))
        bad = [p for p in positions if not isinstance(p, int) or not 0 <= p < len(frame)]
        if bad:
            raise DataError(f"rows must be positions between 0 and {len(frame) - 1}; received {bad[:5]}.")
        chosen = frame.iloc[positions]
        predictions = self.predict(chosen)
        details = row_explanations(self, self.inputs(chosen, what="the data"), top_features, top_neighbours)
        result = []
        for i, position in enumerate(positions):
            entry = {"row": position, "prediction": predictions.iloc[i].to_dict(), "top_features": []}
            if details is not None:
                entry.update(details[i])
            result.append(entry)
        return result


def load_run(path: str | Path) -> Run:
    """Open a completed run directory for predictions in Python (see :class:`Run`).

    Raises:
        ConfigError: If ``path`` is not a completed run directory.
    """
    return Run(path)


def train(config: str | Path | Mapping, *, run_dir: str | Path | None = None, verbose: bool = False,
          **overrides) -> Run:
    """Train a run from a config file or mapping, as ``tabcli train`` does, and return it.

    Overrides are config keys with ``__`` between sections: ``training__epochs=20`` is
    ``--set training.epochs=20``.

    Args:
        config: Path of a YAML config, or the config as a mapping (relative paths in it are
            relative to the current directory).
        run_dir: Exact run directory; default ``<output.dir>/<name>-<timestamp>``.
        verbose: Show the progress and notes on the terminal.
        **overrides: Config keys to override.

    Returns:
        The trained :class:`Run`.

    Raises:
        ConfigError / DataError / TrainingError: The command line's errors, same messages.
    """
    import yaml

    from tabcli.config.loader import apply_overrides, load_config, resolve_paths, validate_config
    from tabcli.training.train import train_experiment

    sets = [f"{key.replace('__', '.')}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
            for key, value in overrides.items()]
    if isinstance(config, Mapping):
        import copy

        raw = apply_overrides(resolve_paths(copy.deepcopy(dict(config)), Path.cwd()), sets, base=Path.cwd())
        raw.setdefault("name", "run")
        experiment = validate_config(raw, source="(the mapping given to tabcli.train)",
                                     set_keys=[s.split("=", 1)[0] for s in sets])
        folder = None
    else:
        experiment = load_config(config, sets)
        folder = Path(config).resolve().parent
    console = None
    if verbose:
        from tabcli.cli.console import console as make_console

        console = make_console()
    result = train_experiment(experiment, run_dir=Path(run_dir) if run_dir else None, console=console,
                              config_folder=folder)
    return Run(result.run_dir)
