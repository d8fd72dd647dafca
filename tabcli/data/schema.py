"""Which columns are numerical, which categorical, and what task the target defines.

Rules (also in ``tabcli train --help`` and the config schema):

* Feature columns: every column except the target and ``data.drop``.
* A column listed in ``data.numerical`` / ``data.categorical`` gets that type. Every other
  feature column is inferred:
  - booleans, strings, pandas ``category`` columns -> categorical;
  - integer columns with at most ``data.integer_categorical_max_unique`` distinct values
    (default 10; codes such as 0/1 flags, ``sex`` coded 1/2, a year among a few) ->
    categorical; other integer and all float columns -> numerical;
  - columns that are entirely missing are dropped (and reported);
  - date/time columns are an error: drop them or turn them into numbers first.
* Task ``auto``: a target of booleans or strings is ``binary`` with 2 distinct values and
  ``multiclass`` with more; a numeric target is ``binary`` with 2 distinct values,
  ``multiclass`` if it holds integers only with at most 10 distinct values, else
  ``regression`` (the rule of AutoGluon's problem-type inference, simplified).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from tabcli.data.dates import DATE_PARTS, looks_like_dates
from tabcli.errors import DataError

__all__ = ["TableSchema", "infer_schema", "infer_task", "infinite_value_counts", "infinite_value_notes",
           "infinite_value_notes_from_counts", "MULTICLASS_MAX_INTEGER_CLASSES"]

MULTICLASS_MAX_INTEGER_CLASSES = 10


@dataclass
class TableSchema:
    """The roles of a table's columns and the prediction task.

    Attributes:
        target: Name of the target column.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        numerical: Numerical feature columns, in file order.
        categorical: Categorical feature columns, in file order.
        dates: Date/time columns, each expanded into numerical features by the preprocessing
            (``tabcli.data.dates``).
        classes: For classification, the sorted distinct target values (the positive class
            of a binary task is ``classes[1]``); empty for regression.
        dropped: Columns ignored, each with the reason.
        notes: Human-readable remarks made while inferring (shown to the user).
    """

    target: str
    task: str
    numerical: list[str]
    categorical: list[str]
    classes: list[Any] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)

    @property
    def date_columns(self) -> list[str]:
        """The date columns (none for a schema saved before dates were recognised)."""
        return list(getattr(self, "dates", []))

    @property
    def features(self) -> list[str]:
        """All feature columns of the table: numerical, categorical, then dates."""
        return [*self.numerical, *self.categorical, *self.date_columns]

    def to_dict(self) -> dict:
        """JSON-ready description of the schema."""
        return {
            "target": self.target,
            "task": self.task,
            "numerical": list(self.numerical),
            "categorical": list(self.categorical),
            "dates": self.date_columns,
            "classes": [_plain(c) for c in self.classes],
            "dropped": dict(self.dropped),
            "notes": list(self.notes),
        }


def _plain(value: Any) -> Any:
    """A numpy scalar as a plain Python value (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def _is_integer_valued(values: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        return True
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna().to_numpy(dtype=float)
        return bool(np.all(np.isfinite(finite)) and np.all(finite == np.round(finite)))
    return False


def _is_text_like(values: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(values)
        or pd.api.types.is_string_dtype(values)
        or isinstance(values.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(values)
    )


def infer_task(target: pd.Series, requested: str = "auto") -> tuple[str, list[Any]]:
    """Decide the task from the target's values (see the module docstring for the rule).

    Args:
        target: The target column, missing values already removed.
        requested: ``"auto"`` or an explicit task, which is validated against the values.

    Returns:
        ``(task, classes)``: classes are the sorted distinct values for classification, else
        an empty list.

    Raises:
        DataError: If the target has fewer than 2 distinct values, if ``regression`` is
            requested for a non-numeric target, or ``binary`` for a target without exactly 2
            distinct values.
    """
    name = target.name
    distinct = pd.unique(target)
    if len(distinct) < 2:
        raise DataError(
            f"The target column '{name}' has {len(distinct)} distinct value(s) "
            f"({list(distinct)[:3]}); a model needs at least 2. Check `data.target`."
        )
    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    if requested == "auto":
        if not numeric or len(distinct) == 2:
            task = "binary" if len(distinct) == 2 else "multiclass"
        elif _is_integer_valued(target) and len(distinct) <= MULTICLASS_MAX_INTEGER_CLASSES:
            task = "multiclass"
        else:
            task = "regression"
    else:
        task = requested
    if task == "regression":
        if not numeric:
            raise DataError(
                f"`data.task: regression` needs a numeric target, but column '{name}' holds "
                f"values such as {[str(v) for v in list(distinct)[:3]]}. Use `task: auto`, "
                "`binary` or `multiclass`, or pick another target."
            )
        return task, []
    if task == "binary" and len(distinct) != 2:
        raise DataError(
            f"`data.task: binary` needs exactly 2 distinct target values; column '{name}' has "
            f"{len(distinct)}. Use `task: multiclass` (or `auto`)."
        )
    if len(distinct) > 1000:
        raise DataError(
            f"The target column '{name}' has {len(distinct)} distinct values, too many for "
            f"{task} classification. If it is a quantity, set `data.task: regression`."
        )
    try:
        classes = sorted(distinct.tolist())
    except TypeError:  # mixed types: compare as strings
        classes = sorted(distinct.tolist(), key=str)
    return task, [_plain(c) for c in classes]


def _check_listed(columns: Sequence[str], available: Sequence[str], key: str) -> None:
    missing = [c for c in columns if c not in available]
    if missing:
        raise DataError(
            f"`{key}` lists column(s) {missing} that are not in the training file. "
            f"Available columns: {list(available)}."
        )


def infinite_value_counts(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, int]:
    """Column of ``columns`` -> how many ``inf``/``-inf`` values it holds in ``frame`` (columns
    without any, or absent from ``frame``, are left out)."""
    counts = {}
    for column in columns:
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        count = int(np.isinf(values).sum())
        if count:
            counts[column] = count
    return counts


def infinite_value_notes_from_counts(counts: dict[str, int], source: str) -> list[str]:
    """One note per column of ``counts`` (:func:`infinite_value_counts`, possibly summed over
    the chunks of a table), saying its infinite values are treated as missing."""
    return [
        f"Column '{column}' of {source} holds {count} infinite value(s) (inf/-inf); they are "
        "treated as missing values."
        for column, count in counts.items() if count
    ]


def infinite_value_notes(frame: pd.DataFrame, columns: Sequence[str], source: str) -> list[str]:
    """One note per column of ``columns`` holding ``inf``/``-inf``, which tabcli treats as
    missing values (imputed like any other, with the missing indicator), in training and at
    prediction alike."""
    return infinite_value_notes_from_counts(infinite_value_counts(frame, columns), source)


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    task: str = "auto",
    numerical: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    dates: Sequence[str] | None = None,
    integer_categorical_max_unique: int = 10,
    source: str = "the training file",
) -> TableSchema:
    """Infer the roles of ``frame``'s columns and the task (rules in the module docstring).

    Args:
        frame: The training table (before splitting is fine: only dtypes and distinct counts
            are read, never statistics that could leak).
        target: Target column name.
        task: ``"auto"`` or an explicit task.
        numerical: Columns forced to numerical (others are inferred).
        categorical: Columns forced to categorical (others are inferred).
        drop: Columns to ignore.
        dates: Columns forced to dates (others holding dates are recognised).
        integer_categorical_max_unique: Integer columns with at most this many distinct
            values are categorical.
        source: How to name the table in error messages.

    Returns:
        The :class:`TableSchema`.

    Raises:
        DataError: If the target or a listed column is missing, a column is listed twice, a
            forced-numerical column is not numeric, or no feature column remains.
    """
    columns = list(frame.columns)
    if target not in columns:
        raise DataError(
            f"The target column '{target}' (`data.target`) is not in {source}. "
            f"Available columns: {columns}."
        )
    numerical = list(numerical or [])
    categorical = list(categorical or [])
    drop = list(drop or [])
    dates = list(dates or [])
    _check_listed(drop, columns, "data.drop")
    _check_listed(dates, columns, "data.dates")
    _check_listed(numerical, columns, "data.numerical")
    _check_listed(categorical, columns, "data.categorical")
    for first, second, key_a, key_b in ((numerical, categorical, "numerical", "categorical"),
                                        (dates, numerical, "dates", "numerical"), (dates, categorical, "dates", "categorical")):
        both = sorted(set(first) & set(second))
        if both:
            raise DataError(f"Column(s) {both} are listed in both `data.{key_a}` and `data.{key_b}`.")
    for key, listed in (("data.numerical", numerical), ("data.categorical", categorical), ("data.drop", drop),
                        ("data.dates", dates)):
        if target in listed:
            raise DataError(f"The target column '{target}' must not be listed in `{key}`.")
    forced_bad = [
        c for c in numerical
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ]
    if forced_bad:
        examples = {c: frame[c].dropna().astype(str).head(2).tolist() for c in forced_bad}
        raise DataError(
            f"Column(s) listed in `data.numerical` hold non-numeric values: {examples}. Add the "
            "placeholder strings to `data.na_values`, or list the columns as categorical."
        )

    target_values = frame[target].dropna()
    resolved_task, classes = infer_task(target_values, task)
    if resolved_task == "regression":
        numbers = pd.to_numeric(target_values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        infinite = target_values.index[np.isinf(numbers)]
        if len(infinite):
            positions = [int(frame.index.get_loc(i)) for i in infinite[:5]]
            raise DataError(
                f"The target column '{target}' (`data.target`) of {source} holds {len(infinite)} infinite "
                f"value(s) (inf/-inf), e.g. in data rows {positions} (0-based, header not counted). "
                "Remove those rows or replace the values; a regression target must be finite."
            )
    schema = TableSchema(target=target, task=resolved_task, numerical=[], categorical=[], classes=classes)
    if len(target_values) < len(frame):
        schema.notes.append(
            f"{len(frame) - len(target_values)} row(s) with a missing target are left out."
        )
    for column in drop:
        schema.dropped[column] = "listed in data.drop"

    for column in columns:
        if column == target or column in drop:
            continue
        values = frame[column]
        if column in numerical:
            schema.numerical.append(column)
            continue
        if column in categorical:
            schema.categorical.append(column)
            continue
        if column in dates or (not values.isna().all() and looks_like_dates(values)):
            schema.dates.append(column)
            schema.notes.append(
                f"Column '{column}' is read as a date and becomes numerical features: {', '.join(DATE_PARTS)}. "
                "List it in `data.categorical` or `data.drop` to treat it otherwise."
            )
            continue
        if values.isna().all():
            schema.dropped[column] = "every value is missing"
            schema.notes.append(f"Column '{column}' is left out: every value is missing.")
            continue
        if pd.api.types.is_timedelta64_dtype(values):
            raise DataError(
                f"Column '{column}' holds time spans (timedelta), which tabcli does not encode. Add it to "
                "`data.drop`, or convert it to a number of seconds."
            )
        if _is_text_like(values):
            schema.categorical.append(column)
            if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
                parsed = pd.to_numeric(values.dropna(), errors="coerce")
                bad = values.dropna()[parsed.isna()]
                looks_numeric = bool(len(values.dropna())) and parsed.notna().mean() >= 0.9 and bool(len(bad))
                if looks_numeric:
                    schema.notes.append(
                        f"Column '{column}' looks numerical but holds {len(bad)} non-numeric value(s) such as "
                        f"{bad.astype(str).unique()[:3].tolist()}, so it is read as categorical. If they mean "
                        "'missing', add them to `data.na_values` and the column is read as numerical; if the "
                        "column really is categorical, list it in `data.categorical` to silence this note."
                    )
                unique_ratio = values.nunique() / max(1, values.notna().sum())
                if not looks_numeric and values.nunique() > 100 and unique_ratio > 0.5:
                    schema.notes.append(
                        f"Column '{column}' has {values.nunique()} distinct values in "
                        f"{values.notna().sum()} rows; if it is an identifier, add it to `data.drop`."
                    )
        elif pd.api.types.is_integer_dtype(values) and values.nunique() <= integer_categorical_max_unique:
            schema.categorical.append(column)
        elif pd.api.types.is_numeric_dtype(values):
            schema.numerical.append(column)
        else:
            raise DataError(
                f"Column '{column}' has dtype {values.dtype}, which tabcli cannot encode. List it "
                "in `data.drop`, `data.numerical` or `data.categorical`."
            )
    schema.notes.extend(infinite_value_notes(frame, schema.numerical, source))
    if not schema.features:
        raise DataError(
            f"No feature column is left in {source} after removing the target '{target}' and "
            f"`data.drop` {drop}."
        )
    return schema
