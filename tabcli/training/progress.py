"""A rich progress display for Keras training: epoch bar, loss, validation metric, ETA."""

from __future__ import annotations

import time

import keras
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["RichProgress"]


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


class RichProgress(keras.callbacks.Callback):
    """Shows training progress with rich: one bar over epochs, one over the current epoch's batches.

    On a terminal the bars update live; elsewhere (CI logs, pipes) one line is printed per
    epoch so logs stay readable.

    Args:
        epochs: Planned number of epochs.
        steps_per_epoch: Batches per epoch.
        metric: Name of the validation metric to show (e.g. ``"auc"``), without ``val_``.
        console: The rich console to draw on.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, metric: str, console: Console):
        super().__init__()
        self.epochs = epochs
        self.steps = steps_per_epoch
        self.metric = metric
        self.console = console
        self.live = console.is_terminal
        self.best = None

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.progress.start()
            self.epoch_task = self.progress.add_task("epochs", total=self.epochs, status="")
            self.batch_task = self.progress.add_task("batches", total=self.steps, status="")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()
        if self.live:
            self.progress.reset(self.batch_task, total=self.steps, description=f"epoch {epoch + 1}")

    def on_train_batch_end(self, batch, logs=None):
        if self.live:
            loss = (logs or {}).get("loss")
            self.progress.update(self.batch_task, completed=batch + 1, status=f"loss {_fmt(loss)}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val_loss = logs.get("val_loss")
        if val_loss is not None and (self.best is None or val_loss < self.best):
            self.best = val_loss
        status = (
            f"loss {_fmt(logs.get('loss'))}  val_loss {_fmt(val_loss)}  "
            f"val_{self.metric} {_fmt(logs.get('val_' + self.metric))}  best val_loss {_fmt(self.best)}"
        )
        if self.live:
            self.progress.update(self.epoch_task, completed=epoch + 1, status=status)
        else:
            seconds = time.perf_counter() - self.epoch_started
            self.console.print(f"epoch {epoch + 1}/{self.epochs}  {status}  ({seconds:.1f} s)", highlight=False)

    def on_train_end(self, logs=None):
        if self.live:
            self.progress.stop()
