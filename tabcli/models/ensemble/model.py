"""Builder of the ``ensemble`` family."""

from __future__ import annotations

import keras
import numpy as np

from tabcli.layers import SparseAttentionWeighting
from tabcli.models.ensemble.config import EnsembleConfig
from tabcli.models.inputs import assign_context, make_inputs, prediction_head
from tabcli.models.spec import ModelSpec

__all__ = ["build", "attention_manifest", "branch_names", "WEIGHTING_LAYER"]

WEIGHTING_LAYER = "branch_weighting"


def _family(branch_type: str):
    from tabcli.models.registry import family

    return family(branch_type).builder_module()


def branch_names(config: EnsembleConfig) -> list[str]:
    """Names of the branches, e.g. ``["b0_tabular_attention", "b1_mlp"]`` (also their layer prefixes)."""
    return [f"b{i}_{branch.type}" for i, branch in enumerate(config.branches)]


def build(config: EnsembleConfig, spec: ModelSpec, context: dict[str, np.ndarray] | None = None,
          candidates=None) -> keras.Model:
    """Each branch's representation -> Dense(d_model) -> SparseAttentionWeighting -> prediction head.

    Branch layers are prefixed with the branch name (``b0_tabular_attention_...``); the
    weighting layer is named ``branch_weighting``, and its ``module_weights`` are the learned
    branch weights.

    Returns:
        Uncompiled ``keras.Model``.
    """
    inputs = make_inputs(spec)
    projected, setters = [], {}
    for name, branch in zip(branch_names(config), config.branches):
        prefix = f"{name}_"
        h, branch_setters = _family(branch.type).representation(branch, spec, inputs, context, prefix, candidates)
        setters.update(branch_setters)
        projected.append(keras.layers.Dense(config.d_model, name=f"{prefix}projection")(h))
    if len(projected) == 1:
        combined = projected[0]
    else:
        combined, _weights = SparseAttentionWeighting(
            len(projected), config.temperature, config.normalizer, name=WEIGHTING_LAYER
        )(projected, return_attention_scores=True)
    model = keras.Model(inputs, prediction_head(combined, spec, config.head_units, config.dropout_rate), name="ensemble_model")
    assign_context(model, setters)
    return model


def attention_manifest(config: EnsembleConfig, spec: ModelSpec, context_ids: list, prefix: str = "") -> dict:
    """Every branch's attention scores, plus the branch weights."""
    manifest = {}
    names = branch_names(config)
    for name, branch in zip(names, config.branches):
        manifest.update(_family(branch.type).attention_manifest(branch, spec, context_ids, f"{prefix}{name}_"))
    if len(names) > 1:
        manifest[f"{prefix}{WEIGHTING_LAYER}"] = {
            "module_weights": {
                "kind": "SparseAttentionWeighting branch weights (the same for every row)",
                "axes": ["row", "branch"],
                "labels": {"branch": names},
            }
        }
    return manifest
