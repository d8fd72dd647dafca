"""Case-based explanation of retrieval models: the training rows a prediction leaned on."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["TOP_NEIGHBOURS", "retrieval_layers", "neighbour_tables", "label_agreement"]

#: Retrieved training rows listed per explained row.
TOP_NEIGHBOURS = 10


def retrieval_layers(description: dict) -> list[str]:
    """Layer names whose retrieval arrays (``<layer>__weights``, ``__ids``, ``__labels``) are present."""
    return [info["layer"] for key, info in description.items()
            if info.get("kind") == "retrieval weights" and f"{info['layer']}__ids" in description]


def _mean_weights(arrays: dict, layer: str) -> np.ndarray:
    """``(rows, k)`` retrieval weights averaged over heads."""
    return np.asarray(arrays[f"{layer}__weights"], dtype=np.float64).mean(axis=1)


def neighbour_tables(arrays: dict, description: dict, positions: list[int], explained_ids: list,
                     train_frame: pd.DataFrame | None, target: str, top: int = TOP_NEIGHBOURS) -> dict[str, list]:
    """For each explained row, the ``top`` retrieved training rows with the largest
    weight (averaged over heads): their id, weight, label and feature values.

    Args:
        arrays, description: Attention arrays and their description (``collect_attention``).
        positions: Positions of the explained rows in ``arrays``.
        explained_ids: Their ids (index in their own table).
        train_frame: The run's training table (None: values are not shown).
        target: The target column (left out of the values; the label is shown on its own).
        top: Neighbours listed per row (default :data:`TOP_NEIGHBOURS`).

    Returns:
        ``{layer: [{"row": id, "neighbours": [{"training row", "weight", "label", **values}]}]}``.
    """
    tables = {}
    for layer in retrieval_layers(description):
        weights = _mean_weights(arrays, layer)
        ids, labels = arrays[f"{layer}__ids"], arrays[f"{layer}__labels"]
        per_row = []
        for position, row_id in zip(positions, explained_ids):
            order = np.argsort(-weights[position], kind="stable")[:top]
            records = []
            for j in order:
                record = {"training row": int(ids[position, j]), "weight": float(weights[position, j]),
                          "label": labels[position, j].item()}
                if train_frame is not None and ids[position, j] in train_frame.index:
                    record.update(train_frame.loc[ids[position, j]].drop(labels=[target], errors="ignore").to_dict())
                records.append(record)
            per_row.append({"row": row_id, "neighbours": records})
        tables[layer] = per_row
    return tables


def label_agreement(arrays: dict, description: dict, own_labels: np.ndarray, train_labels: pd.Series,
                    task: str) -> dict[str, dict]:
    """How much of each row's retrieval weight fell on training rows with the row's own label.

    Classification: per class, the mean share of weight on same-label neighbours over the rows
    of that class, beside the class's share of the training rows (its base rate: the share a
    retrieval blind to the label would give). Regression: the correlation between each row's
    target and the weighted mean of its neighbours' targets.

    Args:
        own_labels: ``(rows,)`` the rows' labels, as class names (str) or values.
        train_labels: The training table's target column.
        task: ``binary``, ``multiclass`` or ``regression``.

    Returns:
        ``{layer: {"overall": float, "per_class": {class: {"share", "base_rate", "rows"}}}}``
        (classification) or ``{layer: {"correlation": float}}`` (regression).
    """
    result = {}
    for layer in retrieval_layers(description):
        weights = _mean_weights(arrays, layer)
        labels = arrays[f"{layer}__labels"]
        if task == "regression":
            read = (weights * labels.astype(np.float64)).sum(axis=1)
            own = np.asarray(own_labels, dtype=np.float64)
            correlation = float(np.corrcoef(read, own)[0, 1]) if len(own) > 1 and own.std() > 0 else float("nan")
            result[layer] = {"correlation": correlation}
            continue
        own = np.asarray([str(v) for v in own_labels])
        share = (weights * (labels.astype(str) == own[:, None])).sum(axis=1)
        base = train_labels.astype(str).value_counts(normalize=True)
        per_class = {name: {"share": float(share[own == name].mean()), "base_rate": float(base.get(name, 0.0)),
                            "rows": int((own == name).sum())} for name in sorted(set(own))}
        result[layer] = {"overall": float(share.mean()), "per_class": per_class}
    return result
