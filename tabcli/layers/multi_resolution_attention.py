"""MultiResolutionTabularAttention: separate attention for numerical and categorical tokens, then
cross-attention between the two types."""

from __future__ import annotations

import keras
from keras import ops

from tabcli.layers._common import as_bool_mask, check_attention_args, single_key_softmax_ok

__all__ = ["MultiResolutionTabularAttention"]

_POOLING = ("mean", "none")


class _StreamProjection:
    """Turns one stream's input into ``d_model`` tokens (shared logic of the two streams)."""

    def __init__(self, layer: keras.layers.Layer, name: str, input_shape, d_model: int):
        self.token_input = len(input_shape) == 4
        self.kernel = self.bias = self.dense = None
        num_features = input_shape[2]
        if not self.token_input:
            bound = 1.0 / d_model**0.5
            init = keras.initializers.RandomUniform(-bound, bound)
            self.kernel = layer.add_weight(name=f"{name}_kernel", shape=(num_features, d_model), initializer=init)
            self.bias = layer.add_weight(name=f"{name}_bias", shape=(num_features, d_model), initializer=init)
        elif input_shape[3] != d_model:
            self.dense = keras.layers.Dense(d_model, name=f"{name}_projection")
            self.dense.build(input_shape)

    def __call__(self, x):
        if not self.token_input:
            return ops.expand_dims(ops.cast(x, self.kernel.dtype), -1) * self.kernel + self.bias
        return self.dense(x) if self.dense is not None else x


@keras.saving.register_keras_serializable(package="tabcli")
class MultiResolutionTabularAttention(keras.layers.Layer):
    """Self-attention within numerical and within categorical feature tokens, then cross-attention.

    For every sample: (1) multi-head self-attention across the numerical tokens and, separately,
    across the categorical tokens, each followed by residual + LayerNorm; (2) cross-attention
    both ways -- ``numerical_to_categorical``: numerical tokens are the queries, categorical
    tokens the keys/values; ``categorical_to_numerical``: the reverse -- each followed by
    residual + LayerNorm; (3) a feed-forward network per stream with residual + LayerNorm; (4)
    optionally, mean pooling of each stream's tokens. Numerical and categorical columns thus get
    their own attention "resolution" while still exchanging information (the idea of the seed
    page; attention blocks as in Vaswani et al. 2017).

    Raw numerical values are projected to tokens by a per-feature linear map. Categorical
    columns should arrive as tokens from per-column embeddings
    (:class:`~tabcli.layers.CategoricalEmbedding`); raw categorical *codes* given as rank-3
    input are projected like numbers, which is only sensible for ordinal codes.

    Args:
        num_heads: Attention heads of every attention sub-layer.
        d_model: Token width and output width. Must be divisible by ``num_heads``.
        dropout_rate: Dropout on attention probabilities and in the feed-forward networks,
            in ``[0, 1)``; active only when ``training=True``.
        ffn_multiplier: Feed-forward hidden width as a multiple of ``d_model``.
        pooling: ``"mean"``: outputs are ``(batch, S, d_model)`` (the mean of each stream's
            tokens); ``"none"``: outputs are the tokens ``(batch, S, n, d_model)``, for stacking
            several blocks.
        **kwargs: Standard layer keyword arguments.

    Call arguments:
        inputs: A list or tuple ``[numerical, categorical]``: each either raw values
            ``(batch, S, n)`` or tokens ``(batch, S, n, d)``; ``n_num`` and ``n_cat`` may differ.
        numerical_mask: Optional boolean ``(batch, S, n_num)``; False marks a numerical token
            that no query may attend to (e.g. a missing value).
        categorical_mask: Optional boolean ``(batch, S, n_cat)``, the same for categorical tokens.
        training: Python boolean, whether dropout is active.
        return_attention_scores: If True, also return the scores.

    Returns:
        ``(numerical_out, categorical_out)``, each ``(batch, S, d_model)`` (or token tensors
        with ``pooling="none"``); with ``return_attention_scores=True``, ``((numerical_out,
        categorical_out), scores)`` where ``scores`` is a dict of ``(batch, S, heads, Tq, Tk)``
        tensors: ``numerical_self`` (n_num x n_num), ``categorical_self`` (n_cat x n_cat),
        ``numerical_to_categorical`` (n_num queries x n_cat keys) and
        ``categorical_to_numerical`` (n_cat x n_num). Scores sum to 1 over keys.

    Raises:
        ValueError: On invalid arguments (see :class:`TabularAttention`), an unknown
            ``pooling``, or inputs that are not a pair of rank-3/4 tensors with equal batch and
            sample axes.
    """

    def __init__(self, num_heads: int, d_model: int, dropout_rate: float = 0.1, ffn_multiplier: float = 2.0,
                 pooling: str = "mean", **kwargs):
        super().__init__(**kwargs)
        check_attention_args(num_heads, d_model, dropout_rate, ffn_multiplier)
        if pooling not in _POOLING:
            raise ValueError(f"pooling must be one of {_POOLING}; received pooling={pooling!r}.")
        self.num_heads = int(num_heads)
        self.d_model = int(d_model)
        self.dropout_rate = float(dropout_rate)
        self.ffn_multiplier = float(ffn_multiplier)
        self.pooling = pooling

    @staticmethod
    def _pair(inputs, what="inputs"):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"MultiResolutionTabularAttention expects {what} as a list or tuple [numerical, categorical]; "
                f"received {type(inputs).__name__}"
                + (f" of length {len(inputs)}" if isinstance(inputs, (list, tuple)) else "")
                + "."
            )
        return inputs[0], inputs[1]

    def build(self, input_shape):
        num_shape, cat_shape = (tuple(s) for s in self._pair(input_shape, "input shapes"))
        for name, shape in (("numerical", num_shape), ("categorical", cat_shape)):
            if len(shape) not in (3, 4) or shape[2] is None:
                raise ValueError(
                    f"The {name} input must be (batch, S, n) or (batch, S, n, d) with known n; received {shape}."
                )
        d, key_dim = self.d_model, self.d_model // self.num_heads
        self._numerical = _StreamProjection(self, "numerical", num_shape, d)
        self._categorical = _StreamProjection(self, "categorical", cat_shape, d)
        shapes = {"numerical": (None, None, num_shape[2], d), "categorical": (None, None, cat_shape[2], d)}
        hidden = max(1, int(round(self.ffn_multiplier * d)))

        def attention(name, query, value):
            layer = keras.layers.MultiHeadAttention(
                self.num_heads, key_dim, dropout=self.dropout_rate, attention_axes=(2,), name=name
            )
            layer.build(shapes[query], shapes[value])
            return layer

        def norm(name, stream):
            layer = keras.layers.LayerNormalization(epsilon=1e-5, name=name)
            layer.build(shapes[stream])
            return layer

        self.numerical_self_attention = attention("numerical_self_attention", "numerical", "numerical")
        self.categorical_self_attention = attention("categorical_self_attention", "categorical", "categorical")
        self.numerical_to_categorical = attention("numerical_to_categorical", "numerical", "categorical")
        self.categorical_to_numerical = attention("categorical_to_numerical", "categorical", "numerical")
        self.numerical_self_norm = norm("numerical_self_norm", "numerical")
        self.categorical_self_norm = norm("categorical_self_norm", "categorical")
        self.numerical_cross_norm = norm("numerical_cross_norm", "numerical")
        self.categorical_cross_norm = norm("categorical_cross_norm", "categorical")
        self.numerical_ffn_norm = norm("numerical_ffn_norm", "numerical")
        self.categorical_ffn_norm = norm("categorical_ffn_norm", "categorical")
        for stream in ("numerical", "categorical"):
            ffn_in = keras.layers.Dense(hidden, activation="gelu", name=f"{stream}_ffn_in")
            ffn_in.build(shapes[stream])
            ffn_out = keras.layers.Dense(d, name=f"{stream}_ffn_out")
            ffn_out.build(shapes[stream][:-1] + (hidden,))
            setattr(self, f"{stream}_ffn_in", ffn_in)
            setattr(self, f"{stream}_ffn_out", ffn_out)
        self.ffn_dropout = keras.layers.Dropout(self.dropout_rate, name="ffn_dropout")
        super().build(input_shape)

    def _ffn(self, stream, x, training):
        hidden = self.ffn_dropout(getattr(self, f"{stream}_ffn_in")(x), training=training)
        return getattr(self, f"{stream}_ffn_norm")(x + getattr(self, f"{stream}_ffn_out")(hidden))

    def call(self, inputs, numerical_mask=None, categorical_mask=None, training=None, return_attention_scores=False):
        numerical, categorical = self._pair(inputs)
        n = self._numerical(numerical)
        c = self._categorical(categorical)
        n_keys = as_bool_mask(numerical_mask)
        c_keys = as_bool_mask(categorical_mask)

        def attend(layer, query, value, key_mask):
            mask = None if key_mask is None else ops.broadcast_to(
                ops.expand_dims(key_mask, 2), tuple(ops.shape(query)[:3]) + (ops.shape(value)[2],)
            )
            with single_key_softmax_ok():  # a table with a single column of a kind
                return layer(query, value, attention_mask=mask, return_attention_scores=True, training=training)

        attended, num_self = attend(self.numerical_self_attention, n, n, n_keys)
        n = self.numerical_self_norm(n + attended)
        attended, cat_self = attend(self.categorical_self_attention, c, c, c_keys)
        c = self.categorical_self_norm(c + attended)
        from_cat, num_to_cat = attend(self.numerical_to_categorical, n, c, c_keys)
        from_num, cat_to_num = attend(self.categorical_to_numerical, c, n, n_keys)
        n = self.numerical_cross_norm(n + from_cat)
        c = self.categorical_cross_norm(c + from_num)
        n = self._ffn("numerical", n, training)
        c = self._ffn("categorical", c, training)
        if self.pooling == "mean":
            n, c = ops.mean(n, axis=2), ops.mean(c, axis=2)
        outputs = (n, c)
        if return_attention_scores:
            scores = {
                "numerical_self": num_self,
                "categorical_self": cat_self,
                "numerical_to_categorical": num_to_cat,
                "categorical_to_numerical": cat_to_num,
            }
            return outputs, scores
        return outputs

    def attention_score_names(self) -> list[str]:
        """Names of the score tensors, in the order ``keras.tree.flatten`` gives them after the outputs."""
        names = ["numerical_self", "categorical_self", "numerical_to_categorical", "categorical_to_numerical"]
        return keras.tree.flatten({name: name for name in names})

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "d_model": self.d_model,
                "dropout_rate": self.dropout_rate,
                "ffn_multiplier": self.ffn_multiplier,
                "pooling": self.pooling,
            }
        )
        return config
