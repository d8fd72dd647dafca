"""Builder of the ``multi_resolution`` family."""

from __future__ import annotations

import keras
import numpy as np

from tabcli.layers import MultiResolutionTabularAttention
from tabcli.models.inputs import make_inputs, prediction_head
from tabcli.models.multi_resolution.config import MultiResolutionConfig
from tabcli.models.spec import ModelSpec
from tabcli.models.tokens import FeatureTokenizer

__all__ = ["build", "representation", "attention_manifest"]


def representation(config: MultiResolutionConfig, spec: ModelSpec, inputs: dict, context=None, prefix: str = "", candidates=None):
    """Numerical and categorical tokens -> ``num_blocks`` MultiResolutionTabularAttention blocks
    (token outputs between blocks, mean-pooled by the last) -> concatenated pooled streams ->
    Dense(d_model, ReLU) -> ``(batch, d_model)``.

    Returns:
        ``(representation, {})``.

    Raises:
        tabcli.errors.ConfigError: If the table lacks numerical or categorical columns.
    """
    config.check_data(spec)
    d = config.d_model
    tokenizer = FeatureTokenizer(config, spec, d, prefix)
    n, c = tokenizer.streams(inputs["numerical"], inputs["categorical"])
    n = keras.layers.Reshape((1, len(spec.numerical_names), d), name=f"{prefix}numerical_sample")(n)
    c = keras.layers.Reshape((1, len(spec.categorical_names), d), name=f"{prefix}categorical_sample")(c)
    for i in range(config.num_blocks):
        last = i == config.num_blocks - 1
        block = MultiResolutionTabularAttention(
            config.num_heads, d, config.dropout_rate, config.ffn_multiplier,
            pooling="mean" if last else "none", name=f"{prefix}multi_resolution_{i}",
        )
        (n, c), _scores = block([n, c], return_attention_scores=True)
    fused = keras.layers.Concatenate(name=f"{prefix}fused_streams")(
        [keras.layers.Reshape((d,), name=f"{prefix}numerical_pooled")(n), keras.layers.Reshape((d,), name=f"{prefix}categorical_pooled")(c)]
    )
    return keras.layers.Dense(d, activation="relu", name=f"{prefix}fusion")(fused), {}


def build(config: MultiResolutionConfig, spec: ModelSpec, context: dict[str, np.ndarray] | None = None, candidates=None) -> keras.Model:
    """The family's model: :func:`representation` -> prediction head (``context`` is unused)."""
    inputs = make_inputs(spec)
    h, _ = representation(config, spec, inputs)
    return keras.Model(inputs, prediction_head(h, spec, config.head_units, config.dropout_rate), name="multi_resolution_model")


def attention_manifest(config: MultiResolutionConfig, spec: ModelSpec, context_ids: list, prefix: str = "") -> dict:
    """Axes and labels of every attention score of the family's model."""
    labels = {"numerical": list(spec.numerical_names), "categorical": list(spec.categorical_names)}
    manifest = {}
    for i in range(config.num_blocks):
        scores = {}
        for query, key in (("numerical", "numerical"), ("categorical", "categorical"), ("numerical", "categorical"), ("categorical", "numerical")):
            name = f"{query}_self" if query == key else f"{query}_to_{key}"
            scores[name] = {
                "kind": f"{query} tokens attending to {key} tokens, block {i}",
                "axes": ["row", "sample", "head", f"query_{query}", f"key_{key}"],
                "squeeze": ["sample"],
                "labels": {f"query_{query}": labels[query], f"key_{key}": labels[key]},
            }
        manifest[f"{prefix}multi_resolution_{i}"] = scores
    return manifest
