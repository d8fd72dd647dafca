"""Dotted config keys (``training.epochs``): reading and setting a value in a nested mapping."""

from __future__ import annotations

from typing import Any

__all__ = ["NotASection", "get_dotted", "set_dotted"]


class NotASection(ValueError):
    """A dotted key goes through a value as if it were a section.

    Attributes:
        prefix: The part of the key that names the value (``"training.epochs"`` in
            ``"training.epochs.max"``).
    """

    def __init__(self, prefix: str):
        super().__init__(f"'{prefix}' is a value, not a section")
        self.prefix = prefix


def get_dotted(data: Any, key: str, default: Any = None) -> Any:
    """``data[a][b][c]`` for ``key = "a.b.c"``, or ``default`` where a part is missing or the
    path runs through a value."""
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return default
        data = data[part]
    return data


def set_dotted(data: dict, key: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``key = "a.b.c"``, creating missing (or null) sections.

    Raises:
        NotASection: If a part of the key on the way holds a value, not a section.
    """
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise NotASection(".".join(parts[:depth + 1]))
        node = child
    node[parts[-1]] = value
