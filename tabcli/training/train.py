"""One training run end to end: data -> model -> training -> run directory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape

from tabcli.config import ExperimentConfig, config_to_yaml
from tabcli.data.prepare import SPLITS, PreparedData, prepare_data
from tabcli.errors import TabcliError
from tabcli.models.registry import family
from tabcli.models.spec import ModelSpec
from tabcli.prediction.tables import frame_metrics, prediction_table
from tabcli.runs.run_dir import (
    CONFIG_FILE, HISTORY_FILE, METRICS_FILE, PREPROCESSING_FILE, TEST_PREDICTIONS_FILE, RunDirectory, Status, default_run_dir,
    write_atomic, write_json_atomic,
)

__all__ = ["TrainResult", "train_experiment", "split_metrics", "metric_rows", "best_epoch", "TRAIN_METRIC_ROWS"]


@dataclass
class TrainResult:
    """What a finished run produced.

    Attributes:
        run_dir: The run folder.
        metrics: ``{"train": {...}, "valid": {...}, "test": {...}}``.
        task: The task of the run.
        epochs: Epochs trained.
        seconds: Training time (fit only), in seconds.
        model_type: The model family (``gbdt`` counts boosting iterations as epochs).
    """

    run_dir: Path
    metrics: dict
    task: str
    epochs: int
    seconds: float
    model_type: str


#: At most this many training rows are predicted for the train split's metrics. Above it the
#: metrics come from a seeded uniform sample (a metric's sampling error at 100,000 rows is far
#: below its seed-to-seed spread), because predicting millions of training rows through a
#: retrieval model would take longer than an epoch of training.
TRAIN_METRIC_ROWS = 100_000


def metric_rows(split: str, rows: int, seed: int) -> np.ndarray | None:
    """Positions of the rows of ``split`` whose predictions the metrics are computed on.

    Args:
        split: ``"train"``, ``"valid"`` or ``"test"``.
        rows: Rows in that split.
        seed: The run's seed; the same seed picks the same rows.

    Returns:
        None (every row) for the validation and test splits and for training splits of at most
        :data:`TRAIN_METRIC_ROWS` rows; otherwise ``(TRAIN_METRIC_ROWS,)`` sorted int64 positions
        drawn without replacement.
    """
    if split != "train" or rows <= TRAIN_METRIC_ROWS:
        return None
    return np.sort(np.random.default_rng(seed).choice(rows, TRAIN_METRIC_ROWS, replace=False))


def split_metrics(data: PreparedData, predict, seed: int = 0) -> tuple[dict, dict[str, np.ndarray], dict[str, int]]:
    """Metrics of ``predict`` on every split of ``data``, in the target's own units.

    Args:
        data: The prepared splits.
        predict: ``(inputs, split, rows) -> (len(inputs), num_outputs)`` raw model outputs, where
            ``rows`` are the positions of ``inputs`` in the split (None: the whole split).
        seed: Picks the training rows when their metrics come from a sample (:func:`metric_rows`).

    Returns:
        ``(metrics, outputs, sampled)``: ``{"train": {...}, "valid": {...}, "test": {...}}``, the raw
        outputs of the rows each metric was computed on, and ``{split: rows}`` for the splits whose
        metrics come from a sample (empty when every row counted).
    """
    metrics, outputs, sampled = {}, {}, {}
    for split in SPLITS:
        inputs, frame = data.model_inputs(split), data.frame(split)
        rows = metric_rows(split, len(frame), seed)
        if rows is not None:
            inputs = {name: value[rows] for name, value in inputs.items()}
            frame = frame.iloc[rows]
            sampled[split] = len(rows)
        outputs[split] = predict(inputs, split, rows)
        metrics[split] = frame_metrics(data.preprocessor, frame, outputs[split], what=f"the {split} rows")
    return metrics, outputs, sampled


def best_epoch(history) -> int:
    """1-based epoch with the lowest ``val_loss`` (the weights early stopping restored); the
    last epoch for histories without one (gbdt)."""
    return int(history["val_loss"].idxmin()) + 1 if "val_loss" in history else len(history)


def train_experiment(
    config: ExperimentConfig,
    run_dir: Path | None = None,
    console: Console | None = None,
    config_folder: Path | None = None,
    callbacks: Sequence = (),
) -> TrainResult:
    """Train one experiment and write its run directory.

    All user errors in the data (missing file or column, bad target) are raised before the
    run directory is created. Once it exists, ``run.json`` records the outcome: ``completed``,
    ``failed`` (with the error) or ``interrupted``.

    Args:
        config: The validated experiment config.
        run_dir: Exact run folder; default ``<output.dir>/<name>-<timestamp>``.
        console: Where progress and messages go (None: silent).
        config_folder: Folder of the config file, for the git commit in ``run.json``.
        callbacks: Extra Keras callbacks for the fit (e.g. `tabcli tune`'s pruning); ignored by gbdt.

    Returns:
        :class:`TrainResult`.

    Raises:
        TabcliError: For problems the user can fix (data, config, diverged training).
        KeyboardInterrupt: If interrupted (the run is marked ``interrupted`` first).
    """
    say = console.print if console is not None else (lambda *a, **k: None)
    data = prepare_data(config.data, seed=config.seed)
    schema = data.schema
    say(
        f"[bold]{config.name}[/]: task [cyan]{schema.task}[/], target '{schema.target}', "
        f"{len(schema.numerical)} numerical + {len(schema.categorical)} categorical columns; "
        f"rows train {len(data.targets['train'])} / valid {len(data.targets['valid'])} / test {len(data.targets['test'])}"
    )
    for note in schema.notes:
        say(f"[yellow]note:[/] {escape(note)}")
    spec = ModelSpec.from_preprocessor(data.preprocessor, config.training.batch_size)
    config.model.check_data(spec)  # e.g. multi_resolution on a table with one kind of column
    if config.tracking.mlflow:
        from tabcli.runs.tracking import require_mlflow

        require_mlflow()  # fail before training, not after

    run = RunDirectory.create(run_dir or default_run_dir(config.output.dir, config.name or "run"), config_folder)
    try:
        return _train_in(run, config, data, spec, console, say, callbacks)
    except KeyboardInterrupt as error:
        run.finish(Status.INTERRUPTED, error="interrupted by the user (KeyboardInterrupt)")
        error.run_dir = run.path  # for the command line's message
        raise
    except TabcliError as error:
        run.finish(Status.FAILED, error=str(error))
        raise
    except BaseException as error:
        run.finish(Status.FAILED, error=f"{type(error).__name__}: {error}")
        error.run_dir = run.path
        raise


def _train_in(run: RunDirectory, config: ExperimentConfig, data: PreparedData, spec: ModelSpec, console, say,
              callbacks: Sequence = ()) -> TrainResult:
    import joblib

    schema = data.schema
    backend = family(config.model.type).implementation
    backend.resolve_config(config.model, len(data.targets["train"]))
    run.file(CONFIG_FILE).write_text(config_to_yaml(config), encoding="utf-8")
    run.update(seed=config.seed, name=config.name, model_type=config.model.type, task=schema.task, schema=schema.to_dict())
    write_atomic(run.file(PREPROCESSING_FILE), lambda tmp: joblib.dump(data.preprocessor, tmp))
    predict, history, seconds = backend.fit(run, config, data, spec, console, say, callbacks)
    history.to_csv(run.file(HISTORY_FILE), index=False)

    metrics, outputs, sampled = split_metrics(data, predict, seed=config.seed)
    if sampled:
        run.update(metric_rows=sampled)
        say(", ".join(f"{split} metrics from a seeded sample of {rows:,} of {len(data.targets[split]):,} rows"
                      for split, rows in sampled.items()))
    frame = data.frame("test")
    table = prediction_table(data.preprocessor, outputs["test"])
    table.insert(0, "target", frame[schema.target].to_numpy())
    table.insert(0, "row", frame.index.to_numpy())
    table.to_parquet(run.file(TEST_PREDICTIONS_FILE), index=False)

    write_json_atomic(run.file(METRICS_FILE), metrics)
    if config.tracking.mlflow:
        from tabcli.runs.tracking import log_to_mlflow

        run.update(mlflow_run_id=log_to_mlflow(config, run.path, metrics))
    run.update(epochs_trained=len(history), best_epoch=best_epoch(history), train_seconds=round(seconds, 3))
    run.finish(Status.COMPLETED)
    return TrainResult(run_dir=run.path, metrics=metrics, task=schema.task, epochs=len(history), seconds=seconds,
                       model_type=config.model.type)
