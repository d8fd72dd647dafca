"""Retrieval candidates of a model: which training rows, their labels, and their cached keys.

A model with :class:`~tabcli.layers.RetrievalAttention` layers stores its candidates' labels,
ids and keys as weights. This module chooses the candidates, gives training batches the input
that lets a row skip itself (``candidate_index``), and recomputes the cached keys from the
current weights: once per epoch (before validation, so the validation loss that early stopping
watches is computed with fresh keys, and the next epoch trains with them) and after training,
when early stopping has restored the best weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from tabcli.training.pipeline import batches

__all__ = [
    "CANDIDATE_INDEX",
    "Candidates",
    "choose_candidates",
    "retrieval_layers",
    "with_candidate_index",
    "refresh_candidate_keys",
    "CandidateKeyRefresh",
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


def _representation_model(model: keras.Model, layers: list) -> keras.Model:
    """A model from the feature inputs to the row representation each retrieval layer reads."""
    inputs = {t.name: t for t in keras.tree.flatten(model.inputs) if t.name != CANDIDATE_INDEX}
    outputs = [keras.tree.flatten(layer.input)[0] for layer in layers]
    return keras.Model(inputs, outputs)


def refresh_candidate_keys(model: keras.Model, candidate_inputs: dict, batch_size: int = 1024,
                           representation_model: keras.Model | None = None) -> None:
    """Recompute every retrieval layer's cached candidate keys with the model's current weights.

    Cost: one forward pass of the candidates through the layers below retrieval (no gradient).
    """
    layers = retrieval_layers(model)
    if not layers:
        return
    representation_model = representation_model or _representation_model(model, layers)
    outputs = representation_model.predict(batches(candidate_inputs, None, batch_size), verbose=0)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    for layer, representation in zip(layers, outputs):
        keys = np.concatenate(
            [np.asarray(layer.keys(representation[i : i + batch_size])) for i in range(0, len(representation), batch_size)]
        )
        layer.set_candidate_keys(keys)


class CandidateKeyRefresh(keras.callbacks.Callback):
    """Refreshes the cached candidate keys at the start of training, before every validation
    pass (so validation and the next epoch use keys of the weights just trained) and at the end
    of training. Place it after ``EarlyStopping`` so the last refresh sees the restored weights.

    Args:
        candidate_inputs: The candidates' preprocessed inputs.
        batch_size: Rows per forward batch.
    """

    def __init__(self, candidate_inputs: dict, batch_size: int = 1024):
        super().__init__()
        self.candidate_inputs = candidate_inputs
        self.batch_size = batch_size
        self._representation_model = None

    def _refresh(self):
        if self._representation_model is None:
            layers = retrieval_layers(self.model)
            if not layers:
                return
            self._representation_model = _representation_model(self.model, layers)
        refresh_candidate_keys(self.model, self.candidate_inputs, self.batch_size, self._representation_model)

    def on_train_begin(self, logs=None):
        self._refresh()

    def on_test_begin(self, logs=None):
        self._refresh()

    def on_train_end(self, logs=None):
        self._refresh()
