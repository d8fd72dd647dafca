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
from tabcli.export.normal import ndtri

__all__ = ["GraphPreprocessing"]


def _interp(x, xp, fp, portable: bool = False):
    """``np.interp(x, xp, fp)`` for every column: ``x`` (columns, rows), ``xp`` (columns, n)
    non-decreasing, ``fp`` (columns, n). ``portable`` counts ``xp <= x`` by comparison instead of
    ``tf.searchsorted`` (which ONNX lacks), at ``columns * rows * n`` booleans of memory."""
    n = xp.shape[1]
    if portable:
        right = tf.reduce_sum(tf.cast(xp[:, None, :] <= x[:, :, None], tf.int32), axis=-1)
    else:
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
        portable: Only operations ONNX has: ``searchsorted`` by comparison, the inverse normal
            CDF by :func:`tabcli.export.normal.ndtri`, category text taken as it comes (no
            stripping of surrounding spaces).

    Raises:
        ValueError: If the table has date columns (expanded with pandas, not exportable).
    """

    def __init__(self, preprocessor, na_values=(), portable: bool = False):
        super().__init__(name="preprocessing")
        self.portable = bool(portable)
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
        missing_text = sorted({str(v).strip() for v in na_values} | {""})
        tables = []
        for lookup in encoder.lookups:
            # Missing text is one more key, with the missing category's code: no string comparison
            # in the graph (converters turn those into casts). int64 codes: what ONNX's
            # CategoryMapper (ai.onnx.ml) maps strings to.
            codes = {**lookup, **{text: lookup.get(MISSING_CATEGORY, UNSEEN_CODE) for text in missing_text}}
            tables.append(tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(codes), tf.string), tf.constant(list(codes.values()), tf.int64)), UNSEEN_CODE))
        self.tables = tables
        regression = preprocessor.schema.task == "regression"
        self.classes = None if regression else tf.constant([str(c) for c in preprocessor.schema.classes], tf.string)
        self.target_mean = float(preprocessor.target_mean) if regression else 0.0
        self.target_std = float(preprocessor.target_std) if regression else 1.0

    def decode_target(self, values):
        """Encoded targets (any shape) back to the target's units (float64) or class names
        (string): the graph form of
        :meth:`~tabcli.data.preprocessing.TabularPreprocessor.decode_target`. Class indices may
        come as floats (a retrieval layer's stored labels); they are rounded first."""
        if self.classes is None:
            return tf.cast(values, tf.float64) * self.target_std + self.target_mean
        return tf.gather(self.classes, tf.cast(tf.round(tf.cast(values, tf.float32)), tf.int64))

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
            missing = tf.logical_or(tf.math.is_nan(raw), tf.math.is_inf(raw))
            # One select per test, each straight on IsNaN / IsInf: tf2onnx keeps such a select a
            # Where; on any other condition it writes it as Mul/Add, and NaN * 0 is NaN.
            medians = tf.broadcast_to(self.medians[:, None], tf.shape(raw))
            filled = tf.where(tf.math.is_nan(raw), medians, raw)
            filled = tf.where(tf.math.is_inf(filled), medians, filled)
            uniform = 0.5 * (_interp(filled, self.quantiles, self.references, self.portable)
                             - _interp(-filled, self.reversed_quantiles, self.reversed_references, self.portable))
            uniform = tf.where(filled + _BOUNDS > self.quantiles[:, -1:], tf.ones_like(uniform), uniform)
            uniform = tf.where(filled - _BOUNDS < self.quantiles[:, :1], tf.zeros_like(uniform), uniform)
            normal = tf.clip_by_value(ndtri(uniform) if self.portable else tf.math.ndtri(uniform), _CLIP, -_CLIP)
            parts = [tf.transpose(normal)]
            if self.indicator_positions:
                parts.append(tf.transpose(tf.cast(tf.gather(missing, self.indicator_positions), tf.float64)))
            width = len(self.numerical) + len(self.indicator_positions)
            inputs["numerical"] = tf.reshape(tf.cast(tf.concat(parts, axis=1), tf.float32), [-1, width])
        if self.categorical:
            codes = []
            for column, table in zip(self.categorical, self.tables):
                text = columns[column] if self.portable else tf.strings.strip(columns[column])
                codes.append(tf.cast(table.lookup(text), tf.int32))
            # A static width: graph converters (tf2onnx) cannot infer it through the table lookups.
            inputs["categorical"] = tf.reshape(tf.stack(codes, axis=1), [-1, len(self.categorical)])
        return inputs
