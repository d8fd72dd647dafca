"""Attention scores of a trained model as named, described NumPy arrays (``attention/*.npz``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from tabcli.training.pipeline import predict_in_batches

__all__ = ["ScoreLayout", "attention_layers", "attention_model", "collect_attention", "save_attention", "score_layout"]


def attention_layers(model: keras.Model) -> list:
    """The model's layers that return attention scores (they define ``attention_score_names``)."""
    return [layer for layer in model.layers if hasattr(layer, "attention_score_names")]


def attention_model(model: keras.Model) -> tuple[keras.Model, list[tuple[str, str]]] | None:
    """A model returning ``[prediction, *attention scores]`` from ``model``'s own graph.

    Works on a freshly built model and on one reloaded from ``model.keras``: tabcli's families
    call every attention layer once with ``return_attention_scores=True``, so the scores are
    tensors of the functional graph and ``predict`` computes real numbers.

    Returns:
        ``(scores_model, names)`` with one ``(layer name, score name)`` per score output, or
        None if the model has no attention layer.
    """
    outputs, names = [], []
    for layer in attention_layers(model):
        score_names = layer.attention_score_names()
        flat = layer.output
        flat = flat if isinstance(flat, (list, tuple)) else [flat]
        for score_name, tensor in zip(score_names, flat[len(flat) - len(score_names):]):
            outputs.append(tensor)
            names.append((layer.name, score_name))
    if not outputs:
        return None
    return keras.Model(model.inputs, [model.outputs[0], *outputs]), names


class ScoreLayout(NamedTuple):
    """How one attention score of a model is saved: ``key`` (``<layer>__<score>``), ``kind`` (the
    manifest's ``values``: ``"row_id"``, ``"target"`` or None for weights), ``squeeze`` (positions
    of the length-1 axes dropped, highest first, so they can be dropped one after another) and
    ``description`` (layer, score, the manifest's entry and the kept ``axes``; no ``shape``)."""

    key: str
    kind: str | None
    squeeze: list[int]
    description: dict


def score_layout(layer_name: str, score_name: str, manifest: dict, ndim: int) -> ScoreLayout:
    """The :class:`ScoreLayout` of the score ``score_name`` of ``layer_name`` whose tensor has
    ``ndim`` axes, from the model's attention manifest
    (:func:`tabcli.models.registry.attention_manifest`); axes the manifest does not name are
    ``axis_<i>``."""
    entry = dict(manifest.get(layer_name, {}).get(score_name, {}))
    axes = list(entry.get("axes", [f"axis_{i}" for i in range(ndim)]))
    squeeze = sorted((axes.index(axis) for axis in entry.pop("squeeze", [])), reverse=True)
    kept = [axis for i, axis in enumerate(axes) if i not in squeeze]
    return ScoreLayout(f"{layer_name}__{score_name}", entry.get("values"), squeeze,
                       {"layer": layer_name, "score": score_name, **entry, "axes": kept})


def collect_attention(
    model: keras.Model, inputs: dict, manifest: dict, row_ids: list, batch_size: int = 1024, decode_target=None
) -> tuple[dict[str, np.ndarray], dict] | None:
    """Attention scores of ``model`` on ``inputs``, each with a description.

    Args:
        model: A trained tabcli model.
        inputs: Preprocessed rows.
        manifest: Axes and labels of every score (``tabcli.models.registry.attention_manifest``).
        row_ids: Identifier of every row (its index in the original table).
        batch_size: Rows per prediction batch.
        decode_target: Maps encoded targets (class index, standardised value) to the target's
            own labels or units; applied to arrays whose manifest entry has ``"values": "target"``
            (the labels of retrieved rows). None keeps them encoded.

    Returns:
        ``(arrays, description)``: arrays named ``<layer>__<score>`` plus ``row_ids``; the
        description gives, per array, the layer, what it is, its axes and their labels
        (axes of length 1 listed under ``squeeze`` in the manifest are dropped). None if the
        model has no attention layer.
    """
    built = attention_model(model)
    if built is None:
        return None
    from tabcli.models.candidates import with_candidate_index

    scores_model, names = built
    results = predict_in_batches(scores_model, with_candidate_index(model, inputs), batch_size)
    arrays: dict[str, np.ndarray] = {"row_ids": np.asarray(row_ids)}
    description: dict = {"row_ids": {"axes": ["row"], "meaning": "index of each row in its original table"}}
    for (layer_name, score_name), value in zip(names, results[1:]):
        layout = score_layout(layer_name, score_name, manifest, np.ndim(value))
        if layout.kind == "row_id":
            value = np.asarray(value, dtype=np.int64)
        elif layout.kind == "target" and decode_target is not None:
            value = np.asarray(decode_target(np.asarray(value)))
        else:
            value = np.asarray(value, dtype=np.float32)
        for position in layout.squeeze:
            value = np.squeeze(value, axis=position)
        arrays[layout.key] = value
        description[layout.key] = {**layout.description, "shape": list(value.shape)}
    return arrays, description


def save_attention(folder: Path, split: str, arrays: dict[str, np.ndarray], description: dict) -> Path:
    """Write ``<folder>/<split>.npz`` (compressed) and its description ``<split>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.npz"
    np.savez_compressed(path, **arrays)
    (folder / f"{split}.json").write_text(json.dumps(description, indent=2, default=str) + "\n", encoding="utf-8")
    return path
