"""Typed config of the ``multi_resolution`` family."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tabcli.errors import ConfigError
from tabcli.models.base_config import TokenizerOptions

__all__ = ["MultiResolutionConfig"]


class MultiResolutionConfig(TokenizerOptions):
    """Numerical tokens and categorical tokens (one embedding table per column) through stacked
    MultiResolutionTabularAttention blocks (self-attention within each type, cross-attention
    between them); both streams are mean-pooled and fused by a Dense layer.

    Needs at least one numerical and one categorical column: on a table with a single kind of
    column there is nothing to cross-attend, and the model refuses with a clear message
    (use ``tabular_attention`` or ``interpretable`` there).
    """

    type: Literal["multi_resolution"] = Field("multi_resolution", description="Model family.")
    d_model: int = Field(64, ge=4, le=1024, description="Token width.")
    num_heads: int = Field(8, ge=1, le=64, description="Attention heads; must divide d_model.")
    dropout_rate: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on attention, feed-forward and head.")
    num_blocks: int = Field(2, ge=1, le=8, description="Stacked MultiResolutionTabularAttention blocks.")
    ffn_multiplier: float = Field(2.0, gt=0, le=8, description="Feed-forward hidden width as a multiple of d_model.")
    head_units: int = Field(64, ge=1, le=4096, description="Hidden units of the prediction head.")

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        return self

    def check_data(self, spec) -> None:
        if not spec.numerical_names or not spec.categorical_names:
            have = "numerical" if spec.numerical_names else "categorical"
            raise ConfigError(
                f"model.type 'multi_resolution' needs both numerical and categorical columns, but this "
                f"table has only {have} ones ({len(spec.feature_names)}). Use model.type 'tabular_attention' "
                "or 'interpretable', or list some columns under data.categorical / data.numerical."
            )
