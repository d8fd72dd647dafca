"""The ``tabcli`` command line (Typer).

Only Typer is imported at start-up; each command imports what it needs (TensorFlow only once
training starts), so ``tabcli --help`` answers at once.
"""

from __future__ import annotations

from tabcli.cli.application import EXIT_CODES, app, main
from tabcli.cli import run_commands, workflow_commands  # noqa: F401,E402 - each registers its commands on ``app``

__all__ = ["app", "main", "EXIT_CODES"]
