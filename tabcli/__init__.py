"""tabcli: attention models for tables, from a YAML config to a trained model.

Importing :mod:`tabcli` is cheap: it does not import Keras or TensorFlow, so the command line
answers ``tabcli --help`` at once. The package's Keras layers (``tabcli.layers``) are still
registered with Keras' serialisation registry as soon as Keras is imported, whether Keras was
imported before or after ``tabcli``; so after ``import tabcli`` a saved run's ``model.keras``
reloads with plain ``keras.saving.load_model(path)``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys

from tabcli._version import __version__

__all__ = ["__version__", "load_run", "train", "Run"]

#: The Python API (``tabcli.api``), imported on first use so ``import tabcli`` stays cheap.
_API = ("load_run", "train", "Run")


def __getattr__(name: str):
    if name in _API:
        from tabcli import api

        return getattr(api, name)
    raise AttributeError(f"module 'tabcli' has no attribute {name!r}")

# Keras picks its backend when first imported; tabcli is built on the TensorFlow backend.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ start-up chatter is noise on a user's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _register_layers() -> None:
    # Importing the module runs its `@register_keras_serializable` decorators. If this runs
    # while `tabcli.layers` is itself being imported (it imports keras), the partially
    # initialised module is returned and its decorators register the classes as it finishes.
    importlib.import_module("tabcli.layers")


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the real loader of ``keras``, then registers tabcli's layers."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):  # noqa: D102 - importlib protocol
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: D102 - importlib protocol
        self._loader.exec_module(module)
        _register_layers()

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Post-import hook: registers tabcli's layers once ``keras`` has been imported."""

    def find_spec(self, fullname, path, target=None):  # noqa: D102 - importlib protocol
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # one-shot, and lets the real finders locate keras
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisteringLoader(spec.loader)
        return spec


if "keras" in sys.modules:
    _register_layers()
elif not any(isinstance(finder, _KerasImportHook) for finder in sys.meta_path):
    sys.meta_path.insert(0, _KerasImportHook())
