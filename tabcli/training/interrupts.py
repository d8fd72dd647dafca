"""Stop requests (Ctrl-C, SIGTERM) that training honours even when the first KeyboardInterrupt is lost.

Python runs a signal handler between bytecodes of the main thread, wherever that is. When it is
inside a finalizer (``__del__``, a weakref callback: TensorFlow has many), the KeyboardInterrupt
the handler raises is printed as "Exception ignored" and dropped, and training goes on. The
handler here also records the request, and training checks it after every batch
(:func:`raise_if_requested`), so a Ctrl-C always stops a run. No TensorFlow import: the CLI
installs the handlers at start-up.
"""

from __future__ import annotations

import signal

__all__ = ["install_handlers", "raise_if_requested", "request_stop"]

_requested = False


def request_stop(signum=None, frame=None):
    """Record a stop request and raise KeyboardInterrupt (a signal handler)."""
    global _requested
    _requested = True
    raise KeyboardInterrupt


def install_handlers() -> None:
    """Make SIGINT and SIGTERM call :func:`request_stop` (SIGTERM, e.g. a cancelled CI job, is
    handled as Ctrl-C). Must be called from the main thread."""
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def raise_if_requested() -> None:
    """Raise KeyboardInterrupt if a stop was requested."""
    if _requested:
        raise KeyboardInterrupt
