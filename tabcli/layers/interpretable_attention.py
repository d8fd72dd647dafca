"""InterpretableMultiHeadAttention: the Temporal Fusion Transformer's head-averaged attention."""

from __future__ import annotations

import math

import keras
from keras import ops

from tabcli.layers._common import check_attention_args, single_key_softmax_ok

__all__ = ["InterpretableMultiHeadAttention"]

# Logit given to masked positions. exp(-1e9 - max) underflows to exactly 0 in float32, and the
# softmax always runs in float32 (see `_masked_softmax`), so the value never overflows.
_MASKED_LOGIT = -1e9


@keras.saving.register_keras_serializable(package="tabcli")
class InterpretableMultiHeadAttention(keras.layers.Layer):
    """Multi-head attention whose head-averaged scores are one interpretable distribution.

    The interpretable multi-head attention of the Temporal Fusion Transformer (Lim et al. 2021,
    "Temporal Fusion Transformers for interpretable multi-horizon time series forecasting",
    §4.4). Every head ``h`` has its own query and key projections ``W_Q^(h)``, ``W_K^(h)`` of
    width ``head_dim = d_model // n_head``, but all heads share ONE value projection ``W_V``
    (width ``head_dim``). Each head computes scaled dot-product attention
    ``A_h = softmax(Q W_Q^(h) (K W_K^(h))^T / sqrt(head_dim))``; the heads' outputs are
    AVERAGED (not concatenated), ``H = mean_h(A_h) V W_V``, and projected to ``d_model`` by
    ``W_H``. Because the values are shared, ``mean_h(A_h)`` is the single attention
    distribution that produced the output, so it can be read as feature/position importance.

    Args:
        d_model: Width of the output. Must be divisible by ``n_head``.
        n_head: Number of attention heads.
        dropout_rate: Dropout on the attention probabilities, in ``[0, 1)``. Active only when
            ``training=True``; ``0`` disables it.
        use_bias: Whether the query, key, value and output projections have biases.
        kernel_initializer: Initializer (name, config dict or object) of the projection
            kernels.
        bias_initializer: Initializer (name, config dict or object) of the projection biases.
        **kwargs: Standard layer keyword arguments (``name``, ``dtype``, ...).

    Call arguments:
        query: ``(batch, Tq, d_q)``.
        key: ``(batch, Tk, d_k)``; defaults to ``query`` (self-attention).
        value: ``(batch, Tk, d_v)``; defaults to ``key``.
        attention_mask: Optional boolean (or 0/1) mask, ``(batch, Tq, Tk)`` or ``(batch, Tk)``
            (the same keys for every query); ``True`` means "may attend", as in
            ``keras.layers.MultiHeadAttention``. Masked keys get probability exactly 0. A query
            whose keys are ALL masked attends uniformly to all ``Tk`` keys (its scores are
            ``1 / Tk``), so its output is finite and its scores still sum to 1.
        training: Python boolean, whether dropout is active.
        return_attention_scores: If ``True``, also return the attention scores.

    Returns:
        ``(batch, Tq, d_model)``; with ``return_attention_scores=True`` a tuple
        ``(output, scores)`` with ``scores`` of shape ``(batch, n_head, Tq, Tk)``: each head's
        probabilities before dropout, summing to 1 over ``Tk``. Average them over axis 1 for
        the interpretable distribution.

    Attributes:
        attention_scores: NumPy array ``(batch, n_head, Tq, Tk)``, the scores of the last
            EAGER call, or ``None`` before any. Calls on symbolic tensors (building a
            functional model) or inside a traced function (``model.predict``, ``fit``) leave
            it unchanged, since their scores are graph tensors that are meaningless outside
            the graph; in a model, get scores with ``return_attention_scores=True`` and make
            them a model output.

    Raises:
        ValueError: On non-positive ``n_head``/``d_model``, ``d_model`` not divisible by
            ``n_head``, ``dropout_rate`` outside ``[0, 1)``, inputs not of rank 3 (or with an
            unknown last axis), ``key``/``value`` of different lengths, or an attention mask
            not of rank 2 or 3.
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        dropout_rate: float = 0.1,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_attention_args(n_head, d_model, dropout_rate, heads_name="n_head")
        self.d_model = int(d_model)
        self.n_head = int(n_head)
        self.head_dim = self.d_model // self.n_head
        self.dropout_rate = float(dropout_rate)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.attention_scores = None

    # ------------------------------------------------------------------ build
    def build(self, query_shape, key_shape=None, value_shape=None):
        key_shape = query_shape if key_shape is None else key_shape
        value_shape = key_shape if value_shape is None else value_shape
        shapes = {"query": tuple(query_shape), "key": tuple(key_shape), "value": tuple(value_shape)}
        if any(len(shape) != 3 or shape[-1] is None for shape in shapes.values()):
            received = ", ".join(f"{name} shape {shape}" for name, shape in shapes.items())
            raise ValueError(
                "InterpretableMultiHeadAttention expects query, key and value of rank 3, "
                f"(batch, T, features), with a known last axis; received {received}."
            )
        tk_key, tk_value = shapes["key"][1], shapes["value"][1]
        if tk_key is not None and tk_value is not None and tk_key != tk_value:
            raise ValueError(
                "key and value must have the same number of positions (axis 1); received key "
                f"shape {shapes['key']} and value shape {shapes['value']}."
            )
        self.query_dense = self._per_head_projection("query")
        self.query_dense.build(shapes["query"])
        self.key_dense = self._per_head_projection("key")
        self.key_dense.build(shapes["key"])
        # One value projection for all heads: what makes the averaged scores interpretable.
        self.value_dense = keras.layers.Dense(
            self.head_dim, use_bias=self.use_bias, name="value", **self._sublayer_kwargs()
        )
        self.value_dense.build(shapes["value"])
        self.output_dense = keras.layers.Dense(
            self.d_model, use_bias=self.use_bias, name="output", **self._sublayer_kwargs()
        )
        self.output_dense.build(shapes["query"][:2] + (self.head_dim,))
        self.attention_dropout = keras.layers.Dropout(
            self.dropout_rate, name="attention_dropout", dtype=self.dtype_policy
        )
        super().build(query_shape)

    def _per_head_projection(self, name):
        """(batch, T, d) -> (batch, T, n_head, head_dim): an own projection for every head."""
        return keras.layers.EinsumDense(
            "btd,dhk->bthk", (None, self.n_head, self.head_dim),
            bias_axes="hk" if self.use_bias else None, name=name, **self._sublayer_kwargs(),
        )

    def _sublayer_kwargs(self):
        # A fresh initializer clone per sub-layer, as keras.layers.MultiHeadAttention does: an
        # unseeded initializer draws its seed once, when constructed, so one shared object
        # would give the query and key kernels identical values.
        return {
            "kernel_initializer": self.kernel_initializer.__class__.from_config(
                self.kernel_initializer.get_config()
            ),
            "bias_initializer": self.bias_initializer.__class__.from_config(
                self.bias_initializer.get_config()
            ),
            "dtype": self.dtype_policy,
        }

    # ------------------------------------------------------------------ call
    def call(
        self,
        query,
        key=None,
        value=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        key = query if key is None else key
        value = key if value is None else value
        scale = ops.cast(1.0 / math.sqrt(self.head_dim), self.compute_dtype)
        q = self.query_dense(query) * scale  # (batch, Tq, n_head, head_dim)
        k = self.key_dense(key)  # (batch, Tk, n_head, head_dim)
        v = self.value_dense(value)  # (batch, Tk, head_dim), shared by the heads
        logits = ops.einsum("bqhd,bkhd->bhqk", q, k)
        scores = self._masked_softmax(logits, attention_mask)
        probabilities = self.attention_dropout(scores, training=training)
        # The heads share v, so averaging the heads' outputs A_h v equals mean_h(A_h) v.
        heads_mean = ops.einsum("bqk,bkd->bqd", ops.mean(probabilities, axis=1), v)
        output = self.output_dense(heads_mean)
        self._record_scores(scores)
        if return_attention_scores:
            return output, scores
        return output

    def _masked_softmax(self, logits, attention_mask):
        """Logits (batch, n_head, Tq, Tk) -> probabilities over Tk, masked keys exactly 0."""
        # In float32 even under mixed precision: _MASKED_LOGIT would overflow float16.
        logits = ops.cast(logits, "float32")
        if attention_mask is not None:
            logits = ops.where(_broadcastable_mask(attention_mask, logits.shape), logits, _MASKED_LOGIT)
        with single_key_softmax_ok():  # a single key (Tk = 1) is valid: its probability is 1
            probabilities = ops.softmax(logits, axis=-1)
        return ops.cast(probabilities, self.compute_dtype)

    def _record_scores(self, scores):
        # Keep only concrete scores: converting a symbolic tensor (functional-model building,
        # tf.function tracing) raises, and storing it would leave a tensor unusable outside
        # its graph. The backends raise NotImplementedError (TensorFlow) or TypeError (JAX).
        try:
            self.attention_scores = ops.convert_to_numpy(scores)
        except (NotImplementedError, TypeError):
            pass

    def attention_score_names(self) -> list[str]:
        """Names of the score tensors returned with ``return_attention_scores=True``."""
        return ["attention"]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "d_model": self.d_model,
                "n_head": self.n_head,
                "dropout_rate": self.dropout_rate,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def _broadcastable_mask(attention_mask, logits_shape):
    """Mask (batch, Tq, Tk) or (batch, Tk) -> boolean (batch, 1, Tq or 1, Tk) for the logits."""
    mask_shape = tuple(attention_mask.shape)
    tq, tk = logits_shape[2], logits_shape[3]
    expected = (tk,) if len(mask_shape) == 2 else (tq, tk)
    if len(mask_shape) not in (2, 3) or any(
        m is not None and e is not None and m != e for m, e in zip(mask_shape[1:], expected)
    ):
        raise ValueError(
            "attention_mask must have shape (batch, Tq, Tk) or (batch, Tk); received shape "
            f"{mask_shape} for Tq={tq}, Tk={tk}."
        )
    mask = ops.cast(attention_mask, "bool")
    if len(mask_shape) == 2:
        mask = ops.expand_dims(mask, 1)  # the same keys for every query
    return ops.expand_dims(mask, 1)  # the same mask for every head
