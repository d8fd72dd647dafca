"""Retrieval candidates of a model: which training rows, and the input that lets a row skip itself.

A model with :class:`~tabcli.layers.RetrievalAttention` layers stores its candidates' features,
labels and ids as weights (the layer computes their keys at every call). This module chooses the
candidates and gives training batches the input that lets a row skip itself
(``candidate_index``).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

__all__ = [
    "CANDIDATE_INDEX",
    "Candidates",
    "FreezeContexts",
    "choose_candidates",
    "retrieval_layers",
    "with_candidate_index",
]

#: Name of the int32 ``(batch,)`` model input that tells a training row its own candidate position.
CANDIDATE_INDEX = "candidate_index"


@dataclass
class Candidates:
    """The training rows a retrieval model may retrieve.

    Attributes:
        positions: ``(N,)`` positions of the candidates among the training split's rows.
        ids: ``(N,)`` int, their index in the training table (what explain shows).
        labels: ``(N,)`` float32 encoded targets (class index, or standardised value).
        inputs: Their preprocessed model inputs ``{"numerical": (N, n), "categorical": (N, n)}``.
        num_rows: Rows of the training split.
    """

    positions: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    inputs: dict
    num_rows: int

    def training_index(self) -> np.ndarray:
        """``(num_rows,)`` int32: each training row's position among the candidates, or -1."""
        index = np.full(self.num_rows, -1, dtype=np.int32)
        index[self.positions] = np.arange(len(self.positions), dtype=np.int32)
        return index


def choose_candidates(inputs: dict, targets: np.ndarray, ids, count: int | str, seed: int) -> Candidates:
    """All training rows (``count="all"``) or a seeded random sample of ``count`` of them.

    Args:
        inputs: Preprocessed training inputs, each ``(rows, ...)``.
        targets: ``(rows,)`` encoded training targets.
        ids: ``(rows,)`` index of each training row in its table (integers).
        count: ``"all"`` or a number of rows (capped at ``rows``).
        seed: Seed of the sample.
    """
    rows = len(targets)
    if count == "all" or int(count) >= rows:
        positions = np.arange(rows)
    else:
        positions = np.sort(np.random.default_rng(seed).choice(rows, size=int(count), replace=False))
    return Candidates(
        positions=positions,
        ids=np.asarray(ids)[positions].astype(np.int64),
        labels=np.asarray(targets, dtype=np.float32)[positions],
        inputs={k: v[positions] for k, v in inputs.items()},
        num_rows=rows,
    )


def retrieval_layers(model: keras.Model) -> list:
    """The model's RetrievalAttention layers (one per tabular_attention part with retrieval)."""
    from tabcli.layers import RetrievalAttention

    return [layer for layer in model.layers if isinstance(layer, RetrievalAttention)]


def with_candidate_index(model: keras.Model, inputs: dict, index: np.ndarray | None = None) -> dict:
    """``inputs`` plus the ``candidate_index`` input if ``model`` has one.

    Args:
        model: A tabcli model.
        inputs: Model inputs by name, each ``(rows, ...)``.
        index: ``(rows,)`` candidate position of each row (training rows), or None: ``-1`` for
            every row (validation, test and new rows, which retrieve from every candidate).
    """
    names = {tensor.name for tensor in keras.tree.flatten(model.inputs)}
    if CANDIDATE_INDEX not in names or CANDIDATE_INDEX in inputs:
        return inputs
    rows = len(next(iter(inputs.values())))
    index = np.full(rows, -1, dtype=np.int32) if index is None else np.asarray(index, dtype=np.int32)
    return {**inputs, CANDIDATE_INDEX: index}


class FreezeContexts(keras.callbacks.Callback):
    """Fixes the retrieved neighbours of every training row after ``after_epochs`` epochs.

    TabR's context freeze (Gorishniy et al., ICLR 2024; ``freeze_contexts_after_n_epochs`` in
    tabular-dl-tabr ``bin/tabr.py``, 4 in pytabkit's TabR-S "freeze" presets): at the start of
    epoch ``after_epochs + 1`` each :class:`~tabcli.layers.RetrievalAttention` ranks its
    candidates against each other once (:meth:`~tabcli.layers.RetrievalAttention.freeze_contexts`),
    and later training steps read each row's neighbours from that table. The freeze is undone at
    the end of training, so a model trained further ranks again.

    Use it only when every training row is a candidate (``candidates: all``; the config refuses
    ``freeze_after_epochs`` otherwise).

    Args:
        after_epochs: Epochs trained with ranking at every step (0: freeze before the first).
        through_index: Find the neighbours through an approximate index of the current keys
            (``retrieval.search: index``; ``N`` searches) instead of an exact ``N x N`` ranking.
        seed: Seed of the index build.
    """

    def __init__(self, after_epochs: int, through_index: bool = False, seed: int = 0):
        super().__init__()
        self.after_epochs = int(after_epochs)
        self.through_index = bool(through_index)
        self.seed = int(seed)
        self.frozen_at = None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.after_epochs:
            for layer in retrieval_layers(self.model):
                if self.through_index:
                    layer.build_index(seed=self.seed)
                layer.freeze_contexts()
            self.frozen_at = epoch

    def on_train_end(self, logs=None):
        for layer in retrieval_layers(self.model):
            layer.unfreeze_contexts()

