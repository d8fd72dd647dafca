"""The model families: ``model.type`` -> one :class:`Family` entry, registered once.

Everything that differs between families is reached through the entry: its typed config (the
pydantic union of ``model`` configs is built from this registry), its builder module, and its
:class:`~tabcli.models.backends.base.Backend` (how a model of that kind is fitted, saved,
loaded and asked for predictions). Adding a family is one folder (``config.py`` with the typed
config, ``model.py`` with the builder) and one line in :data:`FAMILIES`.

Importing this module imports neither pydantic configs nor Keras: ``tabcli --help`` lists the
families from it.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from tabcli.models.spec import ModelSpec

__all__ = ["Family", "FAMILIES", "family", "register", "model_config_union", "build_model", "attention_manifest"]


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: ``model.type`` in a config.
        config: ``"module:Class"`` of its typed pydantic config (imported on first use).
        builder: The module that makes its models: for the ``keras`` backend it defines
            ``build(config, spec, context, candidates) -> keras.Model`` and
            ``attention_manifest(config, spec, context_ids) -> dict``; for ``sklearn``,
            ``fit``, ``predict_raw`` and ``parameter_count``.
        backend: ``"keras"`` or ``"sklearn"`` (:mod:`tabcli.models.backends`).
        summary: One line for ``--help`` and the docs.
        branch: Whether an ``ensemble`` may hold it as a branch.
    """

    name: str
    config: str
    builder: str
    backend: str
    summary: str
    branch: bool = False

    @property
    def config_class(self) -> type:
        """The pydantic config class (imports its module)."""
        module, _, name = self.config.partition(":")
        return getattr(importlib.import_module(module), name)

    def builder_module(self):
        """The builder module (imports it; a Keras family's imports Keras)."""
        return importlib.import_module(self.builder)

    @property
    def implementation(self):
        """The family's :class:`~tabcli.models.backends.base.Backend` instance."""
        from tabcli.models.backends import backend

        return backend(self)


def _keras(name: str, config_class: str, summary: str, branch: bool = True) -> Family:
    return Family(name, f"tabcli.models.{name}.config:{config_class}", f"tabcli.models.{name}.model", "keras", summary, branch)


#: Every family, by ``model.type``; the first is the default.
FAMILIES: dict[str, Family] = {entry.name: entry for entry in (
    _keras("tabular_attention", "TabularAttentionConfig",
           "per-column tokens, self-attention across columns, then each row's nearest training rows (TabR) "
           "or stored context rows (SAINT)"),
    _keras("multi_resolution", "MultiResolutionConfig",
           "self-attention within numerical and within categorical tokens, cross-attention between them, fused"),
    _keras("interpretable", "InterpretableConfig",
           "interpretable multi-head attention (Temporal Fusion Transformer), pooled by one attention over the columns"),
    _keras("ensemble", "EnsembleConfig", "several families as branches, combined by learned sparse attention weights",
           branch=False),
    _keras("mlp", "MLPConfig", "numerical values and categorical embeddings through Dense blocks (no attention)"),
    Family("gbdt", "tabcli.models.gbdt.config:GBDTConfig", "tabcli.models.gbdt.model", "sklearn",
           "scikit-learn histogram gradient boosting, the baseline trained beside the others"),
)}


def register(entry: Family) -> Family:
    """Add ``entry`` to :data:`FAMILIES` (its config joins the ``model`` union of configs
    validated after this call; ensemble branches stay the families registered at import).
    Returns it.

    Raises:
        ValueError: If a family of that name is already registered.
    """
    if entry.name in FAMILIES:
        raise ValueError(f"A model family named '{entry.name}' is already registered.")
    FAMILIES[entry.name] = entry
    schema = sys.modules.get("tabcli.config.experiment")
    if schema is not None:  # configs validated from now on may name the new family
        schema.rebuild_model_union()
    return entry


def family(name: str) -> Family:
    """The registered family ``name``.

    Raises:
        KeyError: If no family of that name is registered (the config schema prevents this for
            a validated config).
    """
    return FAMILIES[name]


def model_config_union(branches_only: bool = False):
    """``Annotated[Union[...], Field(discriminator="type")]`` of the registered families'
    configs (those that may be ensemble branches, with ``branches_only``)."""
    from typing import Annotated, Union

    from pydantic import Field

    classes = tuple(f.config_class for f in FAMILIES.values() if f.branch or not branches_only)
    return Annotated[Union[classes], Field(discriminator="type")]


def build_model(config, spec: ModelSpec, context: dict[str, np.ndarray] | None = None, candidates=None):
    """Build the Keras model of ``config.type`` for data shaped as ``spec``.

    Args:
        config: The family's typed config (``config.model``).
        spec: Input/output shapes.
        context: Preprocessed training rows ``{"numerical": (M, n), "categorical": (M, n)}``
            that families with context inter-sample attention store in the model; others ignore it.
        candidates: :class:`~tabcli.models.candidates.Candidates`, the training rows a retrieval
            model stores (labels and ids) and retrieves from; others ignore them.

    Returns:
        An uncompiled ``keras.Model`` taking ``{"numerical", "categorical"}`` (those present)
        and returning probabilities (classification) or standardised values (regression).

    Raises:
        KeyError: If ``config.type`` is not a known family (the config schema prevents this).
    """
    return family(config.type).builder_module().build(config, spec, context, candidates)


def attention_manifest(config, spec: ModelSpec, context_ids: list) -> dict:
    """Axes and labels of every attention score of the model ``build_model`` makes.

    Returns:
        ``{layer name: {score name: {"kind", "axes", "labels", "squeeze"?}}}``; empty for a
        model without attention layers. ``axes`` are the axes of the model's score tensor;
        axes listed in ``squeeze`` have length 1 and are dropped when saved.
    """
    return family(config.type).builder_module().attention_manifest(config, spec, context_ids)
