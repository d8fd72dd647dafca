"""Per-row explanations as plain data (for the Python API and `tabcli serve`): each row's top
columns by :func:`~tabcli.explain.ranking.model_ranking` and, for retrieval models, the columns
that made its neighbours its neighbours and the training rows its prediction leaned on most."""

from __future__ import annotations

from typing import Any

import numpy as np

from tabcli.explain.neighbours import neighbour_tables

__all__ = ["row_explanations"]


def _top(shares: np.ndarray, columns: list[str], top: int) -> list[dict]:
    from tabcli.explain.ranking import top_columns

    return [{"column": column, "importance": share} for column, share in top_columns(shares, columns, top)]


def row_explanations(run, inputs: dict[str, np.ndarray], top_features: int = 5,
                     top_neighbours: int = 10) -> list[dict[str, Any]] | None:
    """For each row of ``inputs`` (model inputs, ``run.inputs(frame)``):

    * ``top_features``: the ``top_features`` columns that move this row's prediction most
      (``[{"column", "importance"}]``, largest first; shares of the row's summed effects, so
      all columns together sum to 1), the ranking of ``tabcli explain``'s ``importance.csv``;
    * for a retrieval model, ``neighbour_columns``: the columns that made the row's neighbours
      its neighbours (``[{"column", "importance"}]``, shares of how much closer they are than a
      random training row), and ``neighbours``: the ``top_neighbours`` retrieved training rows
      with the largest weight (averaged over heads), ``[{"training_row", "weight", "label"}]``,
      ``training_row`` being the row's index in the training table and ``label`` in the target's
      own units or class names.

    Returns:
        One dict per row, or None for a model that is not a Keras model (``gbdt``).
    """
    if not run.backend.has_attention:
        return None
    from tabcli.explain.ranking import model_ranking

    rows = len(next(iter(inputs.values())))
    ranking = model_ranking(run, inputs)
    first_layer = None
    if ranking.neighbour_columns is not None:  # a retrieval model
        arrays, description = run.attention_scores(inputs, list(range(rows)))
        neighbours = neighbour_tables(arrays, description, list(range(rows)), list(range(rows)), None,
                                      run.schema.target, top=top_neighbours)
        first_layer = next(iter(neighbours.values()), None)
    explanations = []
    for index in range(rows):
        entry: dict[str, Any] = {"top_features": _top(ranking.per_row[index], ranking.columns, top_features)}
        if ranking.neighbour_columns is not None:
            entry["neighbour_columns"] = _top(ranking.neighbour_columns[index], ranking.columns, top_features)
        if first_layer is not None:
            entry["neighbours"] = [{"training_row": n["training row"], "weight": n["weight"], "label": n["label"]}
                                   for n in first_layer[index]["neighbours"]]
        explanations.append(entry)
    return explanations
