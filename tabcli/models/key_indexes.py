"""The approximate-search indexes of a retrieval model: built in training, stored in the run, measured.

A model trained with ``retrieval.search: index`` searches, in every call with
``training=False``, a :class:`~tabcli.layers.key_index.KeyIndex` per
:class:`~tabcli.layers.RetrievalAttention` layer. The keys move while the model trains, so the
indexes are rebuilt before each validation (:class:`RefreshKeyIndexes`) and after training, then
written to ``<run>/retrieval_index/`` and attached again when the run is loaded.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import ops

from tabcli.layers.key_index import KeyIndex, recall_at_k
from tabcli.models.candidates import retrieval_layers

__all__ = ["INDEX_FOLDER", "RefreshKeyIndexes", "build_indexes", "load_indexes", "measure_recall", "save_indexes"]

#: Folder of a run directory holding one index file (``<layer>.faiss`` + ``.json``) per layer.
INDEX_FOLDER = "retrieval_index"


def build_indexes(model: keras.Model, seed: int = 0) -> dict[str, KeyIndex]:
    """Build and attach an index of the current candidate keys for each retrieval layer of
    ``model``; returns them by layer name."""
    return {layer.name: layer.build_index(seed=seed) for layer in retrieval_layers(model)}


class RefreshKeyIndexes(keras.callbacks.Callback):
    """Rebuilds the model's indexes before each validation pass, so that validation searches
    the keys of the weights it evaluates (a stale index is refused by the layer).

    Args:
        seed: Seed of the index builds.
    """

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = int(seed)

    def on_test_begin(self, logs=None):
        build_indexes(self.model, self.seed)


def save_indexes(model: keras.Model, folder: Path) -> None:
    """Write each attached index to ``folder/<layer>.faiss`` (+ ``.json``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for layer in retrieval_layers(model):
        if layer.key_index is not None:
            layer.key_index.save(folder / f"{layer.name}.faiss")


def load_indexes(model: keras.Model, folder: Path, seed: int = 0) -> bool:
    """Attach the indexes saved in ``folder`` to ``model``'s retrieval layers; an index that is
    missing, unreadable or built for other weights is built again (not written). Returns whether
    the folder exists (whether the run searches through indexes)."""
    if not folder.is_dir():
        return False
    for layer in retrieval_layers(model):
        path = folder / f"{layer.name}.faiss"
        try:
            index = KeyIndex.load(path)
        except (OSError, ValueError, KeyError, RuntimeError):
            index = None
        if index is not None and index.size == layer.num_candidates and \
                index.matches(ops.convert_to_numpy(layer.key_fingerprint())):
            layer.attach_index(index)
        else:
            layer.build_index(seed=seed)
    return True


def measure_recall(model: keras.Model, inputs: dict, rows: int = 1000, seed: int = 0) -> dict[str, dict]:
    """Recall@k of each attached index against exhaustive search, on up to ``rows`` rows of
    ``inputs`` (model inputs by name; a seeded sample when there are more): the mean share of a
    row's exact ``k`` nearest candidates that the index returns.

    Returns:
        ``{layer name: {**index settings, "recall_at_k", "k", "rows"}}`` for layers with an index.
    """
    count = len(next(iter(inputs.values())))
    chosen = np.sort(np.random.default_rng(seed).choice(count, size=min(rows, count), replace=False))
    numerical, categorical = (inputs.get(name) for name in ("numerical", "categorical"))
    report = {}
    for layer in retrieval_layers(model):
        index = layer.key_index
        if index is None:
            continue
        queries = layer.row_keys(None if numerical is None else numerical[chosen],
                                 None if categorical is None else categorical[chosen])
        k = min(layer.k, layer.num_candidates)
        recall = recall_at_k(index.search(queries, k), layer.exact_candidate_neighbours(queries, k))
        report[layer.name] = {**index.describe(), "recall_at_k": round(recall, 4), "k": k, "rows": len(chosen)}
    return report
