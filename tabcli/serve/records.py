"""The request record of `tabcli serve`, generated from a run's schema (one field per feature column),
and CSV bodies read into the same records."""

from __future__ import annotations

import io
from typing import Annotated, Any, Optional, Sequence, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, create_model

from tabcli.data.conform import is_missing_text

__all__ = ["record_model", "records_frame", "csv_records"]

Category = Union[StrictStr, StrictInt, StrictFloat, StrictBool]


def record_model(schema, na_values: Sequence[str] = ()) -> type[BaseModel]:
    """A pydantic model of one input row of ``schema`` (a :class:`~tabcli.data.schema.TableSchema`).

    Every feature column is a required field, read by the training file's rules
    (:mod:`tabcli.data.conform`): null, a blank or space-only string and the run's
    ``na_values`` are a missing value, handled as in training; numerical columns take numbers
    or numbers written as text; categorical columns strings, integers or booleans; date
    columns ISO strings. The target and the columns the run ignores (``schema.dropped``) may be
    sent and are not used; any other key is refused, so a misspelt column is a 422 naming it
    rather than a silently missing value. Column names are field aliases, so any column name
    works (spaces, dots).
    """
    markers = frozenset(str(v) for v in na_values)

    def missing_as_none(value):
        return None if is_missing_text(value, markers) else value

    def number(value):
        value = missing_as_none(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"'{value}' is not a number (a blank is a missing value; other markers of a "
                                 "missing value are the run's data.na_values)") from None
        return value

    Number = Annotated[Optional[float], BeforeValidator(number)]
    Text = Annotated[Optional[Category], BeforeValidator(missing_as_none)]
    fields: dict[str, Any] = {}
    for i, column in enumerate(schema.numerical):
        fields[f"n{i}"] = (Number, Field(..., alias=column, description=f"numerical column '{column}' (null: missing)"))
    for i, column in enumerate(schema.categorical):
        fields[f"c{i}"] = (Text, Field(..., alias=column, description=f"categorical column '{column}' "
                                       "(a category unseen in training is handled as in training)"))
    for i, column in enumerate(schema.date_columns):
        fields[f"d{i}"] = (Optional[str], Field(..., alias=column, description=f"date column '{column}' (ISO 8601)"))
    fields["target_"] = (Optional[Any], Field(None, alias=schema.target, description="the target; ignored if sent"))
    for i, column in enumerate(schema.dropped):
        fields[f"x{i}"] = (Optional[Any], Field(None, alias=column, description=f"'{column}': not used by the model "
                                                f"({schema.dropped[column]}); ignored if sent"))
    return create_model("Record", __config__=ConfigDict(extra="forbid", populate_by_name=False), **fields)


def records_frame(rows: list[dict], schema):
    """A DataFrame of the feature columns (training names and order) from validated records
    dumped by column name (``record.model_dump(by_alias=True)``)."""
    import pandas as pd

    frame = pd.DataFrame.from_records(rows, columns=schema.features) if rows else pd.DataFrame(columns=schema.features)
    for column in schema.numerical:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def csv_records(body: bytes) -> list[dict[str, Any]]:
    """Rows of a CSV body as records (empty cells become null), for the same validation as JSON.

    Raises:
        ValueError: If the body is not UTF-8 CSV with a header.
    """
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, na_values=[""])
    records = []
    for row in frame.to_dict("records"):
        record = {}
        for key, value in row.items():
            if isinstance(value, float) and value != value:  # NaN from an empty cell
                record[key] = None
            else:
                record[key] = _number_or_text(value)
        records.append(record)
    return records


def _number_or_text(text: str) -> Any:
    """CSV cells are text; numbers are given back as numbers so numerical fields validate and
    categorical codes written as numbers match those seen in training."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
