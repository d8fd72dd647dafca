"""Can a feature ranking be trusted? Two checks against the model's own behaviour.

* **Agreement**: Spearman's rank correlation with permutation importance (Breiman 2001) on the
  same rows. Permutation importances within two standard errors of zero (over the shuffles), or
  below 1 % of the largest, are noise or negligible, so they count as ties at zero: a table with
  ten useless columns would otherwise judge a ranking by the order of ten random numbers.
* **Deletion**: the metric drop when the ranking's top 3 columns are set to their training
  median / mode, beside the mean drop for 3 columns drawn at random (a deletion test in the
  spirit of RemOve And Retrain, Hooker et al. 2019, without the retraining: the model is the
  one being explained). A ranking that knows what the model uses loses much more than chance.

A ranking passes when both hold: correlation >= :data:`MIN_CORRELATION` and a top-3 drop at
least :data:`MIN_DELETION_RATIO` times the random one. A ranking blind to the model (uniform,
reversed, random) fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np
import pandas as pd

from tabcli.explain.importance import primary_metric, rank_correlation
from tabcli.explain.occlusion import replace_columns

__all__ = ["MIN_CORRELATION", "MIN_DELETION_RATIO", "DELETED", "EXACT_RANDOM_SETS", "TrustCheck", "metric_drop",
           "random_deletion", "significant", "trust_check"]

#: Least Spearman correlation with permutation importance for a ranking to pass.
MIN_CORRELATION = 0.5
#: Least ratio of the top-3 deletion drop to the random-3 drop for a ranking to pass. Not 2: where
#: two columns of twelve decide the target, random sets of 3 hold one of them 45 % of the time, so
#: the best set of 3 is expected to cost about 1 / 0.45 = 2.2x the mean set (1.8-2.7x measured on
#: the planted test tables against sampled random sets), and 2 failed perfect rankings there; a
#: ranking blind to the model averages 1x.
MIN_DELETION_RATIO = 1.5
#: Columns deleted by the check.
DELETED = 3
#: Up to this many sets of random columns, the random drop is their exact mean (tables of up to 8 columns).
EXACT_RANDOM_SETS = 56


@dataclass
class TrustCheck:
    """The checks of one ranking.

    Attributes:
        correlation: Spearman correlation with permutation importance (None if undefined:
            fewer than 3 columns, or a constant ranking).
        top_columns: The ranking's top columns that were deleted.
        top_drop: Metric drop (worse = positive, in the metric's units) with them deleted.
        random_drop: Mean drop over draws of as many random columns.
        metric: The metric.
    """

    correlation: float | None
    top_columns: list[str]
    top_drop: float
    random_drop: float
    metric: str

    @property
    def ratio(self) -> float | None:
        """``top_drop / random_drop`` (None when the random drop is not positive)."""
        return self.top_drop / self.random_drop if self.random_drop > 0 else None

    @property
    def deletion_passes(self) -> bool:
        """The top columns cost at least :data:`MIN_DELETION_RATIO` times random ones (and something)."""
        return self.top_drop > 0 and self.top_drop >= MIN_DELETION_RATIO * max(self.random_drop, 0.0)

    @property
    def passes(self) -> bool:
        """Both checks hold."""
        return self.correlation is not None and self.correlation >= MIN_CORRELATION and self.deletion_passes

    def verdict(self) -> str:
        """One sentence a person can act on."""
        rho = "undefined" if self.correlation is None else f"{self.correlation:.2f}"
        ratio = "" if self.ratio is None else f", {self.ratio:.1f}x"
        deletion = (f"setting its top {len(self.top_columns)} columns ({', '.join(self.top_columns)}) to their "
                    f"training median / mode costs {self.top_drop:.4f} {self.metric} against {self.random_drop:.4f} "
                    f"for {len(self.top_columns)} random columns{ratio}")
        if self.passes:
            return f"Trustworthy: it agrees with permutation importance (Spearman {rho}) and {deletion}."
        if self.deletion_passes:
            return (f"Partly: {deletion}, but its order disagrees with permutation importance (Spearman {rho}); "
                    "trust its top columns, not the order of the rest.")
        if self.correlation is not None and self.correlation >= MIN_CORRELATION:
            return (f"Partly: it agrees with permutation importance (Spearman {rho}), but {deletion}: deleting its "
                    "top columns costs little more than chance (redundant columns can stand in for each other).")
        return (f"Not trustworthy: Spearman {rho} with permutation importance, and {deletion}; "
                "it does not say what this model relies on.")

    def as_dict(self) -> dict:
        """JSON-ready fields, with the ratio and the verdict."""
        return {"spearman_with_permutation": self.correlation, "deleted_columns": self.top_columns,
                "top_drop": self.top_drop, "random_drop": self.random_drop, "ratio": self.ratio,
                "metric": self.metric, "passes": self.passes, "verdict": self.verdict()}


def significant(permutation: dict[str, float], permutation_std: dict[str, float], repeats: int) -> dict[str, float]:
    """``permutation`` with every importance within two standard errors of zero
    (``mean <= 2 * std / sqrt(repeats)``) or below 1 % of the largest set to 0."""
    floor = 0.01 * max([*permutation.values(), 0.0])
    return {column: value if value > max(2.0 * permutation_std.get(column, 0.0) / max(repeats, 1) ** 0.5, floor)
            else 0.0 for column, value in permutation.items()}


def metric_drop(run, frame: pd.DataFrame, columns, reference: pd.DataFrame, baseline: float) -> float:
    """How much the run's primary metric worsens on labelled ``frame`` with ``columns`` set to
    their value in ``reference`` (positive = worse; RMSE rises, ROC AUC / accuracy fall)."""
    from tabcli.evaluation.metrics import PRIMARY_METRIC

    _, higher_is_better = PRIMARY_METRIC[run.schema.task]
    value = primary_metric(run, replace_columns(frame, columns, reference))[1]
    return baseline - value if higher_is_better else value - baseline


def random_deletion(run, frame: pd.DataFrame, reference: pd.DataFrame, baseline: float, draws: int = 16,
                    seed: int = 0) -> float:
    """Mean :func:`metric_drop` of :data:`DELETED` random columns (fewer if the table has fewer):
    exact, over every such set, when there are at most :data:`EXACT_RANDOM_SETS` of them, else
    over ``draws`` seeded draws. The same for every ranking of a run, so computed once."""
    columns = list(run.schema.features)
    size = min(DELETED, len(columns))
    if comb(len(columns), size) <= EXACT_RANDOM_SETS:
        subsets = [list(subset) for subset in combinations(columns, size)]
    else:
        rng = np.random.default_rng(seed)
        subsets = [list(rng.choice(columns, size, replace=False)) for _ in range(draws)]
    return float(np.mean([metric_drop(run, frame, subset, reference, baseline) for subset in subsets]))


def trust_check(run, frame: pd.DataFrame, ranking: dict[str, float], permutation: dict[str, float],
                reference: pd.DataFrame, baseline: float, random_drop: float, metric: str) -> TrustCheck:
    """Both checks of one ranking on labelled ``frame``.

    Args:
        run: A :class:`~tabcli.runs.run.LoadedRun`.
        frame: Labelled rows (the target column present).
        ranking: Column -> importance (larger = more important).
        permutation: Column -> permutation importance on the same rows, noise set to zero
            (:func:`significant`).
        reference: One row of training medians / modes
            (:func:`~tabcli.explain.occlusion.reference_frame`).
        baseline: The metric on ``frame`` unchanged (:func:`primary_metric`).
        random_drop: :func:`random_deletion` of the same rows.
        metric: The metric's name.
    """
    size = min(DELETED, len(ranking))
    # A stable sort: tied columns keep table order, so a constant ranking deletes the first ones.
    top = [c for c, _ in sorted(ranking.items(), key=lambda item: -item[1])][:size]
    return TrustCheck(
        correlation=rank_correlation(ranking, permutation), top_columns=top,
        top_drop=metric_drop(run, frame, top, reference, baseline), random_drop=random_drop, metric=metric,
    )
