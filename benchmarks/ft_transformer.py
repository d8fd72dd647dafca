"""Reference FT-Transformer built from stock Keras layers, for the benchmark only.

Gorishniy, Rubachev, Khrulkov & Babenko (2021), "Revisiting Deep Learning Models for Tabular
Data", §3.3 and the authors' code (``rtdl``, ``bin/ft_transformer.py``):

* Feature tokenizer: numerical column ``j`` with value ``x_j`` becomes ``x_j * W_j + b_j``
  (one weight and one bias vector per column: ``keras.layers.EinsumDense``); categorical column
  ``j`` becomes ``E_j[code] + b_j`` (one ``keras.layers.Embedding`` per column).
* [CLS] token: as in the authors' code, a constant 1 is appended to the numerical values, so
  the [CLS] token is the learned vector ``W_cls + b_cls``.
* ``num_blocks`` pre-norm Transformer blocks: ``x + MHA(LN(x))`` then ``x + FFN(LN(x))``, with
  the first block's attention LayerNorm dropped (the paper's "prenormalization" detail), a
  ReGLU feed-forward of width ``ffn_factor * d_model``, attention dropout and FFN dropout.
* Head on the [CLS] token: LayerNorm -> ReLU -> Dense(outputs).

Inputs are tabcli's preprocessed arrays (quantile-normal numerics fitted on train, ordinal
codes), exactly what tabcli's families receive, so the comparison isolates the architecture.
Only ``keras.layers`` and ``keras.ops`` are used; no tabcli layer.
"""

from __future__ import annotations

import keras
from keras import ops

from tabcli.models.inputs import make_inputs
from tabcli.models.spec import ModelSpec

__all__ = ["build_ft_transformer"]


def _reglu(x):
    """ReGLU (Shazeer 2020): split the last axis in halves ``a, b`` -> ``a * relu(b)``."""
    a, b = ops.split(x, 2, axis=-1)
    return a * ops.relu(b)


def build_ft_transformer(
    spec: ModelSpec,
    d_model: int = 64,
    num_blocks: int = 2,
    num_heads: int = 8,
    attention_dropout: float = 0.2,
    ffn_dropout: float = 0.1,
    ffn_factor: float = 4 / 3,
) -> keras.Model:
    """FT-Transformer for tabcli's inputs (see the module docstring for the architecture).

    Args:
        spec: Input/output layout (tabcli's :class:`~tabcli.models.spec.ModelSpec`).
        d_model: Token width (the paper's default is 192; the benchmark uses tabcli's width).
        num_blocks: Transformer blocks (paper default 3).
        num_heads: Attention heads; must divide ``d_model``.
        attention_dropout: Dropout on attention probabilities (paper default 0.2).
        ffn_dropout: Dropout inside the feed-forward block (paper default 0.1).
        ffn_factor: Feed-forward hidden width as a multiple of ``d_model`` (paper: 4/3 with ReGLU).

    Returns:
        An uncompiled ``keras.Model`` taking ``{"numerical": (batch, n_num), "categorical":
        (batch, n_cat)}`` (those present) and returning ``(batch, num_outputs)`` with the task's
        output activation (sigmoid, softmax or linear), like tabcli's families.

    Raises:
        ValueError: If ``num_heads`` does not divide ``d_model``.
    """
    if d_model % num_heads:
        raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads}).")
    inputs = make_inputs(spec)
    parts = []
    anchor = next(iter(inputs.values()))
    ones = keras.layers.Lambda(lambda t: ops.ones_like(ops.cast(t[:, :1], "float32")), name="cls_one")(anchor)
    numerical = ones if "numerical" not in inputs else keras.layers.Concatenate(name="with_cls")([inputs["numerical"], ones])
    parts.append(
        keras.layers.EinsumDense("bn,nd->bnd", output_shape=(numerical.shape[1], d_model), bias_axes="nd",
                                 kernel_initializer=keras.initializers.RandomUniform(-(d_model**-0.5), d_model**-0.5),
                                 name="numerical_tokens")(numerical)
    )
    if "categorical" in inputs:
        codes = inputs["categorical"]
        columns = []
        for j, cardinality in enumerate(spec.cardinalities):
            code = keras.layers.Lambda(lambda t, j=j: t[:, j : j + 1], name=f"code_{j}")(codes)
            columns.append(keras.layers.Embedding(cardinality, d_model, name=f"categorical_tokens_{j}")(code))
        parts.append(columns[0] if len(columns) == 1 else keras.layers.Concatenate(axis=1, name="categorical_tokens")(columns))
    # [CLS] last among the numerical tokens; move it to the end of the sequence.
    tokens = parts[0] if len(parts) == 1 else keras.layers.Concatenate(axis=1, name="tokens")([parts[1], parts[0]])
    key_dim = d_model // num_heads
    hidden = int(round(ffn_factor * d_model))
    x = tokens
    for i in range(num_blocks):
        normed = x if i == 0 else keras.layers.LayerNormalization(name=f"block_{i}_attention_norm")(x)
        attended = keras.layers.MultiHeadAttention(num_heads, key_dim, dropout=attention_dropout, name=f"block_{i}_attention")(
            normed, normed
        )
        x = keras.layers.Add(name=f"block_{i}_attention_residual")([x, attended])
        normed = keras.layers.LayerNormalization(name=f"block_{i}_ffn_norm")(x)
        h = keras.layers.Dense(2 * hidden, name=f"block_{i}_ffn_in")(normed)
        h = keras.layers.Lambda(_reglu, name=f"block_{i}_reglu")(h)
        h = keras.layers.Dropout(ffn_dropout, name=f"block_{i}_ffn_dropout")(h)
        h = keras.layers.Dense(d_model, name=f"block_{i}_ffn_out")(h)
        x = keras.layers.Add(name=f"block_{i}_ffn_residual")([x, h])
    cls = keras.layers.Lambda(lambda t: t[:, -1, :], name="cls_token")(x)
    cls = keras.layers.LayerNormalization(name="head_norm")(cls)
    cls = keras.layers.Activation("relu", name="head_relu")(cls)
    outputs = keras.layers.Dense(spec.num_outputs, activation=spec.output_activation, dtype="float32", name="prediction")(cls)
    return keras.Model(inputs, outputs, name="ft_transformer_reference")
