"""Typed config of the ``multi_resolution`` family."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tabcli.errors import ConfigError
from tabcli.models.base_config import AttentionOptions

__all__ = ["MultiResolutionConfig"]


class MultiResolutionConfig(AttentionOptions):
    """Numerical tokens and categorical tokens (one embedding table per column) through stacked
    MultiResolutionTabularAttention blocks (self-attention within each type, cross-attention
    between them); both streams are mean-pooled and fused by a Dense layer.

    Needs at least one numerical and one categorical column: on a table with a single kind of
    column there is nothing to cross-attend, and the model refuses with a clear message
    (use ``tabular_attention`` or ``interpretable`` there).
    """

    type: Literal["multi_resolution"] = Field("multi_resolution", description="Model family.")
    num_blocks: int = Field(2, ge=1, le=8, description="Stacked MultiResolutionTabularAttention blocks.")

    def search_space(self) -> dict[str, dict]:
        """The attention space and the number of blocks (FT-Transformer: 1-4; here 1-3)."""
        return {**super().search_space(), "model.num_blocks": {"int": [1, 3]}}

    def check_data(self, spec) -> None:
        if not spec.numerical_names or not spec.categorical_names:
            have = "numerical" if spec.numerical_names else "categorical"
            raise ConfigError(
                f"model.type 'multi_resolution' needs both numerical and categorical columns, but this "
                f"table has only {have} ones ({len(spec.feature_names)}). Use model.type 'tabular_attention' "
                "or 'interpretable', or list some columns under data.categorical / data.numerical."
            )
