"""Start `tabcli serve`: every refusal (no such run, run not completed, missing extra, port taken)
is a :class:`~tabcli.errors.ConfigError` before anything listens."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from tabcli.errors import ConfigError

__all__ = ["serve_run"]


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(f"Port {port} on {host} is already in use (another server?). Choose another with --port, "
                                  "or stop the process that holds it.") from None
            raise ConfigError(f"Cannot listen on {host}:{port}: {error.strerror}. Check --host and --port.") from None


def serve_run(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
              max_rows: int = 10_000, console=None) -> None:
    """Check the run and the port, then serve until Ctrl-C.

    Raises:
        ConfigError: If FastAPI/uvicorn are not installed, ``run_dir`` is not a completed run,
            or ``host:port`` cannot be bound.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise ConfigError(f"tabcli serve needs FastAPI and uvicorn ({error.name} is missing): "
                          "pip install 'tabcli[serve]'.") from None
    from tabcli.runs.run import LoadedRun

    run = LoadedRun(run_dir)  # refuses a missing, running, failed or incomplete run with its reason
    _check_port(host, port)
    say = console.print if console is not None else (lambda *a, **k: None)
    banner = f"serving {run_dir} on http://{host}:{port} ({workers} worker(s)); docs at http://{host}:{port}/docs; Ctrl-C stops"
    if workers == 1:
        from tabcli.serve.app import create_app

        app = create_app(run_dir, max_rows)  # loads the model: an unreadable one is refused before the banner
        say(banner)
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    run.model  # noqa: B018 - each worker loads its own; an unreadable model is refused here, once, not per worker
    say(banner)
    from tabcli.batch.runner import threads_per_job

    os.environ.update(TABCLI_SERVE_RUN=str(Path(run_dir).resolve()), TABCLI_SERVE_MAX_ROWS=str(max_rows),
                      TABCLI_NUM_THREADS=str(threads_per_job(workers)))
    uvicorn.run("tabcli.serve.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning")
