"""Validation and mask helpers shared by tabcli's attention layers."""

from __future__ import annotations

import contextlib
import warnings

from keras import ops

__all__ = ["check_attention_args", "as_bool_mask", "single_key_softmax_ok"]


def check_attention_args(num_heads, d_model, dropout_rate, ffn_multiplier=1.0, heads_name="num_heads") -> None:
    """Raise ValueError, saying what was expected, for invalid attention-layer arguments.

    ``heads_name`` is how the calling layer names its head count (``n_head`` for
    InterpretableMultiHeadAttention, whose seed page uses that name).
    """
    if int(num_heads) < 1:
        raise ValueError(f"{heads_name} must be a positive integer; received {heads_name}={num_heads}.")
    if int(d_model) < 1:
        raise ValueError(f"d_model must be a positive integer; received d_model={d_model}.")
    if int(d_model) % int(num_heads) != 0:
        raise ValueError(
            f"d_model must be divisible by {heads_name} so each head gets d_model / {heads_name} "
            f"channels; received d_model={d_model}, {heads_name}={num_heads}."
        )
    if not 0.0 <= float(dropout_rate) < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1); received dropout_rate={dropout_rate}.")
    if float(ffn_multiplier) <= 0:
        raise ValueError(f"ffn_multiplier must be > 0; received ffn_multiplier={ffn_multiplier}.")


def as_bool_mask(mask):
    """``mask`` as a boolean tensor (True = may be attended to), or None."""
    if mask is None:
        return None
    return ops.cast(mask, "bool")


@contextlib.contextmanager
def single_key_softmax_ok():
    """Silence Keras' warning about a softmax over an axis of length 1.

    Attention over a single key (one feature of a kind, one sample without context) is valid:
    its score is 1 and the output is that key's value.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are using a softmax over axis", category=UserWarning)
        yield
