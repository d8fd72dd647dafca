"""Tables with planted features: only ``alpha`` and ``beta`` decide the target.

``planted_table("binary")``: the class is the sign of ``alpha * beta`` (an interaction no single
column reveals); ``planted_table("regression")``: ``alpha * beta`` plus Gaussian noise (standard
deviation 0.1). Beside them, 8 standard-normal noise columns and 2 noise categories
(``colour``, ``shape``), in a seeded random column order, so a ranking that favours a position
or a kind of column cannot pass by luck. Used by ``benchmarks/explain.py`` and the tests of
``tabcli explain``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["PLANTED", "planted_table"]

#: The columns that decide the target.
PLANTED = ("alpha", "beta")


def planted_table(task: str = "binary", rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A ``rows``-row table: ``alpha``, ``beta``, ``noise_0..noise_7`` (floats), ``colour``,
    ``shape`` (strings) and ``target`` (``"same sign"`` / ``"opposite signs"``, or a float).

    Raises:
        ValueError: For a ``task`` other than ``"binary"`` or ``"regression"``.
    """
    if task not in ("binary", "regression"):
        raise ValueError(f"task must be 'binary' or 'regression'; received {task!r}.")
    rng = np.random.default_rng(seed)
    columns = {name: rng.normal(size=rows) for name in (*PLANTED, *(f"noise_{i}" for i in range(8)))}
    columns["colour"] = rng.choice(["red", "green", "blue", "yellow"], size=rows)
    columns["shape"] = rng.choice(["circle", "square", "triangle"], size=rows)
    frame = pd.DataFrame(columns)
    frame = frame[list(rng.permutation(frame.columns))]
    product = frame["alpha"] * frame["beta"]
    if task == "binary":
        frame["target"] = np.where(product > 0, "same sign", "opposite signs")
    else:
        frame["target"] = product + rng.normal(scale=0.1, size=rows)
    return frame
