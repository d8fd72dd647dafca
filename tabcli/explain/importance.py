"""Global feature importance from attention scores, and permutation importance for comparison."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from tabcli.data.dates import DATE_PARTS

__all__ = [
    "token_column",
    "attention_importance",
    "column_importance",
    "permutation_importance",
    "primary_metric",
    "rank_correlation",
]

_MISSING = re.compile(r"^(?P<column>.+) \(missing\)$")
_DATE_PART = re.compile(r"^(?P<column>.+) \((?:" + "|".join(re.escape(p) for p in DATE_PARTS) + r")\)$")
_FEATURE_AXES = ("key_feature", "feature", "key_numerical", "key_categorical")


def token_column(token: str) -> str | None:
    """The table column a model token stands for (``"age (missing)"`` -> ``"age"``, a date's
    ``"signup (month)"`` -> ``"signup"``; ``[CLS]`` -> None)."""
    if token == "[CLS]":
        return None
    match = _MISSING.match(token)
    token = match.group("column") if match else token
    match = _DATE_PART.match(token)
    return match.group("column") if match else token


def _received(value: np.ndarray, axes: list[str], key_axis: str) -> np.ndarray:
    """Mean attention each key receives: average over every axis but the key axis -> (keys,)."""
    other = tuple(i for i, axis in enumerate(axes) if axis != key_axis)
    received = value.mean(axis=other)
    total = received.sum()
    return received / total if total > 0 else received


def _self_attention_blocks(arrays: dict, description: dict, prefix: str) -> list[tuple[np.ndarray, list[str]]]:
    """Token-by-token self-attention arrays ``(rows, T, T)`` (heads averaged) in block order."""
    blocks = []
    for key, info in description.items():
        axes = info.get("axes", [])
        if key == "row_ids" or not info.get("layer", "").startswith(prefix):
            continue
        if "query_feature" not in axes or "key_feature" not in axes or axes[0] != "row":
            continue
        value = np.asarray(arrays[key], dtype=np.float64)
        if "head" in axes:
            value = value.mean(axis=axes.index("head"))
        blocks.append((value, info["labels"]["key_feature"]))
    return blocks


def _rollout(blocks: list[tuple[np.ndarray, list[str]]], pooling: np.ndarray | None) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): how much each input token reaches the pooled vector.

    Each block's head-averaged attention is mixed with the identity for the residual
    connection, ``0.5 A + 0.5 I``, and the blocks are multiplied from the first to the last;
    the pooling distribution (or the [CLS] query, or a uniform mean) then reads the result.

    Returns:
        ``(rows, T)`` importance of every input token for every row.
    """
    first, labels = blocks[0]
    rows, tokens = first.shape[0], first.shape[-1]
    identity = np.eye(tokens)
    flow = np.broadcast_to(identity, (rows, tokens, tokens))
    for attention, _ in blocks:
        flow = (0.5 * attention + 0.5 * identity) @ flow
    if pooling is not None:
        reader = pooling
    elif labels and labels[0] == "[CLS]":
        reader = np.broadcast_to(identity[0], (rows, tokens))
    else:
        reader = np.full((rows, tokens), 1.0 / tokens)
    return np.einsum("rt,rtk->rk", reader, flow)


def _layer_importance(arrays: dict, description: dict, prefix: str = "") -> dict[str, float]:
    """Token importance of one model (or one ensemble branch, by layer-name prefix).

    Rule: where the model's feature tokens pass through self-attention blocks and are then
    pooled (tabular_attention, interpretable), the importance is the attention rollout
    (Abnar & Zuidema 2020) read by the pooling: the attention-pooling distribution where the
    model has one, the [CLS] query, or a uniform mean. For multi_resolution, whose streams
    cross-attend, every array is turned into the attention each token receives (mean over
    rows, heads and queries, summing to 1 over the array's keys), scaled by the array's share
    of all tokens (so attention spread evenly gives every column the same importance, whatever
    the size of its stream), and averaged over the arrays where the token is a key.
    """
    entries = [
        (key, info) for key, info in description.items()
        if key != "row_ids" and info.get("layer", "").startswith(prefix) and "labels" in info
        and any(axis in info["axes"] for axis in _FEATURE_AXES)
    ]
    pooling = [(k, i) for k, i in entries if i.get("score") == "pooling"]
    blocks = _self_attention_blocks(arrays, description, prefix)
    if blocks or pooling:
        reader = np.asarray(arrays[pooling[0][0]], dtype=np.float64) if pooling else None
        labels = blocks[0][1] if blocks else pooling[0][1]["labels"]["feature"]
        if blocks:
            received = _rollout(blocks, reader).mean(axis=0)
        else:
            received = reader.mean(axis=0)
        importance = {label: float(v) for label, v in zip(labels, received) if label != "[CLS]"}
    else:
        totals: dict[str, float] = {}
        counts: dict[str, int] = {}
        key_axes = [next(axis for axis in info["axes"] if axis in _FEATURE_AXES) for _, info in entries]
        all_tokens = {label for (_, info), axis in zip(entries, key_axes) for label in info["labels"][axis]}
        for (key, info), key_axis in zip(entries, key_axes):
            received = _received(np.asarray(arrays[key], dtype=np.float64), info["axes"], key_axis)
            stream_share = len(info["labels"][key_axis]) / len(all_tokens)
            for label, share in zip(info["labels"][key_axis], received):
                totals[label] = totals.get(label, 0.0) + stream_share * float(share)
                counts[label] = counts.get(label, 0) + 1
        importance = {label: totals[label] / counts[label] for label in totals}
    total = sum(importance.values())
    return {k: v / total for k, v in importance.items()} if total > 0 else importance


def attention_importance(arrays: dict, description: dict, branch_weights: dict | None = None) -> dict[str, float]:
    """Importance of every model token from the model's attention scores (sums to 1).

    Args:
        arrays: Attention arrays as written in ``attention/*.npz``.
        description: Their description (``attention/*.json``).
        branch_weights: For an ensemble, branch name -> weight; each branch's importance is
            weighted by it (branches without attention, e.g. ``mlp``, contribute nothing).

    Returns:
        Token name -> importance; empty if the model has no feature-level attention.
    """
    if not branch_weights:
        return _layer_importance(arrays, description)
    combined: dict[str, float] = {}
    for branch, weight in branch_weights.items():
        for token, value in _layer_importance(arrays, description, prefix=f"{branch}_").items():
            combined[token] = combined.get(token, 0.0) + weight * value
    total = sum(combined.values())
    return {k: v / total for k, v in combined.items()} if total > 0 else combined


def column_importance(token_importance: dict[str, float]) -> dict[str, float]:
    """Token importance summed per table column (a column's missing indicator counts for it)."""
    result: dict[str, float] = {}
    for token, value in token_importance.items():
        column = token_column(token)
        if column is not None:
            result[column] = result.get(column, 0.0) + value
    return result


def primary_metric(run, frame: pd.DataFrame) -> tuple[str, float]:
    """``(name, value)`` of the run's primary metric (ROC AUC for binary, accuracy for multiclass,
    RMSE for regression) on labelled ``frame``; an undefined value (one class present) is 0."""
    from tabcli.evaluation.metrics import PRIMARY_METRIC
    from tabcli.prediction.tables import frame_metrics

    schema = run.schema
    metric, _ = PRIMARY_METRIC[schema.task]
    value = frame_metrics(run.preprocessor, frame, run.predict_raw(frame))[metric]
    return metric, 0.0 if value is None else value


def permutation_importance(run, frame: pd.DataFrame, n_repeats: int = 3, seed: int = 0) -> tuple[dict, dict, str]:
    """Permutation importance of every feature column on labelled rows (Breiman 2001).

    Uses ``sklearn.inspection.permutation_importance``: each column of ``frame`` is shuffled
    ``n_repeats`` times and the drop of the run's primary metric (:func:`primary_metric`; for
    RMSE its rise) is the column's importance.

    Args:
        run: A :class:`~tabcli.runs.run.LoadedRun`.
        frame: Labelled rows with the training columns.
        n_repeats: Shuffles per column.
        seed: Seed of the shuffles.

    Returns:
        ``(mean, std, metric)``: column -> mean drop, column -> std of the drop, the metric name.
    """
    from sklearn.inspection import (
        permutation_importance as sklearn_permutation_importance,
    )

    from tabcli.evaluation.metrics import PRIMARY_METRIC

    schema = run.schema
    metric, higher_is_better = PRIMARY_METRIC[schema.task]
    columns = list(schema.features)

    class _Scorer:
        """A fitted-estimator stand-in: scores a permuted frame with the run's model."""

        def fit(self, *_):
            return self

    def score(_estimator, features: pd.DataFrame, target) -> float:
        rows = features.copy()
        rows[schema.target] = np.asarray(target)
        value = primary_metric(run, rows)[1]
        return value if higher_is_better else -value

    result = sklearn_permutation_importance(
        _Scorer(), frame[columns].reset_index(drop=True), frame[schema.target].to_numpy(),
        scoring=score, n_repeats=n_repeats, random_state=seed,
    )
    mean = dict(zip(columns, result.importances_mean.tolist()))
    std = dict(zip(columns, result.importances_std.tolist()))
    return mean, std, metric


def rank_correlation(first: dict[str, float], second: dict[str, float]) -> float | None:
    """Spearman rank correlation of two importance dicts over their common keys
    (:func:`tabcli.evaluation.metrics.spearman`: None if undefined)."""
    from tabcli.evaluation.metrics import spearman

    keys = [k for k in first if k in second]
    return spearman([first[k] for k in keys], [second[k] for k in keys])
