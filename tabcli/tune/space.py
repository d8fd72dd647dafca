"""The search space of `tabcli tune`: which config keys a trial changes, checked before any trial runs."""

from __future__ import annotations

import copy
import difflib
from typing import Any

from tabcli.config.dotted import NotASection, get_dotted, set_dotted
from tabcli.config.loader import validate_config
from tabcli.config.experiment import ExperimentConfig
from tabcli.config.tune import SearchDimension
from tabcli.errors import ConfigError

__all__ = ["TRAINING_SPACE", "default_space", "resolve_space", "starting_values", "suggest", "trial_config"]

#: Optimiser settings searched for every Keras family, after TabR's and FT-Transformer's spaces
#: (learning rate 3e-5-1e-3, weight decay 1e-6-1e-3, both log-uniform). The learning-rate range
#: is moved up to 1e-4-3e-3: those papers train without an epoch cap, tabcli stops at
#: training.epochs (100), where a rate of 3e-5 has not converged (penguins: valid accuracy 0.42
#: after 8 epochs at 3e-5, 0.92 at 9e-4).
TRAINING_SPACE = {
    "training.learning_rate": {"float": [1e-4, 3e-3], "log": True},
    "training.weight_decay": {"float": [1e-6, 1e-3], "log": True},
}


def default_space(config: ExperimentConfig) -> dict[str, SearchDimension]:
    """The model family's default space (``config.model.search_space()``) plus, for families
    trained by an optimizer (``training.*`` applies), :data:`TRAINING_SPACE`."""
    from tabcli.models.registry import family

    space = dict(config.model.search_space())
    if family(config.model.type).implementation.uses_training_settings:
        space.update(TRAINING_SPACE)
    return {key: SearchDimension.model_validate(value) for key, value in space.items()}


def _dotted_keys(data: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a nested mapping (leaves and sections)."""
    keys = []
    if isinstance(data, dict):
        for key, value in data.items():
            dotted = f"{prefix}{key}"
            keys.append(dotted)
            keys.extend(_dotted_keys(value, dotted + "."))
    return keys


def trial_config(base: dict, values: dict[str, Any], source: str) -> ExperimentConfig:
    """Validate ``base`` (a resolved config as a mapping) with ``values`` (dotted key -> value) set.

    Raises:
        ConfigError: If the result is not a valid config (the message names the keys).
    """
    raw = copy.deepcopy(base)
    for key, value in values.items():
        try:
            set_dotted(raw, key, value)
        except NotASection as error:
            raise ConfigError(f"tune.space: '{error.prefix}' is a value, not a section, so '{key}' is not a config key.") from None
    return validate_config(raw, source=source, set_keys=list(values))


def resolve_space(config: ExperimentConfig) -> dict[str, SearchDimension]:
    """The space a search uses: ``config.tune.space``, or the family's :func:`default_space`.

    Each key must be a key of the resolved config (``model.d_model``, ``training.learning_rate``
    ...), and each bound or choice must give a valid config on its own: a typo or an impossible
    range is found before any trial runs, not after hours of search.

    Raises:
        ConfigError: Naming the key (with a close match for a typo) and what is wrong.
    """
    space = dict(config.tune.space) or default_space(config)
    base = config.model_dump(mode="json")
    known = set(_dotted_keys(base))
    problems = []
    for key, dimension in space.items():
        if key not in known:
            guess = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" Did you mean '{guess[0]}'?" if guess else ""
            problems.append(f"'tune.space.{key}' is not a key of this config.{hint}")
            continue
        if isinstance(get_dotted(base, key), dict):
            problems.append(f"'tune.space.{key}' is a section; search one of its keys (e.g. '{key}.{next(iter(get_dotted(base, key)))}').")
            continue
        for condition in dimension.when or {}:
            if condition not in known:
                problems.append(f"'tune.space.{key}.when' names '{condition}', which is not a key of this config.")
            elif condition in space and list(space).index(condition) > list(space).index(key):
                problems.append(f"'tune.space.{key}.when' names '{condition}', which is searched after it; "
                                f"list '{condition}' first.")
            else:
                wanted = dimension.when[condition]
                for value in wanted if isinstance(wanted, list) else [wanted]:
                    try:  # a value the key cannot take would silently never search this key
                        trial_config(base, {condition: value}, source="(tune.space check)")
                    except ConfigError as error:
                        detail = str(error).split("\n", 1)[-1].strip().lstrip("- ")
                        problems.append(f"'tune.space.{key}.when' waits for {condition}={value!r}, which the config refuses: {detail}")
                        break
        for value in dimension.candidates():
            try:
                trial_config(base, {key: value}, source="(tune.space check)")
            except ConfigError as error:
                detail = str(error).split("\n", 1)[-1].strip().lstrip("- ")
                problems.append(f"'tune.space.{key}' offers {value!r}, which the config refuses: {detail}")
                break
    if problems:
        raise ConfigError("Invalid tune.space:\n" + "\n".join(f"  - {p}" for p in problems))
    return space


def _inside(dimension: SearchDimension, value: Any) -> bool:
    if dimension.kind == "choice":
        return any(value == option and type(value) is type(option) for option in dimension.choice)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    low, high = dimension.int_ if dimension.kind == "int" else dimension.float_
    if dimension.kind == "int" and not float(value).is_integer():
        return False
    if not low <= value <= high:
        return False
    if dimension.step is not None:
        return abs((value - low) / dimension.step - round((value - low) / dimension.step)) < 1e-9
    return True


def starting_values(base: dict, space: dict[str, SearchDimension]) -> dict[str, Any]:
    """The starting config's value of each searched key that lies inside its dimension (within the
    bounds and on the step grid, or among the choices): the parameters of a first, enqueued trial
    that evaluates the config the user started from. Keys whose value is outside are left out
    (Optuna samples them)."""
    values = {}
    for key, dimension in space.items():
        value = get_dotted(base, key)
        if _inside(dimension, value) and dimension.applies(_current(base, dimension, values)):
            values[key] = int(value) if dimension.kind == "int" else value
    return values


def _current(base: dict, dimension: SearchDimension, values: dict[str, Any]) -> dict[str, Any]:
    """The value of each key ``dimension.when`` names: sampled in this trial, else the config's."""
    return {key: values[key] if key in values else get_dotted(base, key) for key in dimension.when or {}}


def suggest(trial, space: dict[str, SearchDimension], base: dict) -> dict[str, Any]:
    """One value per key from an Optuna trial (``suggest_int`` / ``suggest_float`` /
    ``suggest_categorical``, named by the dotted key). A key whose ``when`` does not hold for the
    values sampled before it (or the config's, ``base``) is not suggested: Optuna's define-by-run
    trials record only the parameters a trial used, so TPE models a conditional key from the trials
    where it applied."""
    values = {}
    for key, dimension in space.items():
        if not dimension.applies(_current(base, dimension, values)):
            continue
        if dimension.kind == "choice":
            values[key] = trial.suggest_categorical(key, dimension.choice)
        elif dimension.kind == "int":
            low, high = dimension.int_
            values[key] = trial.suggest_int(key, low, high, step=int(dimension.step or 1), log=dimension.log)
        else:
            low, high = dimension.float_
            values[key] = trial.suggest_float(key, low, high, step=dimension.step, log=dimension.log)
    return values
