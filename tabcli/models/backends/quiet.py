"""Import TensorFlow/Keras without the C++ start-up lines TensorFlow writes to stderr."""

from __future__ import annotations

import importlib.abc
import os
import sys
import tempfile

__all__ = ["import_keras_quietly"]


class _WithoutPyplot(importlib.abc.MetaPathFinder):
    """Refuses ``matplotlib.pyplot`` while Keras is imported.

    ``import keras`` imports ``matplotlib.pyplot`` (about an eighth of Keras' import time,
    docs/benchmarks.md) for ``keras.visualization``, an image-gallery helper tabcli never
    calls, and falls back to ``plt = None`` when that import fails. Refusing it during Keras'
    import shortens the start-up of every command that loads a model; tabcli's own plots
    import ``pyplot`` afterwards as usual.
    """

    def find_spec(self, fullname, path, target=None):  # noqa: D102 - importlib protocol
        if fullname == "matplotlib.pyplot":
            raise ImportError("matplotlib.pyplot is not needed while Keras is imported")
        return None


def _import_keras():
    if "matplotlib.pyplot" in sys.modules:
        import keras

        return keras
    finder = _WithoutPyplot()
    sys.meta_path.insert(0, finder)
    try:
        import keras
    finally:
        sys.meta_path.remove(finder)
    return keras


def import_keras_quietly():
    """Import and return ``keras``, hiding what TensorFlow's C++ core prints while loading.

    TensorFlow writes oneDNN/absl notices to file descriptor 2 before any Python logging
    setting applies, so they are caught by pointing fd 2 at a temporary file for the import.
    If the import fails, the captured text is written back to stderr with the exception.
    ``matplotlib.pyplot`` is kept out of Keras' import (:class:`_WithoutPyplot`).
    """
    if "keras" in sys.modules:
        _quiet_python_logger()
        return sys.modules["keras"]
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (some embedded environments)
        keras = _import_keras()
        _quiet_python_logger()
        return keras
    with tempfile.TemporaryFile(mode="w+b") as captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            keras = _import_keras()
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    _quiet_python_logger()
    return keras


def _quiet_python_logger() -> None:
    """TensorFlow's Python logger warns about tf.function "retracing" whenever a process builds
    several models or predicts batches of new sizes (tune trials, the API, the server): by
    design here, and not the user's concern."""
    try:
        import tensorflow as tf
    except ImportError:
        return
    tf.get_logger().setLevel("ERROR")
