"""Typed config of the ``mlp`` baseline family."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tabcli.models.base_config import StrictModel

__all__ = ["MLPConfig"]


class MLPConfig(StrictModel):
    """Numerical values and categorical embeddings, concatenated, through Dense-ReLU-Dropout blocks.

    The baseline every attention model is compared with (Gorishniy et al. 2021 show a tuned
    MLP is a strong one).
    """

    type: Literal["mlp"] = Field("mlp", description="Model family.")
    hidden_units: list[int] = Field(
        default_factory=lambda: [256, 256], min_length=1, description="Units of each hidden Dense layer."
    )
    dropout_rate: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout after each hidden layer.")
    embedding_dim: int = Field(8, ge=1, le=512, description="Width of each categorical column's embedding.")

    def search_space(self) -> dict[str, dict]:
        """Dropout (Gorishniy et al. 2021's MLP space: 0-0.5) and the categorical embedding width."""
        return {"model.dropout_rate": {"float": [0.0, 0.5]}, "model.embedding_dim": {"int": [4, 32], "log": True}}
