"""TabularAttention: inter-feature attention inside each sample, then inter-sample attention."""

from __future__ import annotations

import math

import keras
from keras import ops

from tabcli.layers._common import as_bool_mask, check_attention_args, single_key_softmax_ok

__all__ = ["TabularAttention"]

_POOLING = ("mean", "cls")


@keras.saving.register_keras_serializable(package="tabcli")
class TabularAttention(keras.layers.Layer):
    """Dual attention for tables: across a sample's features, then across samples.

    Stage 1, *inter-feature attention*: inside every sample each feature is a token of width
    ``d_model``; multi-head self-attention runs across the ``num_features`` tokens (scores
    ``(batch, num_samples, num_heads, F, F)``), followed by residual + LayerNorm, a feed-forward
    network, and residual + LayerNorm (a post-norm Transformer encoder block, Vaswani et al.
    2017; applied to feature tokens as in FT-Transformer, Gorishniy et al. 2021).

    Stage 2, *inter-sample attention*: each sample's feature tokens are pooled to one
    ``d_model`` vector and every sample attends across the samples axis (scores
    ``(batch, num_heads, num_samples, num_samples [+ num_context])``), followed by residual +
    LayerNorm and the output projection. This is SAINT's intersample attention (Somepalli et
    al. 2021). Optional ``context`` samples, shared by the whole batch, are extra keys/values
    for stage 2: the samples of ``inputs`` attend to them but they are not updated, so in a
    model whose samples axis holds one row and whose context is a fixed set of training rows,
    a row's output does not depend on the other rows of its batch (the retrieval idea of TabR,
    Gorishniy et al. 2023, without labels).

    With ``context_sample=K``, each *training* call draws ``K`` of the ``M`` context samples
    uniformly at random, without replacement, and adds ``log(M / K)`` to their attention logits:
    ``M / K`` times the sum of ``K`` sampled ``exp(logit)`` is an unbiased estimate of the sum
    over all ``M``, so a sample's weight on itself versus the context stays what it will be at
    prediction, when all ``M`` are used (the sampled-softmax correction of Bengio & Senecal
    2008 and Jean et al. 2015, uniform proposal). The context then costs ``K`` rather than ``M``
    stage-1 passes (forward and backward) per training step (docs/benchmarks.md).

    Args:
        num_heads: Number of attention heads in both stages.
        d_model: Width of the feature tokens and of the output. Must be divisible by
            ``num_heads``.
        dropout_rate: Dropout on attention probabilities and in the feed-forward network,
            in ``[0, 1)``. Active only when ``training=True``.
        ffn_multiplier: Hidden width of the feed-forward network, as a multiple of
            ``d_model``.
        num_feature_blocks: Number of stacked inter-feature Transformer blocks in stage 1.
        pooling: How a sample's feature tokens become one vector before stage 2: ``"mean"``
            (average of the tokens) or ``"cls"`` (a learned [CLS] token is prepended to the
            features and its output is used, as in BERT and FT-Transformer; the inter-feature
            scores then cover ``F + 1`` tokens, the [CLS] token first).
        context_sample: Optional number ``K >= 1`` of context samples drawn at random for each
            training call (see above); ``None`` (default), or ``K`` at least the number of
            context samples, uses them all. Calls with ``training`` false always use them all.
        seed: Optional integer seed of the context sampling (and only of it); ``None`` draws one
            from Keras's global seed (``keras.utils.set_random_seed``), like ``Dropout``.
        sample_attention: ``False`` skips stage 2: the output is the output projection of the
            pooled stage-1 vectors, for a caller that does its own inter-sample step (tabcli's
            default model feeds it to :class:`~tabcli.layers.RetrievalAttention`). ``context``
            must then be None and the scores have no ``"inter_sample"`` entry.
        **kwargs: Standard layer keyword arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: Either raw values ``(batch, num_samples, num_features)``, each projected to a
            ``d_model`` token by its own linear map ``x_f * W_f + b_f`` ("input projection"),
            or already-embedded tokens ``(batch, num_samples, num_features, d)``, projected to
            ``d_model`` by a shared Dense layer when ``d != d_model``.
        context: Optional context samples shared by the whole batch, ``(num_context,
            num_features)`` or ``(num_context, num_features, d)`` in the same layout as
            ``inputs``. Their tokens go through stage 1 once per call, and their pooled vectors
            become additional keys and values of stage 2 (a random ``context_sample`` of them
            in training, if set).
        feature_mask: Optional boolean ``(batch, num_samples, num_features)``; False marks a
            feature token no other token may attend to (e.g. a missing value); mean pooling
            then averages the valid tokens only.
        sample_mask: Optional boolean ``(batch, num_samples)``; False marks a padding sample
            that no sample attends to in stage 2 (context samples are always valid).
        training: Python boolean, whether dropout is active.
        return_attention_scores: If ``True``, also return the attention scores.

    Returns:
        ``(batch, num_samples, d_model)``; with ``return_attention_scores=True`` a tuple
        ``(output, scores)`` where ``scores`` is a dict with ``"inter_feature"``, a list (one
        per feature block) of ``(batch, num_samples, num_heads, T, T)`` tensors with
        ``T = num_features`` (``+ 1`` with ``pooling="cls"``), and ``"inter_sample"``,
        ``(batch, num_heads, num_samples, num_samples + num_context)``; keys are the samples of
        ``inputs`` in order, then the context samples (``context_sample`` of them, in random
        order, in a training call that samples). Scores sum to 1 over the last axis.

    Raises:
        ValueError: On non-positive ``num_heads``/``d_model``, ``d_model`` not divisible by
            ``num_heads``, ``dropout_rate`` outside ``[0, 1)``, an unknown ``pooling``, or
            inputs of rank other than 3 or 4, or ``context_sample`` below 1.
    """

    def __init__(
        self,
        num_heads: int,
        d_model: int,
        dropout_rate: float = 0.1,
        ffn_multiplier: float = 2.0,
        num_feature_blocks: int = 1,
        pooling: str = "mean",
        context_sample: int | None = None,
        seed: int | None = None,
        sample_attention: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_attention_args(num_heads, d_model, dropout_rate, ffn_multiplier)
        if int(num_feature_blocks) < 1:
            raise ValueError(
                f"num_feature_blocks must be >= 1; received num_feature_blocks={num_feature_blocks}."
            )
        if pooling not in _POOLING:
            raise ValueError(f"pooling must be one of {_POOLING}; received pooling={pooling!r}.")
        if context_sample is not None and int(context_sample) < 1:
            raise ValueError(
                "context_sample must be None (use every context sample) or an integer >= 1; "
                f"received context_sample={context_sample!r}."
            )
        self.num_heads = int(num_heads)
        self.d_model = int(d_model)
        self.dropout_rate = float(dropout_rate)
        self.ffn_multiplier = float(ffn_multiplier)
        self.num_feature_blocks = int(num_feature_blocks)
        self.pooling = pooling
        self.context_sample = None if context_sample is None else int(context_sample)
        self.seed = seed
        self.sample_attention = bool(sample_attention)
        self.context_seed_generator = (
            keras.random.SeedGenerator(seed) if self.context_sample is not None else None
        )

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) not in (3, 4):
            raise ValueError(
                "TabularAttention expects inputs of shape (batch, num_samples, num_features) or "
                f"(batch, num_samples, num_features, d); received shape {input_shape}."
            )
        num_features = input_shape[2]
        if num_features is None:
            raise ValueError(
                f"The num_features axis of the input must be known; received shape {input_shape}."
            )
        self._token_input = len(input_shape) == 4
        d, key_dim = self.d_model, self.d_model // self.num_heads
        self.feature_kernel = self.feature_bias = self.input_projection = None
        if not self._token_input:
            bound = 1.0 / d**0.5
            init = keras.initializers.RandomUniform(-bound, bound)
            self.feature_kernel = self.add_weight(
                name="feature_kernel", shape=(num_features, d), initializer=init
            )
            self.feature_bias = self.add_weight(name="feature_bias", shape=(num_features, d), initializer=init)
        elif input_shape[3] != d:
            self.input_projection = keras.layers.Dense(d, name="input_projection")
            self.input_projection.build(input_shape)
        self.cls_token = None
        if self.pooling == "cls":
            self.cls_token = self.add_weight(
                name="cls_token", shape=(d,), initializer=keras.initializers.RandomUniform(-0.1, 0.1)
            )
        num_tokens = num_features + (1 if self.pooling == "cls" else 0)
        token_shape = (None, None, num_tokens, d)
        hidden = max(1, int(round(self.ffn_multiplier * d)))
        self.feature_attention, self.feature_norm_1, self.feature_norm_2 = [], [], []
        self.feature_ffn_in, self.feature_ffn_dropout, self.feature_ffn_out = [], [], []
        for i in range(self.num_feature_blocks):
            attention = keras.layers.MultiHeadAttention(
                self.num_heads, key_dim, dropout=self.dropout_rate, attention_axes=(2,),
                name=f"feature_attention_{i}",
            )
            attention.build(token_shape, token_shape)
            norm_1 = keras.layers.LayerNormalization(epsilon=1e-5, name=f"feature_norm_{i}_1")
            norm_1.build(token_shape)
            ffn_in = keras.layers.Dense(hidden, activation="gelu", name=f"feature_ffn_{i}_in")
            ffn_in.build(token_shape)
            ffn_out = keras.layers.Dense(d, name=f"feature_ffn_{i}_out")
            ffn_out.build(token_shape[:-1] + (hidden,))
            norm_2 = keras.layers.LayerNormalization(epsilon=1e-5, name=f"feature_norm_{i}_2")
            norm_2.build(token_shape)
            self.feature_attention.append(attention)
            self.feature_norm_1.append(norm_1)
            self.feature_ffn_in.append(ffn_in)
            self.feature_ffn_dropout.append(
                keras.layers.Dropout(self.dropout_rate, name=f"feature_ffn_{i}_dropout")
            )
            self.feature_ffn_out.append(ffn_out)
            self.feature_norm_2.append(norm_2)
        sample_shape = (None, None, d)
        self.output_projection = keras.layers.Dense(d, name="output_projection")
        self.output_projection.build(sample_shape)
        if self.sample_attention:
            self._build_sample_attention(d, key_dim)
        super().build(input_shape)

    def _build_sample_attention(self, d, key_dim):
        sample_shape = (None, None, d)
        # Stage 2 owns its projections (rather than a keras MultiHeadAttention) so the context
        # samples' keys and values are projected once per call, (M, heads, key_dim), instead of
        # broadcasting the context to every row of the batch and projecting batch x M rows.
        glorot, zeros = keras.initializers.GlorotUniform(), keras.initializers.Zeros()
        for name in ("query", "key", "value"):
            setattr(self, f"sample_{name}_kernel",
                    self.add_weight(name=f"sample_{name}_kernel", shape=(d, self.num_heads, key_dim), initializer=glorot))
            setattr(self, f"sample_{name}_bias",
                    self.add_weight(name=f"sample_{name}_bias", shape=(self.num_heads, key_dim), initializer=zeros))
        self.sample_output_kernel = self.add_weight(
            name="sample_output_kernel", shape=(self.num_heads, key_dim, d), initializer=glorot
        )
        self.sample_output_bias = self.add_weight(name="sample_output_bias", shape=(d,), initializer=zeros)
        self.sample_softmax = keras.layers.Softmax(axis=-1, name="sample_softmax")
        self.sample_dropout = keras.layers.Dropout(self.dropout_rate, name="sample_attention_dropout")
        self.sample_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="sample_norm")
        self.sample_norm.build(sample_shape)

    # ------------------------------------------------------------------ call
    def _tokens(self, x):
        """Raw values or tokens (..., F[, d]) -> tokens (..., T, d_model)."""
        if self._token_input:
            tokens = self.input_projection(x) if self.input_projection is not None else x
        else:
            tokens = ops.expand_dims(x, -1) * self.feature_kernel + self.feature_bias
        if self.cls_token is not None:
            lead = ops.shape(tokens)[:-2]
            cls = ops.broadcast_to(self.cls_token, tuple(lead) + (1, self.d_model))
            tokens = ops.concatenate([ops.cast(cls, tokens.dtype), tokens], axis=-2)
        return tokens

    def _feature_stage(self, tokens, training, feature_mask=None):
        """Tokens (batch, S, T, d) -> pooled (batch, S, d) and per-block scores."""
        scores = []
        attention_mask = None
        if feature_mask is not None:
            keys = as_bool_mask(feature_mask)
            if self.cls_token is not None:  # the [CLS] token is always a valid key
                keys = ops.concatenate([ops.ones_like(keys[..., :1]), keys], axis=-1)
            shape = tuple(ops.shape(tokens)[:3]) + (ops.shape(tokens)[2],)
            attention_mask = ops.broadcast_to(ops.expand_dims(keys, 2), shape)
        for i in range(self.num_feature_blocks):
            with single_key_softmax_ok():  # a table with a single feature
                attended, block_scores = self.feature_attention[i](
                    tokens, tokens, attention_mask=attention_mask, return_attention_scores=True, training=training
                )
            tokens = self.feature_norm_1[i](tokens + attended)
            hidden = self.feature_ffn_dropout[i](self.feature_ffn_in[i](tokens), training=training)
            tokens = self.feature_norm_2[i](tokens + self.feature_ffn_out[i](hidden))
            scores.append(block_scores)
        if self.pooling == "cls":
            pooled = tokens[:, :, 0, :]
        elif feature_mask is None:
            pooled = ops.mean(tokens, axis=2)
        else:  # mean over the valid feature tokens only
            weights = ops.expand_dims(ops.cast(feature_mask, tokens.dtype), -1)
            pooled = ops.sum(tokens * weights, axis=2) / ops.maximum(ops.sum(weights, axis=2), 1.0)
        return pooled, scores

    def _joint_feature_stage(self, tokens, context_tokens, training, feature_mask=None):
        """Stage 1 for the batch and the context in one pass: tokens (batch, S, T, d) and
        context tokens (M, T, d) -> pooled (batch, S, d), per-block scores of the batch's samples,
        and pooled context (M, d).

        The context's M samples are appended to the batch's ``batch * S`` samples as rows of
        their own. Why one pass: at small batches a step's cost is mostly per-op overhead, and
        two passes run every op twice; diabetes at batch 32 with 16 sampled context rows, one
        thread: 2.05x -> 1.85x FT-Transformer's ms per step (means of four interleaved runs of
        ``benchmarks/step_time.py`` each way: 2.05, 1.98, 2.06, 2.10 -> 1.90, 1.78, 1.86, 1.84).
        """
        batch, samples = ops.shape(tokens)[0], ops.shape(tokens)[1]
        rows = batch * samples
        flat = ops.reshape(tokens, (-1, 1) + tuple(tokens.shape[2:]))
        joint = ops.concatenate([flat, ops.expand_dims(context_tokens, 1)], axis=0)
        joint_mask = None
        if feature_mask is not None:  # context samples have no missing features
            mask = ops.reshape(as_bool_mask(feature_mask), (-1, 1, feature_mask.shape[-1]))
            joint_mask = ops.concatenate(
                [mask, ops.ones((ops.shape(context_tokens)[0], 1, feature_mask.shape[-1]), dtype="bool")], axis=0
            )
        pooled, scores = self._feature_stage(joint, training, joint_mask)
        batch_scores = [ops.reshape(score[:rows], (batch, samples) + tuple(score.shape[2:])) for score in scores]
        return ops.reshape(pooled[:rows], (batch, samples, self.d_model)), batch_scores, pooled[rows:, 0]

    def _sample_attention(self, pooled, context_pooled, sample_keys, training, context_log_weight=0.0):
        """Stage 2. ``pooled`` (batch, S, d) attends to itself and to ``context_pooled`` (M, d).

        Scaled dot-product attention (Vaswani et al. 2017) with ``num_heads`` heads. The context
        keys/values are projected once, ``(M, heads, key_dim)``, and shared by every row;
        ``context_log_weight`` (a Python float, ``log(M_all / M)`` for a sampled context) is
        added to the context logits. Returns ``(attended (batch, S, d), scores (batch, heads, S, S + M))``.
        """
        key_dim = self.d_model // self.num_heads
        query = ops.einsum("bsd,dhk->bshk", pooled, self.sample_query_kernel) + self.sample_query_bias
        query = query * ops.cast(1.0 / key_dim**0.5, query.dtype)
        key = ops.einsum("bsd,dhk->bshk", pooled, self.sample_key_kernel) + self.sample_key_bias
        value = ops.einsum("bsd,dhk->bshk", pooled, self.sample_value_kernel) + self.sample_value_bias
        logits = ops.einsum("bqhk,bshk->bhqs", query, key)
        num_samples = ops.shape(pooled)[1]
        if context_pooled is not None:
            context_key = ops.einsum("md,dhk->mhk", context_pooled, self.sample_key_kernel) + self.sample_key_bias
            context_value = ops.einsum("md,dhk->mhk", context_pooled, self.sample_value_kernel) + self.sample_value_bias
            context_logits = ops.einsum("bqhk,mhk->bhqm", query, context_key)
            if context_log_weight:
                context_logits = context_logits + ops.cast(context_log_weight, context_logits.dtype)
            logits = ops.concatenate([logits, context_logits], axis=-1)
        mask = None
        if sample_keys is not None:  # (batch, S) -> (batch, 1, 1, S + M): the keys each query may see
            if context_pooled is not None:  # context samples are always valid keys
                batch = ops.shape(pooled)[0]
                sample_keys = ops.concatenate(
                    [sample_keys, ops.ones((batch, ops.shape(context_pooled)[0]), dtype="bool")], axis=1
                )
            mask = ops.broadcast_to(sample_keys[:, None, None, :], ops.shape(logits))
        with single_key_softmax_ok():  # one sample and no context: attends to itself only
            scores = self.sample_softmax(logits, mask=mask)
        weights = self.sample_dropout(scores, training=training)
        attended = ops.einsum("bhqs,bshk->bqhk", weights[..., :num_samples], value)
        if context_pooled is not None:
            attended = attended + ops.einsum("bhqm,mhk->bqhk", weights[..., num_samples:], context_value)
        output = ops.einsum("bqhk,hkd->bqd", attended, self.sample_output_kernel) + self.sample_output_bias
        return output, scores

    def call(self, inputs, context=None, feature_mask=None, sample_mask=None, training=None,
             return_attention_scores=False):
        tokens = self._tokens(inputs)
        if not self.sample_attention:
            if context is not None:
                raise ValueError("TabularAttention(sample_attention=False) takes no context samples.")
            pooled, feature_scores = self._feature_stage(tokens, training, feature_mask)
            output = self.output_projection(pooled)
            return (output, {"inter_feature": feature_scores}) if return_attention_scores else output
        context_pooled, context_log_weight = None, 0.0
        if context is None:
            pooled, feature_scores = self._feature_stage(tokens, training, feature_mask)
        else:
            context_tokens = self._tokens(context)  # (M, T, d)
            if training:
                context_tokens, context_log_weight = self._sample_context(context_tokens)
            pooled, feature_scores, context_pooled = self._joint_feature_stage(
                tokens, context_tokens, training, feature_mask
            )
        sample_keys = None if sample_mask is None else ops.cast(sample_mask, "bool")  # (batch, S)
        attended, sample_scores = self._sample_attention(
            pooled, context_pooled, sample_keys, training, context_log_weight
        )
        output = self.output_projection(self.sample_norm(pooled + attended))
        if return_attention_scores:
            return output, {"inter_feature": feature_scores, "inter_sample": sample_scores}
        return output

    def _sample_context(self, context_tokens):
        """Context tokens (M, T, d) -> a random ``(K, T, d)`` of them and ``log(M / K)``; all of
        them and 0.0 when not sampling (no ``context_sample``, or ``K >= M``)."""
        num_context = context_tokens.shape[0]
        if self.context_sample is None or num_context is None or num_context <= self.context_sample:
            return context_tokens, 0.0
        chosen = keras.random.shuffle(ops.arange(num_context), seed=self.context_seed_generator)
        chosen = chosen[: self.context_sample]
        return ops.take(context_tokens, chosen, axis=0), math.log(num_context / self.context_sample)

    def attention_score_names(self) -> list[str]:
        """Names of the score tensors, in the order ``keras.tree.flatten`` gives them after the output."""
        structure = {
            "inter_feature": [f"inter_feature_{i}" for i in range(self.num_feature_blocks)],
        }
        if self.sample_attention:
            structure["inter_sample"] = "inter_sample"
        return keras.tree.flatten(structure)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "d_model": self.d_model,
                "dropout_rate": self.dropout_rate,
                "ffn_multiplier": self.ffn_multiplier,
                "num_feature_blocks": self.num_feature_blocks,
                "pooling": self.pooling,
                "context_sample": self.context_sample,
                "seed": self.seed,
                "sample_attention": self.sample_attention,
            }
        )
        return config
