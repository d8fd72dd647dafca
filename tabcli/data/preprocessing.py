"""Fitted preprocessing: a scikit-learn ColumnTransformer for features, an encoder for the target.

Numerical columns: median imputation, a 0/1 missing indicator for every column that had
missing values in the training rows, and a quantile transform to a normal distribution (the
FT-Transformer recipe, Gorishniy et al. 2021). Categorical columns: values as strings,
constant imputation (``"__missing__"``, so "missing" is a category of its own when it occurs in
training), ordinal codes with categories seen fewer than ``rare_min_count`` times grouped into
one "rare" code, and code 0 reserved for categories never seen in training. Everything is
fitted on the training rows only (on a seeded sample of them when there are more than
``data.preprocessing_sample_rows``: :func:`tabcli.data.prepare.fitting_rows`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder, QuantileTransformer

from tabcli.data.dates import date_part_names, expand_dates
from tabcli.data.schema import TableSchema
from tabcli.errors import DataError

__all__ = ["TabularPreprocessor", "as_category_strings", "reference_values", "UNSEEN_CODE", "MISSING_CATEGORY"]

UNSEEN_CODE = 0
MISSING_CATEGORY = "__missing__"


def _category_string(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return np.nan
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        # 2008 and 2008.0 (an int column with gaps is read as float) are the same category.
        return str(int(value))
    return str(value)


def as_category_strings(values) -> np.ndarray:
    """Categorical values as an object array of strings, with ``np.nan`` for missing.

    Args:
        values: DataFrame or 2-D array ``(rows, columns)``.

    Returns:
        Object array of the same shape.
    """
    frame = pd.DataFrame(values)
    return np.stack(
        [frame[c].map(_category_string, na_action=None).to_numpy(dtype=object) for c in frame.columns],
        axis=1,
    ) if frame.shape[1] else np.empty((len(frame), 0), dtype=object)


def reference_values(frame: pd.DataFrame, columns: list[str]) -> dict:
    """Column -> its median (numbers) or most frequent value (anything else) over ``frame``'s
    non-missing values; NaN for a column with none."""
    values = {}
    for column in columns:
        series = frame[column].dropna()
        if series.empty:
            values[column] = np.nan
        elif pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values[column] = float(series.median())
        else:
            values[column] = series.mode().iloc[0]
    return values


class TabularPreprocessor:
    """Fits on the training rows, then turns any table with the same columns into arrays.

    Args:
        schema: Column roles and task (:class:`~tabcli.data.schema.TableSchema`).
        rare_min_count: Categories seen fewer times than this in training share one code.
        n_quantiles: Upper bound on the quantiles of the quantile transform (capped at the
            number of training rows).
        seed: Random state of the quantile transform's subsampling.

    Attributes (after :meth:`fit`):
        numerical_names: Names of the columns of ``transform(...)["numerical"]``: the
            numerical columns, then ``"<column> (missing)"`` indicators.
        categorical_names: Names of the columns of ``transform(...)["categorical"]``.
        cardinalities: Number of codes of each categorical column (code 0 = unseen).
        target_mean, target_std: Regression target standardisation (own units).
        reference_values_: Feature column -> its training median (numbers) or most frequent
            value (:func:`reference_values`).
    """

    def __init__(self, schema: TableSchema, rare_min_count: int = 5, n_quantiles: int = 1000, seed: int = 0):
        self.schema = schema
        self.rare_min_count = int(rare_min_count)
        self.n_quantiles = int(n_quantiles)
        self.seed = int(seed)
        self.fitted_ = False

    # ----------------------------------------------------------------- fitting
    def fit(self, frame: pd.DataFrame) -> "TabularPreprocessor":
        """Fit the feature transformers and the target encoding on ``frame`` (training rows).

        Raises:
            DataError: If a column of the schema is missing from ``frame``.
        """
        self._check_columns(frame, "the training rows")
        schema = self.schema
        # What a typical training row holds: explanations "remove" a column by setting it to this.
        self.reference_values_ = reference_values(frame, list(schema.features))
        frame = expand_dates(frame, schema.date_columns)
        numerical = [*schema.numerical, *(n for c in schema.date_columns for n in date_part_names(c))]
        categorical = schema.categorical
        features = self._finite(frame[[*numerical, *categorical]].copy())  # once, for indicators and fit
        self.missing_indicator_columns = [c for c in numerical if features[c].isna().any()]
        transformers = []
        if numerical:
            transformers.append((
                "numerical",
                Pipeline([
                    ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                    ("quantile", QuantileTransformer(
                        output_distribution="normal",
                        n_quantiles=max(2, min(self.n_quantiles, len(frame))),
                        subsample=1_000_000_000,
                        random_state=self.seed,
                    )),
                ]),
                numerical,
            ))
        if self.missing_indicator_columns:
            transformers.append((
                "missing",
                MissingIndicator(features="all", error_on_new=False),
                self.missing_indicator_columns,
            ))
        if categorical:
            min_frequency = self.rare_min_count if self.rare_min_count > 1 else None
            transformers.append((
                "categorical",
                Pipeline([
                    ("as_strings", FunctionTransformer(as_category_strings, feature_names_out="one-to-one")),
                    ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY, missing_values=np.nan)),
                    ("ordinal", OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=-1,
                        min_frequency=min_frequency,
                        dtype=np.int64,
                    )),
                ]),
                categorical,
            ))
        self.transformer_ = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
        self.transformer_.fit(features)
        self.numerical_names = [*numerical, *(f"{c} (missing)" for c in self.missing_indicator_columns)]
        self.categorical_names = list(categorical)
        self.cardinalities = []
        if categorical:
            encoder = self.transformer_.named_transformers_["categorical"].named_steps["ordinal"]
            infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(categorical)
            for cats, rare in zip(encoder.categories_, infrequent):
                n_codes = len(cats) if rare is None else len(cats) - len(rare) + 1
                self.cardinalities.append(n_codes + 1)  # + code 0 for unseen
        target = frame[schema.target]
        if schema.task == "regression":
            values = pd.to_numeric(target, errors="coerce").to_numpy(dtype=float)
            self.target_mean = float(np.nanmean(values))
            std = float(np.nanstd(values))
            self.target_std = std if std > 0 else 1.0
        else:
            self.target_mean, self.target_std = 0.0, 1.0
        self.fitted_ = True
        return self

    def _finite(self, features: pd.DataFrame) -> pd.DataFrame:
        """``features`` with ``inf``/``-inf`` in numerical columns read as missing (in place)."""
        for column in features.columns:
            if column in features.columns and pd.api.types.is_float_dtype(features[column]):
                features[column] = features[column].replace([np.inf, -np.inf], np.nan)
        return features

    # --------------------------------------------------------------- transform
    def _check_columns(self, frame: pd.DataFrame, what: str) -> None:
        self.check_columns(list(frame.columns), what)

    def check_columns(self, columns: list[str], what: str = "the table") -> None:
        """Check that a table with ``columns`` has every feature column, before reading its rows.

        Raises:
            DataError: Naming the missing columns and the available ones.
        """
        missing = [c for c in self.schema.features if c not in columns]
        if missing:
            raise DataError(
                f"Column(s) {missing} used by the model are missing from {what}. "
                f"Available columns: {list(columns)}."
            )

    def transform(self, frame: pd.DataFrame, what: str = "the table") -> dict[str, np.ndarray]:
        """Turn a table into model inputs.

        Args:
            frame: A table with (at least) the schema's feature columns.
            what: How to name ``frame`` in error messages.

        Returns:
            ``{"numerical": float32 (rows, len(numerical_names)), "categorical": int32 (rows,
            len(categorical_names))}``; categorical code 0 means "not seen in training".

        Raises:
            DataError: If feature columns are missing, or a numerical column holds text.
        """
        if not self.fitted_:
            raise RuntimeError("TabularPreprocessor.transform called before fit.")
        self._check_columns(frame, what)
        dates = self.schema.date_columns
        features = expand_dates(frame[self.schema.features], dates)
        for column in self.schema.numerical:
            if not (pd.api.types.is_numeric_dtype(features[column]) or pd.api.types.is_bool_dtype(features[column])):
                converted = pd.to_numeric(features[column], errors="coerce")
                bad = features[column][converted.isna() & features[column].notna()]
                if len(bad):
                    raise DataError(
                        f"Numerical column '{column}' of {what} holds non-numeric values such as "
                        f"{bad.astype(str).unique()[:3].tolist()}. Add them to `data.na_values` or fix the file."
                    )
                features[column] = converted
        matrix = self.transformer_.transform(self._finite(features))
        n_num = len(self.numerical_names)
        numerical = np.asarray(matrix[:, :n_num], dtype=np.float32)
        categorical = np.asarray(matrix[:, n_num:], dtype=np.float64)
        categorical = (categorical + 1).astype(np.int32)  # -1 (unknown) -> 0, codes shift by one
        return {"numerical": numerical, "categorical": categorical}

    def encode_target(self, target: pd.Series, what: str = "the table") -> np.ndarray:
        """Target values for training: class indices (int32) or standardised floats (float32).

        Raises:
            DataError: If a class was not seen in the training rows, or a regression target
                holds text or missing values.
        """
        if self.schema.task == "regression":
            values = pd.to_numeric(target, errors="coerce")
            if values.isna().any() or np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).any():
                raise DataError(
                    f"The target column '{self.schema.target}' of {what} has missing, infinite or non-numeric values."
                )
            return ((values.to_numpy(dtype=float) - self.target_mean) / self.target_std).astype(np.float32)
        lookup = {_category_string(c): i for i, c in enumerate(self.schema.classes)}
        keys = target.map(_category_string)
        codes = keys.map(lookup)
        if codes.isna().any():
            unknown = sorted(set(keys[codes.isna()].astype(str)))[:5]
            raise DataError(
                f"The target column '{self.schema.target}' of {what} holds value(s) {unknown} not seen "
                f"among the training classes {self.schema.classes}."
            )
        return codes.to_numpy(dtype=np.int32)

    def decode_target(self, values: np.ndarray) -> np.ndarray:
        """Encoded targets (any shape) back to the target's own units (float64) or class labels
        (a string array of the same shape)."""
        if self.schema.task == "regression":
            return self.decode_regression(values)
        labels = np.asarray([str(c) for c in self.schema.classes])
        return labels[np.asarray(values).astype(np.int64)]

    def decode_regression(self, values: np.ndarray) -> np.ndarray:
        """Standardised predictions back to the target's own units."""
        return np.asarray(values, dtype=np.float64) * self.target_std + self.target_mean
