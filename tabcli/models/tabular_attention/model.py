"""Builder of the ``tabular_attention`` family."""

from __future__ import annotations

import keras
import numpy as np

from tabcli.layers import ContextRows, RetrievalAttention, TabularAttention
from tabcli.models.inputs import assign_context, make_inputs, prediction_head
from tabcli.models.candidates import CANDIDATE_INDEX, Candidates
from tabcli.models.spec import ModelSpec
from tabcli.models.tabular_attention.config import TabularAttentionConfig
from tabcli.models.tokens import FeatureTokenizer

__all__ = ["build", "representation", "attention_manifest"]


def representation(config: TabularAttentionConfig, spec: ModelSpec, inputs: dict, context=None, prefix: str = "",
                   candidates: Candidates | None = None):
    """Feature tokens -> TabularAttention -> inter-sample step -> ``(batch, d_model)``.

    Each row is one sample on TabularAttention's samples axis. The inter-sample step is
    ``config.inter_sample``:

    * ``retrieval`` (the default): TabularAttention's inter-feature stage gives the row's representation, and
      :class:`~tabcli.layers.RetrievalAttention` adds what its ``k`` nearest ``candidates`` and
      their labels contribute (nearest by keys projected from the preprocessed features). Adds the ``candidate_index`` input to ``inputs`` (training rows
      name themselves so they never retrieve their own label).
    * ``context``: the ``context`` rows, stored by :class:`~tabcli.layers.ContextRows` layers,
      are extra samples TabularAttention's stage 2 attends to (a random
      ``config.context_sample_for(spec.batch_size)`` of them per training step).
    * ``none``: TabularAttention's stage 2 over the row alone.

    Returns:
        ``(representation, setters)``: the ``(batch, d_model)`` tensor and, per layer name, a
        function that stores that layer's rows or candidates once the model exists.

    Raises:
        ValueError: For ``retrieval`` without ``candidates``.
    """
    d = config.d_model
    tokenizer = FeatureTokenizer(config, spec, d, prefix)
    x = tokenizer.tokens(inputs.get("numerical"), inputs.get("categorical"))
    x = keras.layers.Reshape((1, len(spec.feature_names), d), name=f"{prefix}one_sample_per_row")(x)
    if config.inter_sample == "retrieval":
        return _retrieval(config, spec, inputs, x, prefix, candidates)
    context_tokens, setters = None, {}
    num_context = 0 if not context else min(config.stored_context_rows, len(next(iter(context.values()))))
    if num_context > 0:
        anchor = next(iter(inputs.values()))
        rows = {}
        for kind, names in (("numerical", spec.numerical_names), ("categorical", spec.categorical_names)):
            if names:
                layer_name = f"{prefix}context_{kind}"
                rows[kind] = ContextRows(num_context, len(names), name=layer_name)(anchor)
                setters[layer_name] = lambda layer, values=context[kind][:num_context]: layer.set_rows(values)
        context_tokens = tokenizer.tokens(rows.get("numerical"), rows.get("categorical"), name="context_tokens")
    attention = _attention_layer(
        config, prefix, context_sample=config.context_sample_for(spec.batch_size) if num_context else None
    )
    h, _scores = attention(x, context=context_tokens, return_attention_scores=True)
    return keras.layers.Reshape((d,), name=f"{prefix}row_representation")(h), setters


def _attention_layer(config: TabularAttentionConfig, prefix: str, **options) -> TabularAttention:
    return TabularAttention(
        num_heads=config.num_heads, d_model=config.d_model, dropout_rate=config.dropout_rate,
        ffn_multiplier=config.ffn_multiplier, num_feature_blocks=config.num_feature_blocks,
        pooling=config.pooling, name=f"{prefix}tabular_attention", **options,
    )


def _retrieval(config: TabularAttentionConfig, spec: ModelSpec, inputs: dict, tokens, prefix: str,
               candidates: Candidates | None):
    """Inter-feature stage -> RetrievalAttention over the stored candidates (see :func:`representation`)."""
    if candidates is None or len(candidates.labels) < 2:
        raise ValueError("inter_sample 'retrieval' needs at least 2 candidate training rows.")
    if CANDIDATE_INDEX not in inputs:
        inputs[CANDIDATE_INDEX] = keras.Input((), name=CANDIDATE_INDEX, dtype="int32")
    h, _scores = _attention_layer(config, prefix, sample_attention=False)(tokens, return_attention_scores=True)
    h = keras.layers.Reshape((config.d_model,), name=f"{prefix}row_representation")(h)
    layer_name = f"{prefix}retrieval"
    retrieval = RetrievalAttention(
        num_candidates=len(candidates.labels), d_model=config.d_model, num_numerical=len(spec.numerical_names),
        cardinalities=spec.cardinalities, k=config.retrieval.k,
        num_classes=None if spec.task == "regression" else spec.num_classes, num_heads=config.retrieval.num_heads,
        dropout_rate=config.retrieval.dropout_rate, ffn_multiplier=config.ffn_multiplier,
        key_embedding=config.retrieval.key_embedding, key_embedding_dim=config.retrieval.key_embedding_dim,
        num_frequencies=config.periodic_frequencies, sigma=config.periodic_sigma,
        step_candidates=config.retrieval.step_candidates if isinstance(config.retrieval.step_candidates, int) else None,
        name=layer_name,
    )
    h, _retrieved = retrieval(
        h, numerical=inputs.get("numerical"), categorical=inputs.get("categorical"),
        candidate_index=inputs[CANDIDATE_INDEX], return_attention_scores=True,
    )
    setters = {
        layer_name: lambda layer: layer.set_candidates(
            candidates.inputs.get("numerical"), candidates.inputs.get("categorical"), candidates.labels, candidates.ids
        )
    }
    return h, setters


def build(config: TabularAttentionConfig, spec: ModelSpec, context: dict[str, np.ndarray] | None = None,
          candidates: Candidates | None = None) -> keras.Model:
    """The family's model: :func:`representation` -> prediction head.

    Args:
        config: Family settings.
        spec: Input/output shapes.
        context: ``{"numerical": (M, n_num), "categorical": (M, n_cat)}`` preprocessed training
            rows (``inter_sample: context``), or None / ``config.context_rows == 0`` for no context.
        candidates: The retrieval candidates (``inter_sample: retrieval``), stored in the model.

    Returns:
        Uncompiled ``keras.Model``; the TabularAttention layer is called with
        ``return_attention_scores=True``, so its scores are graph tensors.
    """
    inputs = make_inputs(spec)
    h, setters = representation(config, spec, inputs, context, candidates=candidates)
    model = keras.Model(inputs, prediction_head(h, spec, config.head_units, config.dropout_rate), name="tabular_attention_model")
    assign_context(model, setters)
    return model


def attention_manifest(config: TabularAttentionConfig, spec: ModelSpec, context_ids: list, prefix: str = "") -> dict:
    """Axes and labels of every attention score of the family's model (see ``tabcli.runs.attention``)."""
    tokens = (["[CLS]"] if config.pooling == "cls" else []) + list(spec.feature_names)
    layer = f"{prefix}tabular_attention"
    num_context = min(config.stored_context_rows, len(context_ids))
    scores = {
        f"inter_feature_{i}": {
            "kind": f"inter-feature attention, block {i}",
            "axes": ["row", "sample", "head", "query_feature", "key_feature"],
            "squeeze": ["sample"],
            "labels": {"query_feature": tokens, "key_feature": tokens},
        }
        for i in range(config.num_feature_blocks)
    }
    if config.inter_sample == "retrieval":
        return {layer: scores, f"{prefix}retrieval": _retrieval_manifest(config)}
    scores["inter_sample"] = {
        "kind": "inter-sample attention",
        "axes": ["row", "head", "query_sample", "key_sample"],
        "squeeze": ["query_sample"],
        "labels": {"key_sample": ["self", *[f"context:{i}" for i in context_ids[:num_context]]]},
        "note": "key 0 is the row itself; the others are context rows stored in the model, named by "
        "their index in the training table",
    }
    return {layer: scores}


def _retrieval_manifest(config: TabularAttentionConfig) -> dict:
    """What RetrievalAttention returns, per explained row and retrieved neighbour."""
    neighbours = f"the k = {config.retrieval.k} training rows retrieved (most similar first)"
    return {
        "weights": {
            "kind": "retrieval weights",
            "axes": ["row", "head", "neighbour"],
            "note": f"softmax over {neighbours} of -||k - k_i||^2, per head; average over heads for one weight per neighbour",
        },
        "ids": {
            "kind": "retrieved training rows",
            "axes": ["row", "neighbour"],
            "values": "row_id",
            "note": f"index in the training table of {neighbours}",
        },
        "labels": {
            "kind": "labels of the retrieved training rows",
            "axes": ["row", "neighbour"],
            "values": "target",
            "note": f"the target of {neighbours}, in the target's own units or class names",
        },
    }
