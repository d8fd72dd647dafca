"""PNG plots of a run's predictions and attention (curves, confusion matrix, heatmaps, bar
charts) and of a search (``search``: Optuna's history, importances and slices).

Every public function writes PNG files (dpi 110, tight bounding box), creating the folder when
needed, closes its figures and returns the path(s) written. Curves are drawn by scikit-learn's
displays. matplotlib is imported inside the functions, on the
non-interactive "Agg" backend, so importing this package (and the command line) stays fast and
works on machines without a display. One module per kind of display, as scikit-learn splits its
own: ``classification``, ``regression``, ``heatmaps``, ``bars``, ``search``.
"""

from __future__ import annotations

from tabcli.reports.plots.bars import bar_chart, importance_comparison
from tabcli.reports.plots.classification import classification_plots
from tabcli.reports.plots.heatmaps import heatmap, heatmap_grid
from tabcli.reports.plots.regression import regression_plots

__all__ = [
    "classification_plots",
    "regression_plots",
    "heatmap",
    "heatmap_grid",
    "bar_chart",
    "importance_comparison",
]

