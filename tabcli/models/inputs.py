"""Model inputs and the shared prediction head, used by every family's builder."""

from __future__ import annotations

import keras

from tabcli.models.spec import ModelSpec

__all__ = ["make_inputs", "prediction_head", "assign_context"]


def make_inputs(spec: ModelSpec) -> dict:
    """Keras inputs ``{"numerical": (batch, n_num) float32, "categorical": (batch, n_cat) int32}``,
    each present only when the table has such columns."""
    inputs = {}
    if spec.numerical_names:
        inputs["numerical"] = keras.Input((len(spec.numerical_names),), name="numerical", dtype="float32")
    if spec.categorical_names:
        inputs["categorical"] = keras.Input((len(spec.categorical_names),), name="categorical", dtype="int32")
    return inputs


def prediction_head(x, spec: ModelSpec, units: int, dropout_rate: float):
    """LayerNorm -> Dense(units, ReLU) -> Dropout -> Dense(num_outputs, activation).

    Args:
        x: Representation ``(batch, d)``.

    Returns:
        ``(batch, num_outputs)``: probabilities or a standardised value.
    """
    x = keras.layers.LayerNormalization(name="head_norm")(x)
    x = keras.layers.Dense(units, activation="relu", name="head_dense")(x)
    x = keras.layers.Dropout(dropout_rate, name="head_dropout")(x)
    return keras.layers.Dense(spec.num_outputs, activation=spec.output_activation, name="prediction", dtype="float32")(x)


def assign_context(model: keras.Model, setters: dict) -> None:
    """Store rows in a built model's layers: ``setters`` maps a layer name to a function of the
    layer that stores them (ContextRows' context rows, RetrievalAttention's candidates)."""
    for layer_name, setter in setters.items():
        setter(model.get_layer(layer_name))
