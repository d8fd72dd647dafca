"""Attention scores of a trained model as named, described NumPy arrays (``attention/*.npz``)."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from tabcli.layers import TabularAttention

__all__ = ["attention_model", "collect_attention", "save_attention"]


def attention_model(model: keras.Model) -> tuple[keras.Model, list[str]] | None:
    """A model returning ``[prediction, *attention scores]`` from ``model``'s own graph.

    Works on a freshly built model and on one reloaded from ``model.keras``: the attention
    layers were called with ``return_attention_scores=True``, so their scores are tensors of
    the functional graph.

    Returns:
        ``(scores_model, names)`` with one name per score output (``"<layer>/inter_feature_<i>"``,
        ``"<layer>/inter_sample"``), or None if the model has no attention layer.
    """
    outputs, names = [], []
    for layer in model.layers:
        if isinstance(layer, TabularAttention):
            flat = layer.output  # [output, feature scores..., sample scores]
            feature_scores = flat[1:-1]
            for i, tensor in enumerate(feature_scores):
                outputs.append(tensor)
                names.append(f"{layer.name}/inter_feature_{i}")
            outputs.append(flat[-1])
            names.append(f"{layer.name}/inter_sample")
    if not outputs:
        return None
    return keras.Model(model.inputs, [model.outputs[0], *outputs]), names


def collect_attention(
    model: keras.Model,
    inputs: dict,
    feature_names: list[str],
    row_ids: list,
    context_ids: list,
    batch_size: int = 1024,
) -> tuple[dict[str, np.ndarray], dict] | None:
    """Attention scores of ``model`` on ``inputs`` with a description of every array.

    Inter-feature scores are stored as ``(rows, heads, T, T)`` (the model's samples axis of
    length 1 is squeezed); inter-sample scores as ``(rows, heads, 1 + M)``: the row attending
    to itself, then to each of the ``M`` context rows.

    Args:
        model: A trained tabcli model.
        inputs: Preprocessed rows.
        feature_names: Token labels in model order (numerical, missing indicators, categorical).
        row_ids: Identifier of every row (its index in the original table).
        context_ids: Index (in the training table) of each context row.

    Returns:
        ``(arrays, description)`` or None if the model has no attention layer.
    """
    built = attention_model(model)
    if built is None:
        return None
    scores_model, names = built
    results = scores_model.predict(inputs, batch_size=batch_size, verbose=0)
    arrays: dict[str, np.ndarray] = {"row_ids": np.asarray(row_ids)}
    description: dict = {
        "row_ids": {"axes": ["row"], "meaning": "index of each row in its original table"},
    }
    for name, value in zip(names, results[1:]):
        value = np.asarray(value, dtype=np.float32)
        layer_name, kind = name.split("/")
        key = name.replace("/", "__")
        if kind.startswith("inter_feature"):
            value = value[:, 0]  # (rows, heads, T, T)
            tokens = list(feature_names)
            if value.shape[-1] == len(tokens) + 1:
                tokens = ["[CLS]", *tokens]
            description[key] = {
                "layer": layer_name,
                "kind": "inter-feature attention (block %s)" % kind.rsplit("_", 1)[-1],
                "axes": ["row", "head", "query_feature", "key_feature"],
                "labels": {"query_feature": tokens, "key_feature": tokens},
                "sums_to_one_over": "key_feature",
            }
        else:
            value = value[:, :, 0, :]  # (rows, heads, 1 + M)
            description[key] = {
                "layer": layer_name,
                "kind": "inter-sample attention",
                "axes": ["row", "head", "key_sample"],
                "labels": {"key_sample": ["self", *[f"context:{i}" for i in context_ids]]},
                "sums_to_one_over": "key_sample",
                "note": "key 0 is the row itself; the others are context rows stored in the model, "
                "named by their index in the training table",
            }
        arrays[key] = value
    return arrays, description


def save_attention(folder: Path, split: str, arrays: dict[str, np.ndarray], description: dict) -> Path:
    """Write ``<folder>/<split>.npz`` (compressed) and its description ``<split>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.npz"
    np.savez_compressed(path, **arrays)
    (folder / f"{split}.json").write_text(json.dumps(description, indent=2, default=str) + "\n", encoding="utf-8")
    return path
