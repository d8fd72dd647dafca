"""Typed config of the ``ensemble`` family."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tabcli.models.base_config import StrictModel
from tabcli.models.interpretable.config import InterpretableConfig
from tabcli.models.mlp.config import MLPConfig
from tabcli.models.registry import model_config_union
from tabcli.models.tabular_attention.config import TabularAttentionConfig

__all__ = ["EnsembleConfig", "BranchConfig"]

#: The registered families an ensemble may hold as branches (``Family.branch``).
BranchConfig = model_config_union(branches_only=True)


def _default_branches():
    return [
        TabularAttentionConfig(d_model=32, num_heads=4),
        InterpretableConfig(d_model=32, num_heads=4),
        MLPConfig(),
    ]


class EnsembleConfig(StrictModel):
    """Several branches (any other family), each reduced to one ``d_model`` vector, combined by
    SparseAttentionWeighting: learned branch weights ``normalizer(w / temperature)``, written to
    ``branch_weights.json`` in the run directory.

    ``branches`` lists family configs; a bare family name (``- mlp``) means that family's defaults.
    """

    type: Literal["ensemble"] = Field("ensemble", description="Model family.")
    branches: list[BranchConfig] = Field(
        default_factory=_default_branches, min_length=1, description="Branch models (family configs or names)."
    )
    d_model: int = Field(64, ge=4, le=1024, description="Width each branch is projected to before weighting.")
    temperature: float = Field(1.0, gt=0, le=100, description="SparseAttentionWeighting temperature.")
    normalizer: Literal["softmax", "sparsemax"] = Field(
        "softmax", description="Branch-weight normaliser; sparsemax can switch branches off exactly."
    )
    dropout_rate: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout in the head.")
    head_units: int = Field(64, ge=1, le=4096, description="Hidden units of the prediction head.")

    @field_validator("branches", mode="before")
    @classmethod
    def _names_are_default_configs(cls, value):
        if isinstance(value, list):
            return [{"type": item} if isinstance(item, str) else item for item in value]
        return value

    def search_space(self) -> dict[str, dict]:
        """The combiner only (branch settings stay as written): width, temperature, head dropout."""
        return {
            "model.d_model": {"choice": [32, 64, 128]},
            "model.temperature": {"float": [0.1, 10.0], "log": True},
            "model.dropout_rate": {"float": [0.0, 0.5]},
        }

    def check_data(self, spec) -> None:
        for branch in self.branches:
            branch.check_data(spec)
