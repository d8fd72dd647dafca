"""One ranking of the columns that drive a model's predictions, faithful to the paths the model uses.

A column's importance for a row is how far the model's outputs move when that column is set to
its training median / mode (occlusion, Zeiler & Fergus 2014;
:func:`~tabcli.explain.occlusion.output_change`: absolute change of a binary probability or a
regression value in target standard deviations, total variation distance of class
probabilities). Two ways to measure it, chosen by the model's structure:

* **Retrieval models** (``tabular_attention`` with ``inter_sample: retrieval``, the default):
  the prediction is ``head(h + r)``, ``h`` the inter-feature path (feature tokens through
  TabularAttention, pooled) and ``r`` what the row reads from its retrieved training rows,
  which does not depend on ``h`` (the retrieval keys come from the preprocessed columns). A
  column's effect is measured on each path with the other held fixed, and the two are added:

  - inter-feature path: ``h`` recomputed with the column occluded (no retrieval, cheap);
  - retrieval path: the retrieval recomputed with the column occluded in the row's key (new
    neighbours, new read). That needs a ranking of every stored training row, so it is done
    for each row's :data:`MEASURED_RETRIEVAL_COLUMNS` columns with the largest retrieval
    attribution (:func:`~tabcli.explain.retrieval_attribution.neighbour_gap`: each column's
    Shapley share of how much closer the neighbours are than a random training row); the other
    columns' effects are that attribution times the row's measured effect per unit of it.

  Each path's share of the summed effects says how much of what the columns do goes through it.
* **Every other Keras model**: occlusion through the whole model, one pass per column.

The attention maps are not part of this ranking: they show what a layer attended to, which is
not by itself what moved the prediction (Jain & Wallace 2019).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from tabcli.explain.occlusion import (
    input_positions,
    occluded_inputs,
    occluded_per_row,
    output_change,
    reference_frame,
)

__all__ = ["MEASURED_RETRIEVAL_COLUMNS", "ModelRanking", "model_ranking", "top_columns"]

#: Columns whose retrieval-path effect is measured by ranking the stored rows again.
MEASURED_RETRIEVAL_COLUMNS = 4

#: Per retrieval layer / model, what does not change between explanations of the same model.
_CANDIDATE_TERMS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_SUBMODELS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@dataclass
class ModelRanking:
    """Column importance of a model on some rows.

    Attributes:
        columns: The table's feature columns.
        per_row: ``(rows, columns)`` each row's shares (non-negative, summing to 1 where the
            row's outputs move at all).
        method: ``"retrieval paths"`` or ``"occlusion"``.
        paths: Retrieval models: path name -> share of the output change it accounts for
            (``{"retrieval": ..., "inter-feature": ...}``); empty otherwise.
        path_rankings: Retrieval models: path name -> ``(rows, columns)`` shares within the path.
        row_weights: ``(rows,)`` each row's summed effects (how far its outputs move at all).
        neighbour_columns: Retrieval models: ``(rows, columns)`` each column's share of how much
            closer the row's neighbours are than a random training row: the columns that made
            its neighbours its neighbours.
    """

    columns: list[str]
    per_row: np.ndarray
    method: str
    paths: dict = field(default_factory=dict)
    path_rankings: dict = field(default_factory=dict)
    row_weights: np.ndarray | None = None
    neighbour_columns: np.ndarray | None = None

    def global_importance(self) -> dict[str, float]:
        """Column -> share over all rows (rows weighted by how far their outputs move)."""
        return self._over_rows(self.per_row)

    def path_importance(self, path: str) -> dict[str, float]:
        """Column -> share within one path (retrieval models), rows weighted as in :meth:`global_importance`."""
        return self._over_rows(self.path_rankings[path])

    def _over_rows(self, shares: np.ndarray) -> dict[str, float]:
        weights = np.ones(len(shares)) if self.row_weights is None else self.row_weights
        total = weights.sum()
        values = (weights[:, None] * shares).sum(axis=0) / total if total > 0 else shares.mean(axis=0)
        return dict(zip(self.columns, values.tolist()))


def top_columns(shares: np.ndarray, columns: list[str], top: int, minimum: float = 0.0) -> list[tuple[str, float]]:
    """The ``top`` largest ``(column, share)`` of one row's ``(columns,)`` shares, largest first,
    leaving out shares not above ``minimum``."""
    order = np.argsort(-shares, kind="stable")[:top]
    return [(columns[i], float(shares[i])) for i in order if shares[i] > minimum]


def _shares(values: np.ndarray) -> np.ndarray:
    """Rows of non-negative shares summing to 1 (negative entries count as 0; all-zero rows stay 0)."""
    values = np.clip(values, 0.0, None)
    total = values.sum(axis=1, keepdims=True)
    return np.divide(values, total, out=np.zeros_like(values), where=total > 0)


def _effects(outputs: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """Output change per row and copy: ``outputs`` ``(rows, outputs)``, ``moved`` ``(copies * rows,
    outputs)`` (copies in order, as :func:`~tabcli.explain.occlusion.occluded_per_row` makes them)
    -> ``(rows, copies)``."""
    rows = len(outputs)
    copies = len(moved) // rows
    return output_change(np.tile(outputs, (copies, 1)), moved).reshape(copies, rows).T


def _to_columns(values: np.ndarray, positions: dict, columns: list[str], num_numerical: int) -> np.ndarray:
    """``(rows, inputs)`` per model input (numerical first) -> ``(rows, columns)`` summed per table column."""
    result = np.zeros((len(values), len(columns)))
    for c, column in enumerate(columns):
        where = positions.get(column, {})
        indices = list(where.get("numerical", [])) + [num_numerical + i for i in where.get("categorical", [])]
        if indices:
            result[:, c] = values[:, indices].sum(axis=1)
    return result


def _retrieval_structure(model):
    """``(retrieval layer, row_representation layer)`` when the model is ``head(h + r)`` (the
    ``tabular_attention`` family with retrieval), else None."""
    from tabcli.layers import RetrievalAttention

    names = {layer.name for layer in model.layers}
    if not {"retrieval", "row_representation", "head_norm", "prediction"} <= names:
        return None
    layer = model.get_layer("retrieval")
    return (layer, model.get_layer("row_representation")) if isinstance(layer, RetrievalAttention) else None


def _head(model, width: int):
    """The model's prediction head as a model of its own: ``(rows, width) -> outputs``."""
    import keras

    x = keras.Input((width,), name="representation")
    y = x
    for name in ("head_norm", "head_dense", "head_dropout", "prediction"):
        y = model.get_layer(name)(y)
    return keras.Model({"representation": x}, y)


def _retrieval_submodels(model, layer, representation) -> tuple:
    """``(parts, head, feature path, retrieval path)`` models of a retrieval model, built once per
    model: ``parts`` gives ``[h, h + r, retrieval weights, retrieved ids]``."""
    import keras

    if model in _SUBMODELS:
        return _SUBMODELS[model]
    retrieval_output, *flat_scores = layer.output
    scores = dict(zip(layer.attention_score_names(), flat_scores))
    parts = keras.Model(model.inputs, [representation.output, retrieval_output, scores["weights"], scores["ids"]])
    width = representation.output.shape[-1]
    tensors = {tensor.name: tensor for tensor in keras.tree.flatten(model.inputs)}
    features = {name: tensors[name] for name in ("numerical", "categorical") if name in tensors}
    built = (parts, _head(model, width), keras.Model(features, representation.output), _retrieval_model(layer, width))
    _SUBMODELS[model] = built
    return built


def _retrieval_model(layer, width: int):
    """``layer`` on a given representation: ``(representation, numerical, categorical) -> h + r``,
    every row retrieving from all candidates (``candidate_index`` -1)."""
    import keras

    h = keras.Input((width,), name="representation")
    inputs = {"representation": h}
    if layer.num_numerical:
        inputs["numerical"] = keras.Input((layer.num_numerical,), name="numerical")
    if layer.cardinalities:
        inputs["categorical"] = keras.Input((len(layer.cardinalities),), name="categorical", dtype="int32")
    output = layer(h, numerical=inputs.get("numerical"), categorical=inputs.get("categorical"))
    return keras.Model(inputs, output)


def _retrieval_ranking(run, inputs: dict, reference: dict, positions: dict, columns: list[str],
                       structure, batch_size: int) -> ModelRanking:
    from keras import ops

    from tabcli.explain.retrieval_attribution import candidate_terms, neighbour_gap
    from tabcli.models.candidates import with_candidate_index
    from tabcli.training.pipeline import predict_in_batches

    model = run.model
    layer, representation = structure
    features = {k: v for k, v in inputs.items() if k in ("numerical", "categorical")}
    parts, head, feature_model, retrieval_model = _retrieval_submodels(model, layer, representation)
    h, out, weights, ids = predict_in_batches(parts, with_candidate_index(model, features), batch_size)
    read = out - h
    rows, count = len(h), len(columns)

    def predict_head(representations):
        return predict_in_batches(head, {"representation": representations}, batch_size)

    outputs = predict_head(out)
    # Inter-feature path: h with one column at a time at its reference value, the read held fixed.
    moved_h = predict_in_batches(feature_model, occluded_inputs(features, reference, positions, columns), batch_size)
    feature_effects = _effects(outputs, predict_head(moved_h + np.tile(read, (count, 1))))

    # Retrieval path: which columns make the neighbours closer than a random training row ...
    terms = _CANDIDATE_TERMS.get(layer)
    if terms is None:
        terms = _CANDIDATE_TERMS[layer] = candidate_terms(layer)
    row_terms = np.concatenate([ops.convert_to_numpy(layer.key_terms(
        features["numerical"][s:s + batch_size] if layer.num_numerical else None,
        features["categorical"][s:s + batch_size] if layer.cardinalities else None))
        for s in range(0, rows, batch_size)], axis=0)
    candidate_ids = ops.convert_to_numpy(layer.candidate_ids)
    lookup = np.full(int(candidate_ids.max()) + 1, -1, dtype=np.int64)
    lookup[candidate_ids] = np.arange(len(candidate_ids))
    gap = np.clip(_to_columns(neighbour_gap(row_terms, terms, lookup[ids], weights), positions, columns,
                              layer.num_numerical), 0.0, None)
    # ... and how far the output moves when those columns leave the row's key (h held fixed): for
    # each row its own top columns, so a row's explanation never depends on the rows beside it.
    slots = min(MEASURED_RETRIEVAL_COLUMNS, count)
    measured = np.argsort(-gap, axis=1, kind="stable")[:, :slots]  # (rows, slots) column indices
    occluded = occluded_per_row(features, reference, positions, columns, measured)
    moved_out = predict_in_batches(retrieval_model, {"representation": np.tile(h, (slots, 1)), **occluded}, batch_size)
    retrieval_effects = np.zeros((rows, count))
    np.put_along_axis(retrieval_effects, measured, _effects(outputs, predict_head(moved_out)), axis=1)
    if slots < count:
        attributed = np.take_along_axis(gap, measured, axis=1).sum(axis=1)
        per_unit = np.divide(retrieval_effects.sum(axis=1), attributed, out=np.zeros(rows), where=attributed > 0)
        rest = np.ones((rows, count), dtype=bool)
        np.put_along_axis(rest, measured, False, axis=1)
        retrieval_effects = np.where(rest, gap * per_unit[:, None], retrieval_effects)

    total = retrieval_effects + feature_effects
    through_retrieval = float(retrieval_effects.sum() / total.sum()) if total.sum() > 0 else 0.5
    return ModelRanking(
        columns=columns, per_row=_shares(total), method="retrieval paths",
        paths={"retrieval": through_retrieval, "inter-feature": 1.0 - through_retrieval},
        path_rankings={"retrieval": _shares(retrieval_effects), "inter-feature": _shares(feature_effects)},
        row_weights=total.sum(axis=1),
        neighbour_columns=_shares(gap),
    )


def _occlusion_ranking(run, inputs: dict, reference: dict, positions: dict, columns: list[str],
                       batch_size: int) -> ModelRanking:
    from tabcli.training.trainer import predict_model

    model = run.model
    outputs = predict_model(model, inputs, batch_size)
    effects = _effects(outputs, predict_model(model, occluded_inputs(inputs, reference, positions, columns), batch_size))
    return ModelRanking(columns=columns, per_row=_shares(effects), method="occlusion", row_weights=effects.sum(axis=1))


def model_ranking(run, inputs: dict[str, np.ndarray]) -> ModelRanking | None:
    """The columns that drive ``run``'s predictions on some rows (see the module docstring).

    Args:
        run: A :class:`~tabcli.runs.run.LoadedRun`.
        inputs: The rows' model inputs (``run.inputs(frame)``), ``rows >= 1``.

    Returns:
        :class:`ModelRanking`, or None for a model that is not a Keras model (``gbdt``).

    Raises:
        tabcli.errors.DataError: If the reference row (training medians / modes) of an older
            run cannot be recomputed because its training file is gone.
    """
    if not run.backend.has_attention:
        return None
    columns = list(run.schema.features)
    reference = run.inputs(reference_frame(run), what="the reference row")
    positions = input_positions(run.preprocessor)
    batch_size = run.config.training.eval_batch_size
    structure = _retrieval_structure(run.model)
    if structure is not None:
        return _retrieval_ranking(run, inputs, reference, positions, columns, structure, batch_size)
    return _occlusion_ranking(run, inputs, reference, positions, columns, batch_size)
