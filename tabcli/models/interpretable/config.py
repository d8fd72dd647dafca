"""Typed config of the ``interpretable`` family."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tabcli.models.base_config import AttentionOptions

__all__ = ["InterpretableConfig"]


class InterpretableConfig(AttentionOptions):
    """Feature tokens through stacked InterpretableMultiHeadAttention blocks (the Temporal Fusion
    Transformer's attention: shared values, heads averaged), then pooled by ``keras.layers.Attention``
    with a learned query: every prediction comes with one attention distribution over the features.
    """

    type: Literal["interpretable"] = Field("interpretable", description="Model family.")
    num_blocks: int = Field(2, ge=1, le=8, description="Stacked attention blocks.")

    def search_space(self) -> dict[str, dict]:
        """The attention space and the number of blocks (FT-Transformer: 1-4; here 1-3)."""
        return {**super().search_space(), "model.num_blocks": {"int": [1, 3]}}
