"""`tabcli serve`: a trained run behind HTTP (FastAPI). The app reads the run directory and never
writes to it.

Endpoints: ``POST /predict`` (JSON records or ``text/csv``; ``?explain=true`` adds the columns that
move each row's prediction most, :func:`~tabcli.explain.rows.row_explanations`, and for retrieval
models the columns that chose its neighbours and its most-weighted training rows), ``GET /health``,
``GET /metadata``; ``/docs`` lists every column of the request with its type (the request model
is generated from the run's schema at start-up).
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Request  # at module level: the endpoint's annotations are resolved from here

from tabcli._version import __version__
from tabcli.serve.predictor import BatchedPredictor
from tabcli.serve.records import csv_records, record_model

__all__ = ["create_app", "app_from_environment", "DEFAULT_MAX_ROWS"]

#: Rows accepted in one request (``--max-rows``).
DEFAULT_MAX_ROWS = 10_000


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _message(errors: list[dict]) -> str:
    """The first validation errors as one sentence naming record and column."""
    parts = []
    # An unknown column first: it often explains the missing one beside it (a misspelt name).
    errors = sorted(errors, key=lambda e: e.get("type") != "extra_forbidden")
    for error in errors[:5]:
        loc = [p for p in error.get("loc", ()) if p != "body"]
        record = next((p for p in loc if isinstance(p, int)), None)
        column = next((p for p in loc if isinstance(p, str) and p not in ("float", "int", "str", "bool")), None)
        where = (f"record {record}" if record is not None else "the body") + (f", column '{column}'" if column else "")
        what = "unknown column (not a feature of this run)" if error.get("type") == "extra_forbidden" else error.get("msg", "")
        parts.append(f"{where}: {what}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def create_app(run_dir: str | Path, max_rows: int = DEFAULT_MAX_ROWS):
    """The FastAPI app serving the run in ``run_dir`` (model loaded and warmed up here).

    Args:
        run_dir: A completed run directory.
        max_rows: Most rows per request (a larger request is a 413).

    Raises:
        ConfigError: If ``run_dir`` is not a completed run.
    """
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import TypeAdapter, ValidationError

    from tabcli.errors import TabcliError
    from tabcli.prediction.tables import prediction_records
    from tabcli.runs.run import LoadedRun

    run = LoadedRun(run_dir)
    run.backend.configure_threads()
    schema = run.schema
    Record = record_model(schema, run.config.data.na_values)
    records_adapter = TypeAdapter(list[Record])
    predictor = BatchedPredictor(run)
    predictor.warm_up(Record.model_validate({c: None for c in schema.features}).model_dump(by_alias=True))
    # TensorFlow, Keras and the model leave hundreds of thousands of long-lived objects that every
    # full (generation-2) collection would scan, paid by whichever request triggers it (the tail
    # latency in docs/benchmarks.md, "Serving"). Freezing them after start-up keeps later
    # collections to request garbage.
    gc.freeze()
    test_metrics = {}
    with contextlib.suppress(OSError, ValueError):
        test_metrics = {k: _plain(v) for k, v in run.metrics.get("test", {}).items() if not isinstance(v, (list, dict))}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await predictor.start()
        yield
        await predictor.stop()

    app = FastAPI(
        title=f"tabcli: {run.config.name}",
        version=__version__,
        description=f"Predictions of the tabcli run `{run.path}`: model {run.config.model.type}, task {schema.task}, "
        f"target '{schema.target}'. POST records to /predict.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, error: RequestValidationError):
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in error.errors()]
        return JSONResponse(status_code=422, content={"message": _message(errors), "detail": errors})

    record_schema = Record.model_json_schema(by_alias=True)
    body_doc = {
        "requestBody": {
            "required": True,
            "description": f"A list of records (one object per row, every feature column as a key; null for a missing "
            f"value), or a CSV with a header. At most {max_rows} rows.",
            "content": {
                "application/json": {"schema": {"type": "array", "items": record_schema}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }

    @app.post("/predict", openapi_extra=body_doc, summary="Predict rows")
    async def predict(request: Request, explain: bool = False, top_features: int = 5, top_neighbours: int = 10):
        """One prediction per record, in order: ``prediction`` (class or value in the target's units) and,
        for classification, ``probabilities`` per class."""
        body = await request.body()
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        try:
            raw_records = csv_records(body) if kind == "text/csv" else json.loads(body or b"null")
        except ValueError as error:
            return JSONResponse(status_code=400, content={"message": f"The body is not valid {'CSV' if kind == 'text/csv' else 'JSON'}: {error}"})
        if not isinstance(raw_records, list):
            return JSONResponse(status_code=422, content={"message": "The body must be a JSON list of records (objects), "
                                                          "e.g. [{\"column\": value, ...}], or a CSV with a header."})
        if len(raw_records) > max_rows:
            return JSONResponse(status_code=413, content={"message": f"{len(raw_records)} rows in one request; the limit is "
                                                          f"{max_rows} (tabcli serve --max-rows). Send them in parts."})
        try:
            records = records_adapter.validate_python(raw_records)
        except ValidationError as error:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from None
        if not records:
            return {"predictions": []}
        rows = [record.model_dump(by_alias=True) for record in records]
        try:
            raw = await predictor.predict(rows)
        except TabcliError as error:
            return JSONResponse(status_code=422, content={"message": str(error)})
        predictions = prediction_records(run.preprocessor, raw)
        result: dict[str, Any] = {"predictions": predictions}
        if not explain:
            return JSONResponse(result)  # already plain JSON; FastAPI's encoder would walk it again
        from tabcli.explain.rows import row_explanations

        inputs = await predictor.run_in_model_thread(predictor.inputs, rows)  # the same path as the prediction
        details = await predictor.run_in_model_thread(row_explanations, run, inputs, top_features, top_neighbours)
        result["explanations"] = details if details is not None else [{"top_features": []} for _ in predictions]
        return result

    @app.get("/health", summary="Liveness")
    async def health():
        """``{"status": "ok"}`` once the model is loaded."""
        return {"status": "ok"}

    @app.get("/metadata", summary="What this server predicts")
    async def metadata():
        """Columns and their types, the target, classes, the run's test metrics and versions."""
        columns = ([{"name": c, "type": "numerical"} for c in schema.numerical]
                   + [{"name": c, "type": "categorical"} for c in schema.categorical]
                   + [{"name": c, "type": "date"} for c in schema.date_columns])
        return {
            "run": str(run.path), "name": run.config.name, "model": run.config.model.type, "task": schema.task,
            "target": schema.target, "classes": [_plain(c) for c in schema.classes], "columns": columns,
            "test_metrics": test_metrics, "tabcli_version": __version__, "max_rows": max_rows,
        }

    return app


def app_from_environment():
    """App factory for ``uvicorn --factory`` with several workers: the run comes from
    ``TABCLI_SERVE_RUN`` and the row limit from ``TABCLI_SERVE_MAX_ROWS``."""
    return create_app(os.environ["TABCLI_SERVE_RUN"], int(os.environ.get("TABCLI_SERVE_MAX_ROWS", DEFAULT_MAX_ROWS)))
