"""Model inputs straight from records (column -> value dicts), for serving a few rows at a time.

:meth:`TabularPreprocessor.transform` runs the fitted scikit-learn ``ColumnTransformer`` on a
DataFrame. For the handful of rows of an HTTP request almost all of its time is per-call work
(input validation in every step, pandas column selection, one joblib dispatch per transformer),
many times the arithmetic itself.
:class:`RecordEncoder` reads the *fitted* parameters once (the imputer's medians, the quantile
transform's ``quantiles_`` / ``references_``, the ordinal encoder's codes) and applies them with
NumPy. It gives the same arrays as ``transform`` (a test compares them on missing, infinite,
unseen, rare and boolean values); ``transform`` stays the reference everywhere else.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtri

from tabcli.data.preprocessing import MISSING_CATEGORY, UNSEEN_CODE, TabularPreprocessor, _category_string

__all__ = ["RecordEncoder"]

# scikit-learn's QuantileTransformer: values within this distance of the fitted range's ends map to
# the ends, and the normal output is clipped at the quantiles of this probability
# (sklearn/preprocessing/_data.py, BOUNDS_THRESHOLD).
_BOUNDS = 1e-7
_CLIP = float(ndtri(_BOUNDS - np.spacing(1)))


class RecordEncoder:
    """The fitted preprocessing of a run, applied to records without pandas or scikit-learn calls.

    Args:
        preprocessor: A fitted :class:`~tabcli.data.preprocessing.TabularPreprocessor` whose schema
            has no date columns (those are expanded with pandas; use :meth:`supports`).

    Raises:
        ValueError: If the preprocessor is not fitted, has date columns, or its transformers are
            not the ones :class:`TabularPreprocessor` fits.
    """

    def __init__(self, preprocessor: TabularPreprocessor):
        if not self.supports(preprocessor):
            raise ValueError("RecordEncoder needs a fitted TabularPreprocessor without date columns.")
        schema = preprocessor.schema
        named = preprocessor.transformer_.named_transformers_
        self.numerical = list(schema.numerical)
        self.categorical = list(schema.categorical)
        if self.numerical:
            steps = named["numerical"].named_steps
            quantile = steps["quantile"]
            if quantile.output_distribution != "normal":
                raise ValueError("RecordEncoder reproduces the normal-output quantile transform only.")
            self.medians = np.asarray(steps["impute"].statistics_, dtype=np.float64)
            self.quantiles = np.asarray(quantile.quantiles_, dtype=np.float64)  # (n_quantiles, columns)
            self.references = np.asarray(quantile.references_, dtype=np.float64)
        missing = set(preprocessor.missing_indicator_columns)
        self.indicator_positions = [i for i, c in enumerate(self.numerical) if c in missing]
        # Codes from the fitted encoder itself (rare categories grouped, unseen -> 0), so the
        # grouping rule is scikit-learn's, read once per category rather than re-implemented.
        self.lookups: list[dict[str, int]] = []
        if self.categorical:
            encoder = named["categorical"].named_steps["ordinal"]
            for j, categories in enumerate(encoder.categories_):
                table = np.empty((len(categories), len(self.categorical)), dtype=object)
                for i, other in enumerate(encoder.categories_):
                    table[:, i] = other[0]
                table[:, j] = categories
                codes = encoder.transform(table)[:, j]
                self.lookups.append({str(c): int(code) + 1 for c, code in zip(categories, codes)})

    @staticmethod
    def supports(preprocessor: TabularPreprocessor) -> bool:
        """Whether ``preprocessor`` is fitted and has no date columns."""
        return bool(getattr(preprocessor, "fitted_", False)) and not preprocessor.schema.date_columns

    def _quantile_normal(self, values: np.ndarray) -> np.ndarray:
        """scikit-learn's ``QuantileTransformer(output_distribution="normal").transform`` of
        ``values`` ``(rows, columns)`` without missing values."""
        out = np.empty_like(values)
        for j in range(values.shape[1]):
            column, quantiles, references = values[:, j], self.quantiles[:, j], self.references
            # The average of an increasing and a decreasing interpolation, as scikit-learn does, so
            # repeated quantiles (many equal training values) map to the middle of their range.
            uniform = 0.5 * (np.interp(column, quantiles, references)
                             - np.interp(-column, -quantiles[::-1], -references[::-1]))
            uniform[column + _BOUNDS > quantiles[-1]] = 1.0
            uniform[column - _BOUNDS < quantiles[0]] = 0.0
            with np.errstate(divide="ignore"):
                out[:, j] = np.clip(ndtri(uniform), _CLIP, -_CLIP)
        return out

    def encode(self, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """Model inputs for ``records``, as :meth:`TabularPreprocessor.transform` gives them.

        Args:
            records: One dict per row with every feature column as a key (validated upstream):
                numbers or None for numerical columns; str, int, float, bool or None for
                categorical ones.

        Returns:
            ``{"numerical": float32 (rows, numerical + indicator columns), "categorical": int32
            (rows, categorical columns)}``; only inputs with at least one column.
        """
        rows = len(records)
        inputs: dict[str, np.ndarray] = {}
        if self.numerical:
            raw = np.array([[np.nan if r[c] is None else r[c] for c in self.numerical] for r in records],
                           dtype=np.float64).reshape(rows, len(self.numerical))
            missing = ~np.isfinite(raw)  # inf counts as missing, as in training
            filled = np.where(missing, self.medians, raw)
            parts = [self._quantile_normal(filled), missing[:, self.indicator_positions].astype(np.float64)]
            inputs["numerical"] = np.concatenate(parts, axis=1).astype(np.float32)
        if self.categorical:
            codes = np.empty((rows, len(self.categorical)), dtype=np.int32)
            for j, (column, lookup) in enumerate(zip(self.categorical, self.lookups)):
                for i, record in enumerate(records):
                    text = _category_string(record[column])
                    key = MISSING_CATEGORY if text is np.nan else text
                    codes[i, j] = lookup.get(key, UNSEEN_CODE)
            inputs["categorical"] = codes
        return inputs
