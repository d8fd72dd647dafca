"""Typed config of the ``interpretable`` family."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tabcli.models.base_config import TokenizerOptions

__all__ = ["InterpretableConfig"]


class InterpretableConfig(TokenizerOptions):
    """Feature tokens through stacked InterpretableMultiHeadAttention blocks (the Temporal Fusion
    Transformer's attention: shared values, heads averaged), then pooled by ``keras.layers.Attention``
    with a learned query: every prediction comes with one attention distribution over the features.
    """

    type: Literal["interpretable"] = Field("interpretable", description="Model family.")
    d_model: int = Field(64, ge=4, le=1024, description="Token width.")
    num_heads: int = Field(8, ge=1, le=64, description="Attention heads; must divide d_model.")
    dropout_rate: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on attention, feed-forward and head.")
    num_blocks: int = Field(2, ge=1, le=8, description="Stacked attention blocks.")
    ffn_multiplier: float = Field(2.0, gt=0, le=8, description="Feed-forward hidden width as a multiple of d_model.")
    head_units: int = Field(64, ge=1, le=4096, description="Hidden units of the prediction head.")

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        return self
