"""Date and time columns: recognised in a table and expanded into numerical features.

A date column (``2020-01-31``, ``31/01/2020 14:05``, a Parquet timestamp) says little as a
category with one level per day. As Ludwig and AutoGluon do, tabcli expands it into numerical
features the model can use: ``<column> (year)``, ``(month)`` 1-12, ``(day of week)`` 0 = Monday,
``(day of year)`` 1-366, ``(days since 1970)`` (a continuous time stamp, in days, time of day as a
fraction). Values that do not parse are missing values (imputed, with missing indicators).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

__all__ = ["DATE_PARTS", "date_part_names", "expand_dates", "looks_like_dates"]

#: The features a date column becomes, in order, with how each is named.
DATE_PARTS = ("year", "month", "day of week", "day of year", "days since 1970")

# A date string has a 4-digit year and a separator: "2020-01-31", "01/31/2020", "2020-01-31 14:05".
_DATE_LIKE = re.compile(r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2})|(?:\d{1,2}[-/.]\d{1,2}[-/.]\d{4})")
_SAMPLE = 200


def _parse(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        with warnings.catch_warnings():  # "could not infer format": mixed formats are parsed one by one
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(values.astype("string"), errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def looks_like_dates(values: pd.Series) -> bool:
    """Whether a column holds dates: a datetime dtype, or text of which at least 90 % of a
    sample of the non-missing values looks like a date with a 4-digit year and parses."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return False
    sample = values.dropna().astype(str).head(_SAMPLE)
    if sample.empty or sample.str.contains(_DATE_LIKE).mean() < 0.9:
        return False
    return bool(_parse(sample).notna().mean() >= 0.9)


def date_part_names(column: str) -> list[str]:
    """The feature names ``column`` expands into (see :data:`DATE_PARTS`)."""
    return [f"{column} ({part})" for part in DATE_PARTS]


def expand_dates(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with each of ``columns`` replaced by its :func:`date_part_names` features
    (float64; NaN where a value is missing or does not parse). Other columns are unchanged."""
    if not columns:
        return frame
    frame = frame.copy()
    for column in columns:
        parsed = _parse(frame[column])
        seconds = (parsed - pd.Timestamp("1970-01-01")).dt.total_seconds()
        parts = {
            "year": parsed.dt.year,
            "month": parsed.dt.month,
            "day of week": parsed.dt.day_of_week,
            "day of year": parsed.dt.day_of_year,
            "days since 1970": seconds / 86400.0,
        }
        position = list(frame.columns).index(column)
        frame = frame.drop(columns=[column])
        for offset, (part, value) in enumerate(parts.items()):
            frame.insert(position + offset, f"{column} ({part})", value.astype("float64").to_numpy(na_value=np.nan))
    return frame
