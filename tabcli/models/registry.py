"""``model.type`` -> the module that builds that family (imported only when needed)."""

from __future__ import annotations

import importlib

import numpy as np

from tabcli.models.spec import ModelSpec

__all__ = ["FAMILIES", "build_model", "attention_manifest"]

#: Each family's builder module; each defines ``build(config, spec, context, candidates) -> keras.Model``
#: and ``attention_manifest(config, spec, context_ids)``.
FAMILIES = {
    "tabular_attention": "tabcli.models.tabular_attention.model",
    "multi_resolution": "tabcli.models.multi_resolution.model",
    "interpretable": "tabcli.models.interpretable.model",
    "ensemble": "tabcli.models.ensemble.model",
    "mlp": "tabcli.models.mlp.model",
}


def build_model(config, spec: ModelSpec, context: dict[str, np.ndarray] | None = None, candidates=None):
    """Build the Keras model of ``config.type`` for data shaped as ``spec``.

    Args:
        config: The family's typed config (``config.model``).
        spec: Input/output shapes.
        context: Preprocessed training rows ``{"numerical": (M, n), "categorical": (M, n)}``
            that families with context inter-sample attention store in the model; others ignore it.
        candidates: :class:`~tabcli.models.retrieval.Candidates`, the training rows a retrieval
            model stores (labels and ids) and retrieves from; others ignore them.

    Returns:
        An uncompiled ``keras.Model`` taking ``{"numerical", "categorical"}`` (those present)
        and returning probabilities (classification) or standardised values (regression).

    Raises:
        KeyError: If ``config.type`` is not a known family (the config schema prevents this).
    """
    module = importlib.import_module(FAMILIES[config.type])
    return module.build(config, spec, context, candidates)


def attention_manifest(config, spec: ModelSpec, context_ids: list) -> dict:
    """Axes and labels of every attention score of the model ``build_model`` makes.

    Returns:
        ``{layer name: {score name: {"kind", "axes", "labels", "squeeze"?}}}``; empty for a
        model without attention layers. ``axes`` are the axes of the model's score tensor;
        axes listed in ``squeeze`` have length 1 and are dropped when saved.
    """
    module = importlib.import_module(FAMILIES[config.type])
    return module.attention_manifest(config, spec, context_ids)
