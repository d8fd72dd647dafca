"""Errors tabcli raises for problems the user can fix (bad config, missing file, bad column).

The command line prints these as one paragraph, without a traceback, and exits non-zero.
"""

from __future__ import annotations

__all__ = ["TabcliError", "ConfigError", "DataError", "TrainingError"]


class TabcliError(Exception):
    """A problem with the user's input, explained in the message (which says how to fix it).

    Attributes:
        exit_code: Process exit code the CLI uses for this error.
    """

    exit_code = 2


class ConfigError(TabcliError):
    """The experiment config is invalid: unreadable YAML, an unknown key, a bad value."""


class DataError(TabcliError):
    """A data file cannot be read or does not match the config (missing column, bad target)."""


class TrainingError(TabcliError):
    """Training could not finish (e.g. the loss became NaN); the message suggests a fix."""

    exit_code = 1
