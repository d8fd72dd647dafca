"""What the attention layers looked at: heatmaps of every token-by-token score, and the stored
training rows each row attended to. These show where a layer's attention went, which is not by
itself what moved a prediction (:mod:`tabcli.explain.ranking` measures that)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["TOP_CONTEXT", "attention_heatmaps", "context_tables"]

#: Context rows listed per explained row for inter-sample attention.
TOP_CONTEXT = 5


def _pair_axes(axes: list[str]) -> tuple[str, str] | None:
    """The (query, key) axes of a token-by-token score array, if it is one."""
    queries = [a for a in axes if a.startswith("query_") and a != "query_sample"]
    keys = [a for a in axes if a.startswith("key_") and a != "key_sample"]
    return (queries[0], keys[0]) if queries and keys else None


def attention_heatmaps(arrays, description, folder: Path) -> dict[str, Path]:
    """Per-head and head-averaged heatmaps (mean over rows) of every token-by-token score array."""
    from tabcli.reports.plots import heatmap, heatmap_grid

    images = {}
    for key, info in description.items():
        pair = _pair_axes(info.get("axes", []))
        if key == "row_ids" or pair is None:
            continue
        query_axis, key_axis = pair
        axes = info["axes"]
        mean = arrays[key].mean(axis=axes.index("row"))  # (heads, Tq, Tk)
        rest = [a for a in axes if a != "row"]
        rows, cols = info["labels"][query_axis], info["labels"][key_axis]
        title = f"{info['layer']}: {info.get('kind', info['score'])}"
        if "head" in rest:
            per_head = np.moveaxis(mean, rest.index("head"), 0)
            images[f"{key}_heads"] = heatmap_grid(
                per_head, rows, cols, [f"head {h}" for h in range(per_head.shape[0])],
                folder / f"{key}_heads.png", suptitle=f"{title} (per head, mean over rows)",
            )
            mean = per_head.mean(axis=0)
        images[key] = heatmap(
            mean, rows, cols, f"{title} (mean over heads and rows)", folder / f"{key}.png",
            xlabel=key_axis.replace("_", " ") + " (attended to)", ylabel=query_axis.replace("_", " "),
        )
    return images


def context_tables(arrays, description, positions, train_frame: pd.DataFrame | None, explained_ids) -> dict[str, list]:
    """For each explained row: the context rows its inter-sample attention weighted most."""
    tables = {}
    for key, info in description.items():
        if info.get("axes", [None])[-1:] != ["key_sample"]:
            continue
        value = arrays[key][positions].mean(axis=info["axes"].index("head"))  # (rows, 1 + M)
        labels = info["labels"]["key_sample"]
        by_id = {} if train_frame is None else {str(i): i for i in train_frame.index}
        per_row = []
        for row_id, weights in zip(explained_ids, value):
            order = np.argsort(weights)[::-1][:TOP_CONTEXT]
            entries = []
            for index in order:
                label = labels[index]
                context_id = None if label == "self" else label.split(":", 1)[1]
                values = None
                if context_id in by_id:
                    values = train_frame.loc[by_id[context_id]].to_dict()
                entries.append({"key": label, "weight": float(weights[index]), "values": values})
            per_row.append({"row": row_id, "attended": entries, "self_weight": float(weights[0])})
        tables[key] = per_row
    return tables
