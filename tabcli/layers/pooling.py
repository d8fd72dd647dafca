"""AttentionPooling: a learned query attends over tokens with the stock ``keras.layers.Attention``."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["AttentionPooling"]


@keras.saving.register_keras_serializable(package="tabcli")
class AttentionPooling(keras.layers.Layer):
    """Pools ``T`` tokens into one vector with a learned query (attention pooling).

    A trainable query vector attends over the tokens through ``keras.layers.Attention``
    (Luong-style dot-product attention, Luong et al. 2015), scaled by a learned scalar
    (``use_scale=True``); the result is the attention-weighted sum of the tokens. The
    attention distribution over the tokens says how much each token (feature) contributed to
    the pooled vector -- per row.

    Args:
        dropout_rate: Dropout on the attention distribution (training only), in ``[0, 1)``.
        **kwargs: Standard layer keyword arguments.

    Call arguments:
        tokens: ``(batch, T, d)``.
        mask: Optional boolean ``(batch, T)``; False tokens get zero weight.
        training: Python boolean, whether dropout is active.
        return_attention_scores: If True, also return the weights.

    Returns:
        ``(batch, d)``; with ``return_attention_scores=True`` a tuple ``(pooled, scores)``
        with ``scores`` ``(batch, T)`` summing to 1.

    Raises:
        ValueError: If ``dropout_rate`` is outside ``[0, 1)`` or ``tokens`` is not rank 3.
    """

    def __init__(self, dropout_rate: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(dropout_rate) < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1); received dropout_rate={dropout_rate}.")
        self.dropout_rate = float(dropout_rate)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"AttentionPooling expects tokens (batch, T, d) with known d; received {input_shape}.")
        d = input_shape[-1]
        self.query = self.add_weight(
            name="query", shape=(1, 1, d), initializer=keras.initializers.RandomNormal(stddev=d**-0.5)
        )
        self.attention = keras.layers.Attention(use_scale=True, dropout=self.dropout_rate, name="attention")
        self.attention.build([(None, 1, d), tuple(input_shape)])

    def call(self, tokens, mask=None, training=None, return_attention_scores=False):
        batch = ops.shape(tokens)[0]
        query = ops.broadcast_to(ops.cast(self.query, tokens.dtype), (batch, 1, ops.shape(tokens)[-1]))
        masks = None if mask is None else [None, ops.cast(mask, "bool")]
        pooled, scores = self.attention(
            [query, tokens], mask=masks, return_attention_scores=True, training=training
        )
        pooled, scores = pooled[:, 0, :], scores[:, 0, :]
        if return_attention_scores:
            return pooled, scores
        return pooled

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def attention_score_names(self) -> list[str]:
        """Names of the score tensors returned with ``return_attention_scores=True``."""
        return ["pooling"]

    def get_config(self):
        config = super().get_config()
        config.update({"dropout_rate": self.dropout_rate})
        return config
