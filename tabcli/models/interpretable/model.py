"""Builder of the ``interpretable`` family."""

from __future__ import annotations

import keras
import numpy as np

from tabcli.layers import AttentionPooling, InterpretableMultiHeadAttention
from tabcli.models.inputs import make_inputs, prediction_head
from tabcli.models.interpretable.config import InterpretableConfig
from tabcli.models.spec import ModelSpec
from tabcli.models.tokens import FeatureTokenizer

__all__ = ["build", "representation", "attention_manifest"]


def representation(config: InterpretableConfig, spec: ModelSpec, inputs: dict, context=None, prefix: str = "", candidates=None):
    """Feature tokens -> ``num_blocks`` x [InterpretableMultiHeadAttention + residual + LayerNorm,
    feed-forward + residual + LayerNorm] -> attention pooling with a learned query
    (``keras.layers.Attention``) -> ``(batch, d_model)``.

    The pooling scores are one distribution over the features per row: how much each feature's
    token contributed to the representation the head sees.

    Returns:
        ``(representation, {})``.
    """
    d = config.d_model
    x = FeatureTokenizer(config, spec, d, prefix).tokens(inputs.get("numerical"), inputs.get("categorical"))
    hidden = max(1, int(round(config.ffn_multiplier * d)))
    for i in range(config.num_blocks):
        attended, _scores = InterpretableMultiHeadAttention(
            d, config.num_heads, config.dropout_rate, name=f"{prefix}interpretable_attention_{i}"
        )(x, x, x, return_attention_scores=True)
        x = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{prefix}attention_norm_{i}")(
            keras.layers.Add(name=f"{prefix}attention_residual_{i}")([x, attended])
        )
        ffn = keras.layers.Dense(hidden, activation="gelu", name=f"{prefix}ffn_in_{i}")(x)
        ffn = keras.layers.Dropout(config.dropout_rate, name=f"{prefix}ffn_dropout_{i}")(ffn)
        ffn = keras.layers.Dense(d, name=f"{prefix}ffn_out_{i}")(ffn)
        x = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{prefix}ffn_norm_{i}")(
            keras.layers.Add(name=f"{prefix}ffn_residual_{i}")([x, ffn])
        )
    pooled, _weights = AttentionPooling(config.dropout_rate, name=f"{prefix}attention_pooling")(
        x, return_attention_scores=True
    )
    return pooled, {}


def build(config: InterpretableConfig, spec: ModelSpec, context: dict[str, np.ndarray] | None = None, candidates=None) -> keras.Model:
    """The family's model: :func:`representation` -> prediction head (``context`` is unused)."""
    inputs = make_inputs(spec)
    h, _ = representation(config, spec, inputs)
    return keras.Model(inputs, prediction_head(h, spec, config.head_units, config.dropout_rate), name="interpretable_model")


def attention_manifest(config: InterpretableConfig, spec: ModelSpec, context_ids: list, prefix: str = "") -> dict:
    """Axes and labels of every attention score of the family's model."""
    features = list(spec.feature_names)
    manifest = {
        f"{prefix}interpretable_attention_{i}": {
            "attention": {
                "kind": f"feature self-attention (shared values, TFT), block {i}",
                "axes": ["row", "head", "query_feature", "key_feature"],
                "labels": {"query_feature": features, "key_feature": features},
            }
        }
        for i in range(config.num_blocks)
    }
    manifest[f"{prefix}attention_pooling"] = {
        "pooling": {
            "kind": "attention pooling: a learned query over the feature tokens",
            "axes": ["row", "feature"],
            "labels": {"feature": features},
        }
    }
    return manifest
