"""Builder of the ``mlp`` baseline family."""

from __future__ import annotations

import keras
import numpy as np

from tabcli.layers import CategoricalEmbedding
from tabcli.models.inputs import make_inputs
from tabcli.models.mlp.config import MLPConfig
from tabcli.models.spec import ModelSpec

__all__ = ["build", "representation", "attention_manifest"]


def representation(config: MLPConfig, spec: ModelSpec, inputs: dict, context=None, prefix: str = "", candidates=None):
    """Numerical values ++ flattened categorical embeddings (one table per column) ->
    [Dense-ReLU-Dropout] x len(hidden_units) -> ``(batch, hidden_units[-1])``.

    ``context`` is ignored (an MLP sees one row at a time).

    Returns:
        ``(representation, {})`` (no context rows to assign).
    """
    parts = []
    if "numerical" in inputs:
        parts.append(inputs["numerical"])
    if "categorical" in inputs:
        embedded = CategoricalEmbedding(spec.cardinalities, config.embedding_dim, name=f"{prefix}categorical_embedding")(
            inputs["categorical"]
        )
        parts.append(keras.layers.Flatten(name=f"{prefix}flatten_embeddings")(embedded))
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(axis=-1, name=f"{prefix}features")(parts)
    for i, units in enumerate(config.hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"{prefix}dense_{i}")(x)
        x = keras.layers.Dropout(config.dropout_rate, name=f"{prefix}dropout_{i}")(x)
    return x, {}


def build(config: MLPConfig, spec: ModelSpec, context: dict[str, np.ndarray] | None = None, candidates=None) -> keras.Model:
    """The baseline: :func:`representation` -> ``Dense(num_outputs)`` with the task's activation.

    Returns:
        Uncompiled ``keras.Model`` with output ``(batch, num_outputs)``.
    """
    inputs = make_inputs(spec)
    x, _ = representation(config, spec, inputs)
    outputs = keras.layers.Dense(
        spec.num_outputs, activation=spec.output_activation, name="prediction", dtype="float32"
    )(x)
    return keras.Model(inputs, outputs, name="mlp_model")


def attention_manifest(config: MLPConfig, spec: ModelSpec, context_ids: list, prefix: str = "") -> dict:
    """An MLP has no attention layer."""
    return {}
