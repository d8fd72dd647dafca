"""The model behind `tabcli serve`: loaded once per worker, fed in shared batches.

Concurrent requests are served by *greedy batching*: one thread runs the model; while it runs a
batch, the rows of the requests that arrive wait, and the next batch takes all of them at once.
An idle server adds no waiting time to a lone request, and a busy one pays one model call (and
one preprocessing call) for many requests instead of one per request. The model is called
through :func:`~tabcli.training.trainer.predict_model` (one ``tf.function`` traced once for every
batch size, no input pipeline), which for a few rows is an order of magnitude faster than ``predict``.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tabcli.serve.records import records_frame

__all__ = ["BatchedPredictor"]


class BatchedPredictor:
    """Raw model outputs for DataFrames, with requests that arrive together batched together.

    Args:
        run: A :class:`~tabcli.runs.run.LoadedRun`.
        max_batch_rows: Most rows per model call; larger requests are split.

    Raises:
        ConfigError: If the run cannot be loaded.
    """

    def __init__(self, run, max_batch_rows: int = 4096):
        self.run = run
        self.max_batch_rows = max_batch_rows
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tabcli-model")
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._model = run.model  # loaded now, not on the first request
        from tabcli.data.record_encoder import RecordEncoder

        # Records straight to arrays: the DataFrame and ColumnTransformer path cost more than the
        # model call itself for the few rows of a request (module docstring of record_encoder).
        self._encoder = RecordEncoder(run.preprocessor) if RecordEncoder.supports(run.preprocessor) else None

    # -------------------------------------------------------------- model calls (model thread)
    def inputs(self, rows: list[dict]) -> dict[str, np.ndarray]:
        """Model inputs for validated records (column -> value): :class:`RecordEncoder` where the
        schema allows, else the run's DataFrame preprocessing."""
        if self._encoder is None:
            return self.run.inputs(records_frame(rows, self.run.schema), what="the request")
        return self._encoder.encode(rows)

    def predict_records(self, rows: list[dict]) -> np.ndarray:
        """``(rows, outputs)`` for validated records (column -> value), in the calling thread."""
        return self._outputs(self.inputs(rows))

    def _outputs(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.run.backend.predict(self._model, inputs, self.run.model_spec(), self.max_batch_rows)

    def warm_up(self, example: dict) -> None:
        """Trace the model function for a few batch sizes, so the first requests are not slow."""
        for rows in (1, 2, 8, 64):
            self.predict_records([example] * rows)

    # -------------------------------------------------------------- batching (event loop)
    async def start(self) -> None:
        """Start the batching task on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._serve())

    async def stop(self) -> None:
        """Stop the batching task and the model thread."""
        if self._task is not None:
            self._task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, rows: list[dict]) -> np.ndarray:
        """Raw outputs ``(len(rows), outputs)`` for validated records (column -> value), computed in
        one batch with whatever else is waiting (inputs are built once per batch, in the model
        thread)."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((rows, future))
        return await future

    async def run_in_model_thread(self, function, *args):
        """Run ``function(*args)`` in the model thread (e.g. an explanation), after queued batches."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._queue.get()]
            rows = len(items[0][0])
            while rows < self.max_batch_rows and not self._queue.empty():
                item = self._queue.get_nowait()
                items.append(item)
                rows += len(item[0])
            joined = [row for rows_of_request, _ in items for row in rows_of_request]
            try:
                raw = await loop.run_in_executor(self.executor, self.predict_records, joined)
            except Exception as error:  # noqa: BLE001 - handed to each waiting request
                for _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            start = 0
            for frame, future in items:
                if not future.done():
                    future.set_result(raw[start:start + len(frame)])
                start += len(frame)
