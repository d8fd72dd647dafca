"""How a model of each kind is fitted, saved, loaded and asked for predictions: one
:class:`~tabcli.models.backends.base.Backend` per framework, shared by every family that uses it."""

from __future__ import annotations

import importlib

__all__ = ["backend", "BACKENDS"]

#: Backend name -> ``"module:Class"``, imported on first use (the Keras one imports TensorFlow).
BACKENDS = {
    "keras": "tabcli.models.backends.keras_backend:KerasBackend",
    "sklearn": "tabcli.models.backends.sklearn_backend:SklearnBackend",
}
_INSTANCES: dict = {}


def backend(family):
    """The :class:`~tabcli.models.backends.base.Backend` of ``family`` (a
    :class:`~tabcli.models.registry.Family`; one instance per family and process).

    Raises:
        KeyError: If ``family.backend`` is not in :data:`BACKENDS`.
    """
    if family.name not in _INSTANCES:
        module, _, cls = BACKENDS[family.backend].partition(":")
        _INSTANCES[family.name] = getattr(importlib.import_module(module), cls)(family)
    return _INSTANCES[family.name]
