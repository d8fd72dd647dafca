"""Fit a model with AdamW and early stopping; stop with a clear error if the loss diverges."""

from __future__ import annotations

import math
import os
import random
import time

import keras
import numpy as np
import pandas as pd
from rich.console import Console

from tabcli.config.experiment import TrainingConfig
from tabcli.errors import TrainingError
from tabcli.evaluation.metrics import MONITOR_METRIC
from tabcli.training.interrupts import raise_if_requested
from tabcli.training.pipeline import batches, predict_in_batches
from tabcli.training.progress import RichProgress

__all__ = ["configure_threads", "set_seeds", "compile_model", "fit_model", "fit_targets", "predict_model", "MONITOR_METRIC"]

#: The Keras metric shown beside the loss while training, per task.


def configure_threads() -> None:
    """Limit TensorFlow to ``TABCLI_NUM_THREADS`` threads when set (``tabcli batch`` sets it so
    parallel jobs share the cores instead of oversubscribing them). Must run before any op."""
    threads = os.environ.get("TABCLI_NUM_THREADS")
    if not threads:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime already started (e.g. in tests); the setting cannot change now
        pass


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend (``keras.utils.set_random_seed``)."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def compile_model(model: keras.Model, task: str, config: TrainingConfig) -> None:
    """Compile with AdamW (Loshchilov & Hutter 2019) and the task's loss.

    Losses: binary cross-entropy (sigmoid output), sparse categorical cross-entropy (softmax
    output), mean squared error on the standardised regression target.
    """
    optimizer = keras.optimizers.AdamW(
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        global_clipnorm=config.gradient_clip_norm,
    )
    if task == "binary":
        loss = keras.losses.BinaryCrossentropy()
        metrics = [keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")]
    elif task == "multiclass":
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.MeanSquaredError()
        metrics = [keras.metrics.RootMeanSquaredError(name="rmse")]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    # Without this the optimizer creates its slot variables inside the first traced train step,
    # and tf.function then traces the whole step a second time (docs/benchmarks.md, "Speed").
    optimizer.build(model.trainable_variables)


class _StopOnRequest(keras.callbacks.Callback):
    """Raises KeyboardInterrupt after the batch during which Ctrl-C or SIGTERM arrived, in case the
    KeyboardInterrupt the signal raised was lost (:mod:`tabcli.training.interrupts`)."""

    def on_train_batch_end(self, batch, logs=None):
        raise_if_requested()

    def on_test_batch_end(self, batch, logs=None):
        raise_if_requested()


class _StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where it happened."""

    def __init__(self):
        super().__init__()
        self.where = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.where = (self.epoch + 1, batch + 1)
            self.model.stop_training = True


class _EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of every epoch (training and validation), for ``history.csv``."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def fit_targets(task: str, y: np.ndarray) -> np.ndarray:
    """Encoded targets ``(rows,)`` -> what the task's loss expects: float32 ``(rows, 1)`` for binary
    and regression, int32 class codes ``(rows,)`` for multiclass."""
    if task == "multiclass":
        return y.astype(np.int32)
    return y.astype(np.float32).reshape(-1, 1)


def fit_model(
    model: keras.Model,
    task: str,
    train: tuple[dict, np.ndarray],
    valid: tuple[dict, np.ndarray],
    config: TrainingConfig,
    console: Console | None = None,
    extra_callbacks=(),
) -> pd.DataFrame:
    """Train ``model`` (compiled) with early stopping on the validation loss.

    The weights of the epoch with the lowest validation loss are restored at the end
    (``keras.callbacks.EarlyStopping(restore_best_weights=True)``).

    Args:
        model: A compiled model.
        task: The task (chooses how targets are shaped).
        train: ``(inputs, targets)`` of the training rows (a retrieval model's inputs should
            hold ``candidate_index``, each row's own candidate position; without it, -1).
        valid: ``(inputs, targets)`` of the validation rows.
        config: Epochs, batch size, patience.
        console: Where to draw progress (None: no progress display).
        extra_callbacks: More Keras callbacks.

    Returns:
        The history, one row per epoch (``epoch``, ``loss``, ``val_loss``, metrics...,
        ``seconds``: wall-clock time of the epoch, validation included; the first epoch also
        holds the graph tracing).

    Raises:
        TrainingError: If the loss became NaN or infinite.
    """
    from tabcli.models.candidates import with_candidate_index

    x_train, y_train = train
    x_valid, y_valid = valid
    x_train, x_valid = with_candidate_index(model, x_train), with_candidate_index(model, x_valid)
    steps = max(1, math.ceil(len(y_train) / config.batch_size))
    nan_guard, timer = _StopOnNaN(), _EpochTimer()
    callbacks = [
        _StopOnRequest(),
        nan_guard,
        timer,
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True
        ),
        *extra_callbacks,
    ]
    if console is not None:
        callbacks.append(RichProgress(config.epochs, steps, MONITOR_METRIC[task], console))
    history = model.fit(
        batches(x_train, fit_targets(task, y_train), config.batch_size, shuffle=True),
        validation_data=batches(x_valid, fit_targets(task, y_valid), config.eval_batch_size),
        epochs=config.epochs,
        shuffle=False,  # the dataset reshuffles itself every epoch
        callbacks=callbacks,
        verbose=0,
    )
    if nan_guard.where is not None:
        epoch, batch = nan_guard.where
        raise TrainingError(
            f"Training diverged: the loss became NaN/infinite at epoch {epoch}, batch {batch}. "
            f"Try a smaller learning rate (--set training.learning_rate={config.learning_rate / 10:g}), "
            "keep gradient clipping on (training.gradient_clip_norm), or check the data for extreme values."
        )
    frame = pd.DataFrame(history.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    frame["seconds"] = timer.seconds[: len(frame)]
    return frame


def predict_model(model: keras.Model, inputs: dict, batch_size: int = 1024) -> np.ndarray:
    """Model outputs for ``inputs`` (feature inputs only; a retrieval model's ``candidate_index``
    is filled in): ``(rows, num_outputs)`` float64."""
    from tabcli.models.candidates import with_candidate_index

    inputs = with_candidate_index(model, inputs)
    return np.asarray(predict_in_batches(model, inputs, batch_size), dtype=np.float64)
