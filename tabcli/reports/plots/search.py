"""PNG plots of a search, drawn by Optuna's matplotlib visualisations: optimisation history,
parameter importances (fANOVA, Hutter et al. 2014) and one slice per searched key."""

from __future__ import annotations

import warnings
from pathlib import Path

from tabcli.runs.run_dir import write_atomic

__all__ = ["search_plots"]

_DPI = 110


def _save(axes, path: Path) -> Path:
    import matplotlib.pyplot as plt

    first = axes.flat[0] if hasattr(axes, "flat") else axes
    figure = first.figure
    # Atomic: processes sharing a study and a tune folder redraw the same plots as they finish.
    write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=_DPI, bbox_inches="tight"))
    plt.close(figure)
    return path


def search_plots(study, folder: Path, metric: str) -> dict[str, Path]:
    """Write ``history.png``, ``importances.png`` and ``slices.png`` in ``folder``.

    A plot that needs more than the study has (importances need two completed trials with
    differing values) is left out rather than failing the search.

    Returns:
        Name -> path of each plot written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import optuna
    from optuna.visualization import matplotlib as views

    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not completed:
        return {}
    label = f"valid.{metric}"
    plots: dict[str, Path] = {}
    with warnings.catch_warnings():
        # Optuna marks its matplotlib views experimental; the warning is not the user's concern.
        warnings.simplefilter("ignore")
        drawers = {
            "history": lambda: views.plot_optimization_history(study, target_name=label),
            "importances": lambda: views.plot_param_importances(study, target_name=label),
            "slices": lambda: views.plot_slice(study, target_name=label),
        }
        for name, draw in drawers.items():
            if name != "history" and (len(completed) < 2 or not completed[0].params):
                continue
            try:
                plots[name] = _save(draw(), folder / f"{name}.png")
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue  # e.g. importances when every trial had the same value
    return plots
