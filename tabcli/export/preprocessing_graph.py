"""A run's fitted preprocessing as TensorFlow operations, for exported models.

The parameters are those :class:`~tabcli.data.record_encoder.RecordEncoder` reads from the fitted
scikit-learn transformers (imputation medians, the quantile transform's quantiles and references,
the ordinal codes with rare categories grouped); the operations reproduce
:meth:`~tabcli.data.preprocessing.TabularPreprocessor.transform` in float64:

* numerical: a missing or infinite value takes the training median and sets its 0/1 indicator;
  scikit-learn's ``QuantileTransformer(output_distribution="normal")``: the mean of an
  increasing and a decreasing linear interpolation on the stored quantiles (as ``np.interp``,
  found with ``tf.searchsorted``), the ends within 1e-7 mapped to 0 and 1, then the inverse
  normal CDF (``tf.math.ndtri``) clipped as scikit-learn clips it;
* categorical: the text with surrounding spaces removed; empty text or one of ``data.na_values``
  is the missing category; a hash table maps each training category to its code, anything else
  to the unseen code 0.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tabcli.data.preprocessing import MISSING_CATEGORY, UNSEEN_CODE
from tabcli.data.record_encoder import _BOUNDS, _CLIP, RecordEncoder

__all__ = ["GraphPreprocessing"]


def _interp(x, xp, fp):
    """``np.interp(x, xp, fp)`` for every column: ``x`` (columns, rows), ``xp`` (columns, n)
    non-decreasing, ``fp`` (columns, n)."""
    n = xp.shape[1]
    right = tf.searchsorted(xp, x, side="right")  # first position with xp > x
    j = tf.clip_by_value(right - 1, 0, n - 2)
    x0, x1 = tf.gather(xp, j, batch_dims=1), tf.gather(xp, j + 1, batch_dims=1)
    f0, f1 = tf.gather(fp, j, batch_dims=1), tf.gather(fp, j + 1, batch_dims=1)
    inner = f0 + (f1 - f0) * (x - x0) / tf.where(x1 > x0, x1 - x0, tf.ones_like(x0))
    inner = tf.where(x1 > x0, inner, f0)
    first, last = fp[:, :1], fp[:, -1:]
    return tf.where(x < xp[:, :1], first, tf.where(x >= xp[:, -1:], last, inner))


class GraphPreprocessing(tf.Module):
    """The fitted preprocessing of a run as TensorFlow operations: a ``tf.Module``, so its lookup
    tables are tracked and saved with the model that holds it.

    Args:
        preprocessor: The run's fitted :class:`~tabcli.data.preprocessing.TabularPreprocessor`.
        na_values: The run's ``data.na_values`` (text read as missing in a categorical column).

    Raises:
        ValueError: If the table has date columns (expanded with pandas, not exportable).
    """

    def __init__(self, preprocessor, na_values=()):
        super().__init__(name="preprocessing")
        encoder = RecordEncoder(preprocessor)
        self.numerical = encoder.numerical
        self.categorical = encoder.categorical
        self.indicator_positions = encoder.indicator_positions
        if self.numerical:
            self.medians = tf.constant(encoder.medians, tf.float64)
            self.quantiles = tf.constant(encoder.quantiles.T, tf.float64)  # (columns, n)
            references = np.broadcast_to(encoder.references, encoder.quantiles.T.shape)
            self.references = tf.constant(references, tf.float64)
            self.reversed_quantiles = tf.constant(-encoder.quantiles.T[:, ::-1], tf.float64)
            self.reversed_references = tf.constant(-references[:, ::-1], tf.float64)
        self.na_values = tf.constant(sorted({str(v).strip() for v in na_values} | {""}), tf.string)
        self.tables = [
            tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(lookup), tf.string), tf.constant(list(lookup.values()), tf.int32)), UNSEEN_CODE)
            for lookup in encoder.lookups
        ]

    def __call__(self, columns: dict) -> dict:
        """Model inputs from raw columns.

        Args:
            columns: ``{column: (rows,) tensor}``: float64 for numerical columns (NaN or ±inf
                for missing), string for categorical ones.

        Returns:
            ``{"numerical": float32 (rows, n_num + indicators), "categorical": int32 (rows, n_cat)}``,
            the inputs present in the model.
        """
        inputs = {}
        if self.numerical:
            raw = tf.stack([tf.cast(columns[c], tf.float64) for c in self.numerical], axis=0)  # (columns, rows)
            missing = tf.logical_not(tf.math.is_finite(raw))
            filled = tf.where(missing, self.medians[:, None], raw)
            uniform = 0.5 * (_interp(filled, self.quantiles, self.references)
                             - _interp(-filled, self.reversed_quantiles, self.reversed_references))
            uniform = tf.where(filled + _BOUNDS > self.quantiles[:, -1:], tf.ones_like(uniform), uniform)
            uniform = tf.where(filled - _BOUNDS < self.quantiles[:, :1], tf.zeros_like(uniform), uniform)
            normal = tf.clip_by_value(tf.math.ndtri(uniform), _CLIP, -_CLIP)
            parts = [tf.transpose(normal)]
            if self.indicator_positions:
                parts.append(tf.transpose(tf.cast(tf.gather(missing, self.indicator_positions), tf.float64)))
            inputs["numerical"] = tf.cast(tf.concat(parts, axis=1), tf.float32)
        if self.categorical:
            codes = []
            for column, table in zip(self.categorical, self.tables):
                text = tf.strings.strip(columns[column])
                is_missing = tf.reduce_any(tf.equal(text[:, None], self.na_values[None, :]), axis=1)
                text = tf.where(is_missing, tf.constant(MISSING_CATEGORY), text)
                codes.append(table.lookup(text))
            inputs["categorical"] = tf.stack(codes, axis=1)
        return inputs
