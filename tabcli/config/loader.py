"""Load a YAML config, apply ``--set`` overrides, resolve paths, validate, explain errors."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml
from pydantic import BaseModel, ValidationError

from tabcli.config.dotted import NotASection, set_dotted
from tabcli.config.experiment import PATH_KEYS, ExperimentConfig
from tabcli.errors import ConfigError

__all__ = ["load_config", "parse_override", "apply_overrides", "resolve_paths", "validate_config", "config_to_yaml"]


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one ``KEY=VALUE`` override; the value is read as YAML (``5`` is an int,
    ``[a, b]`` a list, ``null`` None, ``true`` a bool).

    Raises:
        ConfigError: If there is no ``=``, the key is empty, or the value is not valid YAML.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"--set expects KEY=VALUE with a dotted key, e.g. --set training.epochs=5; received '{text}'."
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {key}: the value '{raw}' is not valid YAML ({error}).") from error
    return key.split("."), value


def apply_overrides(raw: dict, overrides: Iterable[str], base: Path | None = None) -> dict:
    """Apply ``KEY=VALUE`` overrides to a raw config dict (in place; also returned).

    Path keys (``data.train`` ...) given on the command line resolve against ``base`` (the
    current directory), as a user typing them expects.

    Raises:
        ConfigError: If an override is malformed or descends into a non-mapping value.
    """
    for text in overrides:
        parts, value = parse_override(text)
        dotted = ".".join(parts)
        if dotted in PATH_KEYS and isinstance(value, str) and base is not None:
            value = str((base / value).resolve()) if not Path(value).is_absolute() else value
        try:
            set_dotted(raw, dotted, value)
        except NotASection as error:
            raise ConfigError(f"--set {dotted}: '{error.prefix}' is a value, not a section, in the config.") from None
    return raw


def _model_members(annotation) -> list[type[BaseModel]]:
    """The pydantic models an annotation admits (one, or the members of a union)."""
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    members = []
    for arg in get_args(annotation):
        members.extend(_model_members(arg))
    return members


def _resolve_loc(loc: Sequence[Any]) -> tuple[list[str], type[BaseModel] | None]:
    """Map a pydantic error location to (dotted key parts, model class holding the last part).

    Discriminated-union tags (``model.tabular_attention.d_model`` in pydantic's location) are
    not keys the user wrote, so they are left out of the displayed key.
    """
    shown: list[str] = []
    current: list[type[BaseModel]] = [ExperimentConfig]
    holder: type[BaseModel] | None = ExperimentConfig
    for part in loc:
        if isinstance(part, int):  # a list index: same models, shown as-is
            shown.append(str(part))
            continue
        if len(current) > 1:  # a union: `part` is the tag naming the member
            tagged = [m for m in current if m.model_fields.get("type") and m.model_fields["type"].default == part]
            if tagged:
                current = tagged
                continue
        holder = current[0] if len(current) == 1 else None
        shown.append(str(part))
        field = holder.model_fields.get(part) if holder is not None and isinstance(part, str) else None
        current = _model_members(field.annotation) if field is not None else []
    return shown, holder


def _format_errors(error: ValidationError, source: str, set_keys: Sequence[str] = ()) -> str:
    """One line per problem, naming the dotted key and, for unknown keys, the allowed ones;
    a key given on the command line is blamed on ``--set``, not on the file."""
    lines = []
    for item in error.errors():
        shown, holder = _resolve_loc(item["loc"])
        key = ".".join(shown) or "(top level)"
        given_by = next((k for k in set_keys if key == k or key.startswith(k + ".")), None)
        origin = f" (from --set {given_by}=...)" if given_by else ""
        start = len(lines)
        if item["type"] == "extra_forbidden":
            allowed = list(holder.model_fields) if holder is not None else []
            guess = difflib.get_close_matches(shown[-1], allowed, n=1)
            hint = f" Did you mean '{guess[0]}'?" if guess else ""
            if shown[0] == "model" and not guess:
                hint += (" Each model.type has its own keys; to switch the family from the command line, "
                         "replace the whole section: --set 'model={type: gbdt}'.")
            lines.append(f"unknown key '{key}'.{hint} Allowed keys here: {', '.join(allowed)}.")
        elif item["type"] == "missing":
            lines.append(f"'{key}' is required but missing.")
        elif item["type"].startswith("union_tag"):
            lines.append(f"'{key}.type': {item['msg']}.")
        else:
            given = item.get("input")
            given_text = "" if isinstance(given, (dict, list)) or given is None else f" (given: {given!r})"
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"'{key}': {message}{given_text}.")
        if origin:
            lines[start] = lines[start].replace(f"'{key}'", f"'{key}'{origin}", 1)
    if set_keys and all("(from --set" in line for line in lines):
        source = f"from --set (applied to {source})"
    return f"Invalid config {source}:\n" + "\n".join(f"  - {line}" for line in lines)


def validate_config(raw: Any, source: str = "", set_keys: Sequence[str] = ()) -> ExperimentConfig:
    """Validate a raw config mapping into an :class:`ExperimentConfig`; ``set_keys`` are the
    dotted keys given with ``--set`` (errors in them name ``--set``).

    Raises:
        ConfigError: With every problem listed by dotted key.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"The config {source} must be a YAML mapping of sections (data:, model:, ...).")
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_errors(error, source, set_keys)) from None


def resolve_paths(raw: dict, folder: Path) -> dict:
    """Make the relative data paths of a raw config (:data:`PATH_KEYS`) absolute against ``folder``
    (in place; also returned)."""
    data = raw.get("data")
    if isinstance(data, dict):
        for dotted in PATH_KEYS:
            key = dotted.split(".")[1]
            value = data.get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                data[key] = str((folder / value).resolve())
    return raw


def load_config(path: str | Path, overrides: Sequence[str] = (), cwd: Path | None = None) -> ExperimentConfig:
    """Read, override, resolve and validate a config file.

    Relative paths written in the file (``data.train`` ...) resolve against the file's
    folder; relative paths given with ``--set`` against ``cwd`` (default: the current
    directory). ``name`` defaults to the file's stem.

    Args:
        path: The YAML file.
        overrides: ``KEY=VALUE`` strings from ``--set``.
        cwd: Folder that command-line paths are relative to.

    Returns:
        The validated config, with absolute data paths.

    Raises:
        ConfigError: If the file is missing, not YAML, or not a valid config.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The config file '{path}' does not exist (or is not a file).")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"The config file '{path}' is not UTF-8 text: {error}.") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"The config file '{path}' is not valid YAML{where}: {problem}.") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"The config file '{path}' must hold a mapping of sections (data:, model:, ...).")
    resolve_paths(raw, path.resolve().parent)
    apply_overrides(raw, overrides, base=(cwd or Path.cwd()))
    raw.setdefault("name", path.stem)
    set_keys = [item.split("=", 1)[0].strip() for item in overrides if "=" in item]
    return validate_config(raw, source=f"'{path}'", set_keys=set_keys)


def _type_first(section: dict) -> dict:
    """A model section with ``type`` as its first key (also inside ensemble branches), for readers."""
    section = {"type": section["type"], **{k: v for k, v in section.items() if k != "type"}}
    if isinstance(section.get("branches"), list):
        section["branches"] = [_type_first(b) for b in section["branches"]]
    return section


def config_to_yaml(config: ExperimentConfig) -> str:
    """The resolved config as YAML (every key, defaults filled in; ``model.type`` first)."""
    data = config.model_dump(mode="json")
    data["model"] = _type_first(data["model"])
    return yaml.safe_dump(data, sort_keys=False)
