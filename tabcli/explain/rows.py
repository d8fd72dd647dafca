"""Per-row explanations as plain data (for the Python API and `tabcli serve`): each row's top
columns by attention and, for retrieval models, the training rows its prediction leaned on most."""

from __future__ import annotations

from typing import Any

import numpy as np

from tabcli.explain.importance import attention_importance, column_importance
from tabcli.explain.neighbours import neighbour_tables

__all__ = ["row_explanations"]


def row_explanations(run, inputs: dict[str, np.ndarray], top_features: int = 5,
                     top_neighbours: int = 10) -> list[dict[str, Any]] | None:
    """For each row of ``inputs`` (model inputs, ``run.inputs(frame)``): ``top_features`` columns
    by their share of attention (``[{"column", "attention"}]``, largest first, shares of the
    whole row summing to 1 over all columns) and, for a retrieval model, ``neighbours``: the
    ``top_neighbours`` retrieved training rows with the largest weight (averaged over heads):
    ``[{"training_row", "weight", "label"}]``, ``training_row`` being the row's index in the
    training table and ``label`` in the target's own units or class names.

    Returns:
        One dict per row, or None for a model without attention layers (``gbdt``, ``mlp``).
    """
    if not run.is_keras:
        return None
    from tabcli.models.registry import attention_manifest
    from tabcli.runs.attention import collect_attention

    rows = len(next(iter(inputs.values())))
    manifest = attention_manifest(run.config.model, run.model_spec(), run.context_ids)
    collected = collect_attention(run.model, inputs, manifest, row_ids=list(range(rows)),
                                  batch_size=run.config.training.eval_batch_size,
                                  decode_target=run.preprocessor.decode_target)
    if collected is None:
        return None
    arrays, description = collected
    weights_file = run.path / "branch_weights.json"
    branch_weights = None
    if weights_file.is_file():
        import json

        branch_weights = json.loads(weights_file.read_text(encoding="utf-8"))
    neighbours = neighbour_tables(arrays, description, list(range(rows)), list(range(rows)), None, run.schema.target,
                                  top=top_neighbours)
    first_layer = next(iter(neighbours.values()), None)
    explanations = []
    for index in range(rows):
        row_arrays = {k: v[index:index + 1] for k, v in arrays.items()}
        shares = column_importance(attention_importance(row_arrays, description, branch_weights))
        ordered = sorted(shares.items(), key=lambda item: -item[1])[:top_features]
        entry: dict[str, Any] = {"top_features": [{"column": c, "attention": float(v)} for c, v in ordered]}
        if first_layer is not None:
            entry["neighbours"] = [{"training_row": n["training row"], "weight": n["weight"], "label": n["label"]}
                                   for n in first_layer[index]["neighbours"]]
        explanations.append(entry)
    return explanations
