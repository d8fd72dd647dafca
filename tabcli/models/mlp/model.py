"""Builder of the ``mlp`` baseline family."""

from __future__ import annotations

import keras
import numpy as np

from tabcli.layers import CategoricalEmbedding
from tabcli.models.inputs import make_inputs
from tabcli.models.mlp.config import MLPConfig
from tabcli.models.spec import ModelSpec

__all__ = ["build"]


def build(config: MLPConfig, spec: ModelSpec, context: dict[str, np.ndarray] | None = None) -> keras.Model:
    """Numerical values ++ flattened categorical embeddings (one table per column) -> [Dense-ReLU-Dropout] x n -> output.

    ``context`` is ignored (an MLP sees one row at a time).

    Returns:
        Uncompiled ``keras.Model`` with output ``(batch, num_outputs)``.
    """
    inputs = make_inputs(spec)
    parts = []
    if "numerical" in inputs:
        parts.append(inputs["numerical"])
    if "categorical" in inputs:
        embedded = CategoricalEmbedding(spec.cardinalities, config.embedding_dim, name="categorical_embedding")(
            inputs["categorical"]
        )
        parts.append(keras.layers.Flatten(name="flatten_embeddings")(embedded))
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(axis=-1, name="features")(parts)
    for i, units in enumerate(config.hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        x = keras.layers.Dropout(config.dropout_rate, name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(
        spec.num_outputs, activation=spec.output_activation, name="prediction", dtype="float32"
    )(x)
    return keras.Model(inputs, outputs, name="mlp_model")
