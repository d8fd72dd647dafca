"""Builder of the ``tabular_attention`` family."""

from __future__ import annotations

import keras
import numpy as np

from tabcli.layers import CategoricalEmbedding, ContextRows, NumericalEmbedding, TabularAttention
from tabcli.models.inputs import make_inputs, prediction_head
from tabcli.models.spec import ModelSpec
from tabcli.models.tabular_attention.config import TabularAttentionConfig

__all__ = ["build"]


def build(config: TabularAttentionConfig, spec: ModelSpec, context: dict[str, np.ndarray] | None = None) -> keras.Model:
    """Feature tokens -> TabularAttention (a row + stored context rows) -> head.

    Each row is one sample on TabularAttention's samples axis (``num_samples = 1``); the
    ``context`` rows, stored in the model by :class:`~tabcli.layers.ContextRows` layers, are
    the extra samples it attends to. Both go through the same feature tokenizer.

    Args:
        config: Family settings.
        spec: Input/output shapes.
        context: ``{"numerical": (M, n_num), "categorical": (M, n_cat)}`` preprocessed
            training rows, or None / ``config.context_rows == 0`` for no context.

    Returns:
        Uncompiled ``keras.Model``; its TabularAttention layer is named ``tabular_attention``
        and called with ``return_attention_scores=True``, so the scores are graph tensors
        (see :func:`tabcli.runs.attention.attention_model`).
    """
    d = config.d_model
    inputs = make_inputs(spec)
    numerical_embedding = categorical_embedding = None
    tokens = []
    if "numerical" in inputs:
        numerical_embedding = NumericalEmbedding(d, name="numerical_embedding")
        tokens.append(numerical_embedding(inputs["numerical"]))
    if "categorical" in inputs:
        categorical_embedding = CategoricalEmbedding(spec.cardinalities, d, name="categorical_embedding")
        tokens.append(categorical_embedding(inputs["categorical"]))
    x = tokens[0] if len(tokens) == 1 else keras.layers.Concatenate(axis=-2, name="feature_tokens")(tokens)
    x = keras.layers.Reshape((1, len(spec.feature_names), d), name="one_sample_per_row")(x)

    context_tokens = None
    num_context = 0 if context is None else min(config.context_rows, len(next(iter(context.values()))))
    if num_context > 0:
        anchor = next(iter(inputs.values()))
        parts = []
        if numerical_embedding is not None:
            rows = ContextRows(num_context, len(spec.numerical_names), name="context_numerical")(anchor)
            parts.append(numerical_embedding(rows))
        if categorical_embedding is not None:
            rows = ContextRows(num_context, len(spec.categorical_names), name="context_categorical")(anchor)
            parts.append(categorical_embedding(rows))
        context_tokens = parts[0] if len(parts) == 1 else keras.layers.Concatenate(axis=-2, name="context_tokens")(parts)

    attention = TabularAttention(
        num_heads=config.num_heads,
        d_model=d,
        dropout_rate=config.dropout_rate,
        ffn_multiplier=config.ffn_multiplier,
        num_feature_blocks=config.num_feature_blocks,
        pooling=config.pooling,
        name="tabular_attention",
    )
    h, _scores = attention(x, context=context_tokens, return_attention_scores=True)
    h = keras.layers.Reshape((d,), name="row_representation")(h)
    outputs = prediction_head(h, spec, config.head_units, config.dropout_rate)
    model = keras.Model(inputs, outputs, name="tabular_attention_model")
    if num_context > 0:
        if "numerical" in inputs:
            model.get_layer("context_numerical").set_rows(context["numerical"][:num_context])
        if "categorical" in inputs:
            model.get_layer("context_categorical").set_rows(context["categorical"][:num_context])
    return model
