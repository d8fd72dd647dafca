"""The ``tune:`` section of an experiment config: what `tabcli tune` optimises and over which keys.

Pydantic only (no Optuna import): the section is validated with the rest of the config.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from tabcli.models.base_config import StrictModel

__all__ = ["TuneConfig", "SearchDimension", "SPLITS_THAT_CHOOSE"]

#: The split a tuning metric may be read from: test rows never choose anything.
SPLITS_THAT_CHOOSE = ("valid",)


class SearchDimension(StrictModel):
    """One entry of ``tune.space``: the values a dotted config key may take in a trial.

    Exactly one of ``int: [low, high]``, ``float: [low, high]`` (both bounds included) or
    ``choice: [v1, v2, ...]``; ``log: true`` samples ``int``/``float`` on a log scale (both
    bounds > 0); ``step`` gives a grid for ``int`` or ``float`` (not with ``log``). These map to
    Optuna's ``suggest_int``, ``suggest_float`` and ``suggest_categorical``.
    """

    int_: Optional[list[int]] = Field(None, alias="int", description="Integer range [low, high], both included.")
    float_: Optional[list[float]] = Field(None, alias="float", description="Float range [low, high].")
    choice: Optional[list[Any]] = Field(None, description="Values to choose from (numbers, strings, booleans, null).")
    log: bool = Field(False, description="Sample int/float ranges on a log scale (low > 0).")
    step: Optional[float] = Field(None, gt=0, description="Grid step for int/float ranges (not with log).")
    when: Optional[dict[str, Any]] = Field(
        None,
        description="Search this key only in trials where each named dotted key has this value (or one of a list "
        "of values), e.g. {model.inter_sample: retrieval}; in other trials it keeps its config value. A named key "
        "that is itself searched must come earlier in the space.",
    )

    model_config = {**StrictModel.model_config, "populate_by_name": True}

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [name for name, value in (("int", self.int_), ("float", self.float_), ("choice", self.choice)) if value is not None]
        if len(kinds) != 1:
            raise ValueError(
                "give exactly one of int: [low, high], float: [low, high] or choice: [...]; "
                f"received {', '.join(kinds) if kinds else 'none'}"
            )
        kind = kinds[0]
        if self.when is not None and not self.when:
            raise ValueError("when needs at least one dotted key: value")
        if kind == "choice":
            if not self.choice:
                raise ValueError("choice needs at least one value")
            if self.log or self.step is not None:
                raise ValueError("log and step apply to int/float ranges, not to choice")
            for value in self.choice:
                if not (value is None or isinstance(value, (bool, int, float, str))):
                    raise ValueError(f"choice values must be numbers, strings, booleans or null; received {value!r}")
            return self
        bounds = self.int_ if kind == "int" else self.float_
        if len(bounds) != 2 or not all(math.isfinite(b) for b in bounds) or bounds[0] > bounds[1]:
            raise ValueError(f"{kind} expects [low, high] with low <= high; received {bounds}")
        if self.log and bounds[0] <= 0:
            raise ValueError(f"log: true needs low > 0; received {bounds}")
        if self.log and self.step is not None:
            raise ValueError("step cannot be combined with log: true")
        if kind == "int" and self.step is not None and self.step != int(self.step):
            raise ValueError(f"an int range needs an integer step; received {self.step}")
        return self

    def applies(self, values: dict[str, Any]) -> bool:
        """Whether this key is searched in a trial whose other keys have ``values`` (dotted key ->
        value: the keys sampled so far over the starting config's values); always true without ``when``."""
        for key, wanted in (self.when or {}).items():
            options = wanted if isinstance(wanted, list) else [wanted]
            if not any(values.get(key) == option and type(values.get(key)) is type(option) for option in options):
                return False
        return True

    @property
    def kind(self) -> str:
        """``"int"``, ``"float"`` or ``"choice"``."""
        return "int" if self.int_ is not None else "float" if self.float_ is not None else "choice"

    def candidates(self) -> list[Any]:
        """Representative values (bounds, or every choice) used to check the key before a search."""
        if self.kind == "choice":
            return list(self.choice)
        return list(self.int_ if self.kind == "int" else self.float_)

    def to_yaml(self) -> dict:
        """The entry as written in a config (``{int: [...], log: ...}``)."""
        data = self.model_dump(by_alias=True, exclude_none=True)
        if not data.get("log"):
            data.pop("log", None)
        if not data.get("when"):
            data.pop("when", None)
        return data


class TuneConfig(StrictModel):
    """Settings of `tabcli tune` (Optuna). Ignored by every other command.

    Trials share the config's ``seed`` (the same split); each trial changes only the keys of
    ``space``. The metric is read from the validation split: test rows never choose anything.
    """

    metric: Optional[str] = Field(
        None,
        description="Validation metric to optimise, e.g. 'rmse' or 'valid.roc_auc' (any metric of metrics.json); "
        "default: the task's primary metric (rmse, roc_auc, accuracy).",
    )
    direction: Optional[Literal["minimize", "maximize"]] = Field(
        None, description="Whether lower or higher is better; default: inferred from the metric."
    )
    sampler: Literal["tpe", "random"] = Field("tpe", description="Optuna sampler, seeded from `seed` (TPE: Bergstra et al. 2011).")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median",
        description="Stops unpromising trials early from each epoch's validation metric: 'median' (Optuna's "
        "MedianPruner), 'hyperband' (Li et al. 2018) or 'none'. gbdt trials are never pruned.",
    )
    startup_trials: int = Field(
        5, ge=1, le=1000, description="Random trials before TPE models the space; also trials before pruning starts."
    )
    start_from_config: bool = Field(
        True,
        description="Trial 0 of a new study uses the config's own values of the searched keys (those inside "
        "the space; Optuna's enqueue_trial), so the best trial is never worse on validation than the config "
        "you started from. false: every trial is sampled.",
    )
    space: dict[str, SearchDimension] = Field(
        default_factory=dict,
        description="Dotted config key -> {int: [low, high], log: bool} | {float: [low, high], log: bool} | "
        "{choice: [...]}. Empty: the model family's default space (docs/tuning.md).",
    )

    @field_validator("metric")
    @classmethod
    def _validation_split(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        split, dot, name = value.rpartition(".")
        if dot and split not in SPLITS_THAT_CHOOSE:
            raise ValueError(
                f"tuning reads metrics of the validation split only (test rows never choose anything); "
                f"use 'valid.{name}' or '{name}'"
            )
        if not name:
            raise ValueError("give a metric name such as 'rmse' or 'valid.roc_auc'")
        return name

    @field_validator("space", mode="before")
    @classmethod
    def _space_mapping(cls, value: Union[dict, None]):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("space must map dotted config keys to {int|float: [low, high]} or {choice: [...]}")
        for key in value:
            if not isinstance(key, str) or not key or key.split(".")[0] in ("tune", "output", "tracking", "name"):
                raise ValueError(f"'{key}' cannot be searched; use keys of data.*, model.*, training.* or seed")
        return value
