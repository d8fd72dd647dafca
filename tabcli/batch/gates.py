"""Gate expressions: pass/fail conditions on a batch's leaderboard, for CI.

Grammar::

    gate      := [pattern ":"] split "." metric op rhs
    op        := ">=" | "<=" | ">" | "<" | "=="
    rhs       := number | family [("*" | "+" | "-") number]

``split`` is ``train``, ``valid`` or ``test``; the value compared is the metric's mean over a
config's repeats. A ``family`` on the right (``gbdt``, ``mlp``, ...) stands for that family's
mean on the same table (same training file and target) in the same batch, so
``test.rmse<=gbdt*1.05`` means "within 5 % of gradient boosting". ``pattern`` (a glob on the
config id, e.g. ``penguins*``) restricts the gate to some configs; without it the gate applies to
every config that has the metric (and is not itself the reference family).
"""

from __future__ import annotations

import fnmatch
import operator
import re
from dataclasses import dataclass

from tabcli.errors import ConfigError
from tabcli.evaluation.metrics import TASK_METRICS

__all__ = ["Gate", "GateResult", "parse_gate", "check_gates", "evaluate_gates", "TASK_METRICS"]

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_GATE = re.compile(
    r"^\s*(?:(?P<pattern>[^:]+):)?\s*(?P<split>train|valid|test)\.(?P<metric>[a-z0-9_]+)\s*"
    r"(?P<op>>=|<=|==|>|<)\s*(?P<rhs>.+?)\s*$"
)
_RHS = re.compile(r"^(?P<family>[a-z_]+)\s*(?:(?P<arith>[*+-])\s*(?P<factor>[0-9.eE+-]+))?$")


@dataclass(frozen=True)
class Gate:
    """A parsed gate (see the module docstring)."""

    text: str
    pattern: str | None
    split: str
    metric: str
    op: str
    value: float | None
    family: str | None
    arith: str | None
    factor: float | None

    def threshold(self, reference: float) -> float:
        """The right-hand side given the reference family's value."""
        if self.arith is None:
            return reference
        return {"*": reference * self.factor, "+": reference + self.factor, "-": reference - self.factor}[self.arith]


@dataclass
class GateResult:
    """One gate checked on one config (or a gate that matched nothing: ``config`` None)."""

    gate: Gate
    config: str | None
    passed: bool
    message: str


def parse_gate(text: str) -> Gate:
    """Parse a gate expression.

    Raises:
        ConfigError: With the grammar, if ``text`` does not follow it.
    """
    match = _GATE.match(text)
    if not match:
        raise ConfigError(
            f"Cannot read --gate '{text}'. Expected [CONFIG_GLOB:]SPLIT.METRIC OP VALUE, e.g. "
            "'test.roc_auc>=0.92', 'test.rmse<=gbdt*1.05' or 'penguins*:test.accuracy>0.95' "
            "(SPLIT: train|valid|test; OP: >= <= > < ==; VALUE: a number or a model family with an optional *, + or - number)."
        )
    rhs = match["rhs"]
    try:
        value, family, arith, factor = float(rhs), None, None, None
    except ValueError:
        value = None
        rhs_match = _RHS.match(rhs)
        if not rhs_match:
            raise ConfigError(f"--gate '{text}': the right-hand side '{rhs}' is neither a number nor FAMILY[*|+|-NUMBER].") from None
        family, arith = rhs_match["family"], rhs_match["arith"]
        factor = float(rhs_match["factor"]) if arith else None
    return Gate(text=text.strip(), pattern=match["pattern"], split=match["split"], metric=match["metric"],
                op=match["op"], value=value, family=family, arith=arith, factor=factor)


def check_gates(gates: list[Gate], tasks: dict[str, str | None]) -> None:
    """Refuse, before anything runs, a gate that could never be checked.

    Args:
        gates: Parsed gates.
        tasks: Config id -> its task (None where it cannot be told before training).

    Raises:
        ConfigError: For a metric no task produces, or one that none of the configs the gate
            applies to (by its pattern, with a known task) produces.
    """
    known = sorted({m for names in TASK_METRICS.values() for m in names})
    for gate in gates:
        if gate.metric not in known:
            raise ConfigError(f"--gate '{gate.text}': '{gate.metric}' is not a metric tabcli computes. Metrics: {', '.join(known)}.")
        applies = {c: t for c, t in tasks.items() if not gate.pattern or fnmatch.fnmatch(c, gate.pattern)}
        if gate.pattern and not applies:
            raise ConfigError(f"--gate '{gate.text}': the pattern '{gate.pattern}' matches no config of this batch "
                              f"({', '.join(sorted(tasks))}).")
        told = {c: t for c, t in applies.items() if t is not None}
        if told and not any(gate.metric in TASK_METRICS[t] for t in told.values()):
            producers = sorted(t for t, names in TASK_METRICS.items() if gate.metric in names)
            raise ConfigError(
                f"--gate '{gate.text}' can never be checked: '{gate.metric}' is a {'/'.join(producers)} metric, and the "
                f"configs it applies to are {', '.join(f'{c} ({t})' for c, t in sorted(told.items()))}. Metrics of "
                f"those tasks: {', '.join(sorted({m for t in told.values() for m in TASK_METRICS[t]}))}."
            )


def evaluate_gates(gates: list[Gate], rows: list[dict]) -> list[GateResult]:
    """Check every gate against leaderboard rows.

    Args:
        gates: Parsed gates.
        rows: Leaderboard rows with ``config``, ``family``, ``dataset`` and ``means``
            (``{"test.rmse": value, ...}``); rows of configs that produced no metric are skipped.

    Returns:
        One :class:`GateResult` per (gate, config) checked; a gate that applies to no config
        fails once with an explanation (a gate that silently checks nothing is a broken CI gate).
    """
    results = []
    for gate in gates:
        key = f"{gate.split}.{gate.metric}"
        checked = 0
        for row in rows:
            if gate.pattern and not fnmatch.fnmatch(row["config"], gate.pattern):
                continue
            if gate.family is not None and row["family"] == gate.family:
                continue  # the reference itself
            value = row["means"].get(key)
            if value is None:
                continue
            checked += 1
            if gate.family is None:
                threshold = gate.value
            else:
                reference = next((r for r in rows if r["family"] == gate.family and r["dataset"] == row["dataset"]
                                  and r["means"].get(key) is not None), None)
                if reference is None:
                    results.append(GateResult(gate, row["config"], False,
                                              f"no completed '{gate.family}' run on {row['dataset']} in this batch to compare with"))
                    continue
                threshold = gate.threshold(reference["means"][key])
            passed = bool(_OPS[gate.op](value, threshold))
            results.append(GateResult(gate, row["config"], passed, f"{key} = {value:.6g} {gate.op} {threshold:.6g}: {'pass' if passed else 'FAIL'}"))
        if checked == 0:
            results.append(GateResult(gate, None, False, f"no config in this batch has {key}" + (f" and matches '{gate.pattern}'" if gate.pattern else "")))
    return results
