"""Builder of the ``tabular_attention`` family."""

from __future__ import annotations

import keras
import numpy as np

from tabcli.layers import ContextRows, TabularAttention
from tabcli.models.inputs import assign_context, make_inputs, prediction_head
from tabcli.models.spec import ModelSpec
from tabcli.models.tabular_attention.config import TabularAttentionConfig
from tabcli.models.tokens import FeatureTokenizer

__all__ = ["build", "representation", "attention_manifest"]


def representation(config: TabularAttentionConfig, spec: ModelSpec, inputs: dict, context=None, prefix: str = ""):
    """Feature tokens -> TabularAttention over (the row, the stored context rows) -> ``(batch, d_model)``.

    Each row is one sample on TabularAttention's samples axis; the ``context`` rows, stored in
    the model by :class:`~tabcli.layers.ContextRows` layers (assigned in :func:`build`), are the
    extra samples it attends to. Both go through the same tokenizer. In training, each step
    uses a random ``config.context_sample_for(spec.batch_size)`` of the context rows.

    Returns:
        ``(representation, setters)``: the ``(batch, d_model)`` tensor and the context layers'
        names with the rows to assign once the model exists.
    """
    d = config.d_model
    tokenizer = FeatureTokenizer(config, spec, d, prefix)
    x = tokenizer.tokens(inputs.get("numerical"), inputs.get("categorical"))
    x = keras.layers.Reshape((1, len(spec.feature_names), d), name=f"{prefix}one_sample_per_row")(x)
    context_tokens, setters = None, {}
    num_context = 0 if not context else min(config.context_rows, len(next(iter(context.values()))))
    if num_context > 0:
        anchor = next(iter(inputs.values()))
        rows = {}
        for kind, names in (("numerical", spec.numerical_names), ("categorical", spec.categorical_names)):
            if names:
                layer_name = f"{prefix}context_{kind}"
                rows[kind] = ContextRows(num_context, len(names), name=layer_name)(anchor)
                setters[layer_name] = context[kind][:num_context]
        context_tokens = tokenizer.tokens(rows.get("numerical"), rows.get("categorical"), name="context_tokens")
    attention = TabularAttention(
        num_heads=config.num_heads,
        d_model=d,
        dropout_rate=config.dropout_rate,
        ffn_multiplier=config.ffn_multiplier,
        num_feature_blocks=config.num_feature_blocks,
        pooling=config.pooling,
        context_sample=config.context_sample_for(spec.batch_size) if num_context else None,
        name=f"{prefix}tabular_attention",
    )
    h, _scores = attention(x, context=context_tokens, return_attention_scores=True)
    return keras.layers.Reshape((d,), name=f"{prefix}row_representation")(h), setters


def build(config: TabularAttentionConfig, spec: ModelSpec, context: dict[str, np.ndarray] | None = None) -> keras.Model:
    """The family's model: :func:`representation` -> prediction head.

    Args:
        config: Family settings.
        spec: Input/output shapes.
        context: ``{"numerical": (M, n_num), "categorical": (M, n_cat)}`` preprocessed training
            rows, or None / ``config.context_rows == 0`` for no context.

    Returns:
        Uncompiled ``keras.Model``; the TabularAttention layer is called with
        ``return_attention_scores=True``, so its scores are graph tensors.
    """
    inputs = make_inputs(spec)
    h, setters = representation(config, spec, inputs, context)
    model = keras.Model(inputs, prediction_head(h, spec, config.head_units, config.dropout_rate), name="tabular_attention_model")
    assign_context(model, setters)
    return model


def attention_manifest(config: TabularAttentionConfig, spec: ModelSpec, context_ids: list, prefix: str = "") -> dict:
    """Axes and labels of every attention score of the family's model (see ``tabcli.runs.attention``)."""
    tokens = (["[CLS]"] if config.pooling == "cls" else []) + list(spec.feature_names)
    layer = f"{prefix}tabular_attention"
    num_context = min(config.context_rows, len(context_ids))
    scores = {
        f"inter_feature_{i}": {
            "kind": f"inter-feature attention, block {i}",
            "axes": ["row", "sample", "head", "query_feature", "key_feature"],
            "squeeze": ["sample"],
            "labels": {"query_feature": tokens, "key_feature": tokens},
        }
        for i in range(config.num_feature_blocks)
    }
    scores["inter_sample"] = {
        "kind": "inter-sample attention",
        "axes": ["row", "head", "query_sample", "key_sample"],
        "squeeze": ["query_sample"],
        "labels": {"key_sample": ["self", *[f"context:{i}" for i in context_ids[:num_context]]]},
        "note": "key 0 is the row itself; the others are context rows stored in the model, named by "
        "their index in the training table",
    }
    return {layer: scores}
