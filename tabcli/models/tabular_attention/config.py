"""Typed config of the ``tabular_attention`` family."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tabcli.models.base_config import TokenizerOptions

__all__ = ["TabularAttentionConfig"]


class TabularAttentionConfig(TokenizerOptions):
    """Feature tokenizer -> TabularAttention -> prediction head.

    Every row becomes ``F`` feature tokens (a linear embedding per numerical column, an
    embedding table per categorical column); TabularAttention runs inter-feature attention
    over them, then inter-sample attention between the row and ``context_rows`` training rows
    stored in the model (SAINT-style intersample attention; a row's prediction depends only on
    the row itself and those stored rows, never on the rest of its batch).
    """

    type: Literal["tabular_attention"] = Field("tabular_attention", description="Model family.")
    d_model: int = Field(64, ge=4, le=1024, description="Width of every feature token and of the attention layers.")
    num_heads: int = Field(8, ge=1, le=64, description="Attention heads; must divide d_model.")
    dropout_rate: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on attention scores, feed-forward and head.")
    num_feature_blocks: int = Field(2, ge=1, le=8, description="Stacked inter-feature attention blocks (stage 1).")
    ffn_multiplier: float = Field(2.0, gt=0, le=8, description="Feed-forward hidden width as a multiple of d_model.")
    pooling: Literal["mean", "cls"] = Field(
        "mean", description="How a row's feature tokens are pooled before inter-sample attention: mean, or a [CLS] token."
    )
    context_rows: int = Field(
        64, ge=0, le=4096,
        description="Training rows stored in the model as inter-sample attention context (0: a row attends only to itself).",
    )
    head_units: int = Field(64, ge=1, le=4096, description="Hidden units of the prediction head.")

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads}); "
                f"e.g. num_heads: {max(h for h in (1, 2, 4, 8, 16) if self.d_model % h == 0)}"
            )
        return self
