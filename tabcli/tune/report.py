"""`report.html` of a search: summary, best trial against the starting config, refit, plots, all trials."""

from __future__ import annotations

from pathlib import Path

from tabcli.config.dotted import get_dotted
from tabcli.reports.html import img, render

__all__ = ["write_tune_report"]

_PLOT_TITLES = {"history": "Optimisation history", "importances": "Parameter importances (fANOVA)",
                "slices": "Metric against each searched key"}


def write_tune_report(path: Path, *, study, base: dict, rows: list[dict], metric: str, direction: str,
                      plots: dict[str, Path], refit: dict | None = None) -> Path:
    """Write a self-contained ``report.html`` (plots inlined; template ``tune.html``) and return its path.

    Args:
        study: The Optuna study.
        base: The starting config (mapping): the best trial's values are shown against it.
        rows: :func:`tabcli.tune.outputs.trial_rows`.
        metric: Validation metric name.
        direction: ``"minimize"`` or ``"maximize"``.
        plots: Name -> PNG (:func:`tabcli.reports.plots.search.search_plots`).
        refit: :func:`tabcli.tune.refit.refit`'s result, if ``--refit`` was given.
    """
    from tabcli.tune.outputs import best_trial

    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    best = best_trial(study)
    changes = [] if best is None else [{"key": key, "starting config": get_dotted(base, key), "best trial": value}
                                       for key, value in best.params.items()]
    refit_rows = [] if not refit else [
        {"config": label, "mean": refit[label]["mean"], "std": refit[label]["std"],
         "per seed": ", ".join(f"{v:.4f}" for v in refit[label]["values"])} for label in ("default", "best")]
    return render(
        "tune.html", path, study_name=study.study_name, direction=direction, metric=metric,
        counts=sorted((state, n) for state, n in counts.items()), best=best, changes=changes, refit=refit,
        refit_rows=refit_rows, plots=[(title, img(plots[key], title)) for key, title in _PLOT_TITLES.items() if key in plots],
        rows=rows, columns=[c for c in (rows[0].keys() if rows else []) if c != "host"],
    )
