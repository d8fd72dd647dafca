"""Typed config of the ``tabular_attention`` family."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tabcli.models.base_config import AttentionOptions

__all__ = ["TabularAttentionConfig"]


class TabularAttentionConfig(AttentionOptions):
    """Feature tokenizer -> TabularAttention -> prediction head.

    Every row becomes ``F`` feature tokens (a periodic or linear embedding per numerical column,
    an embedding table per categorical column); TabularAttention runs inter-feature attention
    over them, then inter-sample attention between the row and ``context_rows`` training rows
    stored in the model (SAINT-style intersample attention; a row's prediction depends only on
    the row itself and those stored rows, never on the rest of its batch).
    """

    type: Literal["tabular_attention"] = Field("tabular_attention", description="Model family.")
    num_feature_blocks: int = Field(2, ge=1, le=8, description="Stacked inter-feature attention blocks (stage 1).")
    pooling: Literal["mean", "cls"] = Field(
        "mean", description="How a row's feature tokens are pooled before inter-sample attention: mean, or a [CLS] token."
    )
    context_rows: int = Field(
        64, ge=0, le=4096,
        description="Training rows stored in the model as inter-sample attention context (0: a row attends only to itself).",
    )
