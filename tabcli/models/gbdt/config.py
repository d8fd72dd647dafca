"""Typed config of the ``gbdt`` baseline family."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tabcli.models.base_config import StrictModel

__all__ = ["GBDTConfig"]


class GBDTConfig(StrictModel):
    """scikit-learn's HistGradientBoostingClassifier/Regressor (LightGBM-style histogram gradient
    boosting, Ke et al. 2017) with native categorical support, early-stopped on the validation rows.

    It goes through the same data loading, split, preprocessing and metrics as the neural
    families, so leaderboards compare like with like. ``training.*`` settings do not apply.
    """

    type: Literal["gbdt"] = Field("gbdt", description="Model family.")
    learning_rate: float = Field(0.1, gt=0, le=1, description="Shrinkage of each tree.")
    max_iter: int = Field(1000, ge=1, le=100_000, description="Maximum boosting iterations (trees per class).")
    max_leaf_nodes: int = Field(31, ge=2, le=4096, description="Leaves per tree.")
    min_samples_leaf: int = Field(20, ge=1, description="Minimum rows per leaf.")
    l2_regularization: float = Field(0.0, ge=0, description="L2 penalty on leaf values.")
    n_iter_no_change: int = Field(20, ge=1, description="Early stopping patience, in iterations, on the validation rows.")

    def search_space(self) -> dict[str, dict]:
        """After the LightGBM space of Gorishniy et al. 2021 (learning rate, leaves, minimum rows
        per leaf, L2 penalty, all on log scales)."""
        return {
            "model.learning_rate": {"float": [0.01, 0.3], "log": True},
            "model.max_leaf_nodes": {"int": [8, 128], "log": True},
            "model.min_samples_leaf": {"int": [2, 100], "log": True},
            "model.l2_regularization": {"float": [1e-6, 10.0], "log": True},
        }
