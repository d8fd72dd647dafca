"""Import TensorFlow/Keras without the C++ start-up lines TensorFlow writes to stderr."""

from __future__ import annotations

import os
import sys
import tempfile

__all__ = ["import_keras_quietly"]


def import_keras_quietly():
    """Import and return ``keras``, hiding what TensorFlow's C++ core prints while loading.

    TensorFlow writes oneDNN/absl notices to file descriptor 2 before any Python logging
    setting applies, so they are caught by pointing fd 2 at a temporary file for the import.
    If the import fails, the captured text is written back to stderr with the exception.
    """
    if "keras" in sys.modules:
        _quiet_python_logger()
        return sys.modules["keras"]
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (some embedded environments)
        import keras

        _quiet_python_logger()
        return keras
    with tempfile.TemporaryFile(mode="w+b") as captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            import keras
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
