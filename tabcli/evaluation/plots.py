"""PNG plots of a run's predictions and attention: curves, confusion matrix, heatmaps, bar charts.

Every public function writes PNG files (dpi 110, tight bounding box), creating the folder when
needed, closes its figures and returns the path(s) written. Curves are computed with
scikit-learn and drawn with matplotlib. matplotlib is imported inside the functions, on the
non-interactive "Agg" backend, so importing this module (and the command line) stays fast and
works on machines without a display.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

__all__ = [
    "classification_plots",
    "regression_plots",
    "heatmap",
    "heatmap_grid",
    "bar_chart",
    "importance_comparison",
]

_DPI = 110
#: Above this many rows a scatter is an unreadable blob (and slow to draw): hexbin instead.
_HEXBIN_ABOVE = 5000
#: Above this many cells the annotations of a heatmap overlap and are unreadable.
_MAX_ANNOTATED_CELLS = 400
_CALIBRATION_BINS = 10
#: Quantile bins need a few rows each to be more than noise; below this uniform bins are used.
_MIN_ROWS_FOR_QUANTILE_BINS = 5 * _CALIBRATION_BINS
#: Skipped class names listed in a title before "+N more", so the title stays one line.
_MAX_NAMES_IN_TITLE = 5
_MAX_PANELS_PER_ROW = 4


# --------------------------------------------------------------------------------------------
# matplotlib plumbing


def _pyplot():
    # Imported here, not at module level, so `import tabcli` does not pay for matplotlib; Agg
    # because plots are written to files, also on servers without a display.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG (creating the folder) and close it; returns the path."""
    plt = _pyplot()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _tick_fontsize(count: int) -> int:
    """Tick label font size for ``count`` labels on one axis."""
    if count <= 15:
        return 10
    if count <= 40:
        return 8
    return 6


def _x_rotation(labels: Sequence[str]) -> int:
    """Rotation of x tick labels: flat when few and short, 45° when long, 90° when many."""
    if len(labels) > 20:
        return 90
    if len(labels) > 6 or max((len(label) for label in labels), default=0) > 8:
        return 45
    return 0


def _set_xticklabels(ax, labels: Sequence[str]) -> None:
    """Label every column of ``ax`` with ``labels``, rotated when many or long."""
    rotation = _x_rotation(labels)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(
        labels,
        rotation=rotation,
        ha="right" if rotation == 45 else "center",
        rotation_mode="anchor" if rotation == 45 else "default",
        fontsize=_tick_fontsize(len(labels)),
    )


def _set_yticklabels(ax, labels: Sequence[str]) -> None:
    """Label every row of ``ax`` with ``labels``."""
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=_tick_fontsize(len(labels)))


def _annotate_cells(ax, image, values: np.ndarray, texts: np.ndarray, fontsize: float) -> None:
    """Write ``texts[i, j]`` in each finite cell of an ``imshow`` image, in black or white,
    whichever contrasts with the cell's colour."""
    for (i, j), value in np.ndenumerate(values):
        if not np.isfinite(value):
            continue
        red, green, blue, _ = image.cmap(image.norm(value))
        luminance = 0.299 * red + 0.587 * green + 0.114 * blue
        ax.text(j, i, texts[i, j], ha="center", va="center", fontsize=fontsize,
                color="black" if luminance > 0.5 else "white")


def _format_number(value: float, spec: str = ".3f") -> str:
    """``value`` formatted with ``spec``, or "n/a" when it is not a finite number."""
    return format(value, spec) if value is not None and math.isfinite(value) else "n/a"


def _names_note(names: Sequence[str]) -> str:
    """Comma-separated ``names``, shortened to a few and "+N more"."""
    shown = ", ".join(names[:_MAX_NAMES_IN_TITLE])
    extra = len(names) - _MAX_NAMES_IN_TITLE
    return f"{shown} +{extra} more" if extra > 0 else shown


# --------------------------------------------------------------------------------------------
# input checks


def _labels(labels: Sequence, name: str) -> list[str]:
    """``labels`` as strings (ints, bools and strings alike); raises ValueError when empty."""
    labels = [str(label) for label in labels]
    if not labels:
        raise ValueError(f"{name} is empty")
    return labels


def _finite_vector(values, name: str, length: int | None = None) -> np.ndarray:
    """``values`` as a finite 1-D float array, of ``length`` entries when given.

    Raises:
        ValueError: Not 1-D, empty, the wrong length, or holding NaN/inf.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if length is not None and array.size != length:
        raise ValueError(f"{name} has {array.size} entries, expected {length}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return array


def _check_classification(y_true, proba, classes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validated ``(y_true as ints (n,), proba as floats (n, K), class names (K,))``.

    Raises:
        ValueError: Fewer than 2 classes, shapes that disagree, class indices outside
            ``[0, K)`` or non-finite probabilities.
    """
    names = _labels(classes, "classes")
    proba = np.asarray(proba, dtype=np.float64)
    if len(names) < 2:
        raise ValueError(f"classification plots need at least 2 classes, got {names}")
    if proba.ndim != 2 or proba.shape[0] == 0 or proba.shape[1] != len(names):
        raise ValueError(f"proba must have shape (rows, {len(names)}) for {len(names)} classes, got {proba.shape}")
    if not np.all(np.isfinite(proba)):
        raise ValueError("proba holds NaN or infinite values")
    y = np.asarray(y_true)
    if y.shape != (proba.shape[0],):
        raise ValueError(f"y_true must have shape ({proba.shape[0]},) to match proba {proba.shape}, got {y.shape}")
    if y.dtype.kind not in "biu" and not np.all(np.mod(y.astype(np.float64), 1) == 0):
        raise ValueError("y_true must hold integer class indices")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= len(names):
        raise ValueError(f"y_true holds class indices outside [0, {len(names)}): min {y.min()}, max {y.max()}")
    return y, proba, names


# --------------------------------------------------------------------------------------------
# classification


def _one_vs_rest(y_true: np.ndarray, num_classes: int) -> tuple[list[int], list[int]]:
    """The classes whose curves can be drawn, and those skipped, as ``(drawn, skipped)``.

    Binary tasks draw only the positive class 1. A curve needs both a positive and a negative
    row, so a class absent from ``y_true`` (or holding every row) is skipped.
    """
    candidates = [1] if num_classes == 2 else list(range(num_classes))
    drawn, skipped = [], []
    for k in candidates:
        positives = int(np.sum(y_true == k))
        (drawn if 0 < positives < len(y_true) else skipped).append(k)
    return drawn, skipped


def _curve_figure(num_curves: int):
    """A figure for curves of ``num_curves`` classes, wider when the legend goes outside."""
    plt = _pyplot()
    outside = num_curves > 4
    fig, ax = plt.subplots(figsize=(9.5 if outside else 6.5, 6))
    return fig, ax, outside


def _class_colors(count: int) -> list:
    """``count`` distinct line colours: the default cycle repeats after 10, which would give
    two classes the same colour."""
    plt = _pyplot()
    if count <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(count)]
    if count <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(count)]
    return [plt.get_cmap("viridis")(x) for x in np.linspace(0.0, 0.95, count)]


def _finish_curve_axes(ax, title: str, xlabel: str, ylabel: str, outside: bool) -> None:
    """Square unit axes, labels, grid and a legend (outside on the right when many classes)."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel, fontsize=11)
    ax.set_ylabel(ylabel, fontsize=11)
    ax.set_title(title, fontsize=12)
    ax.grid(alpha=0.3)
    if outside:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    else:
        ax.legend(loc="lower right", fontsize=9)


def _curve_title(base: str, names: list[str], drawn: list[int], skipped: list[int]) -> str:
    """``base``, plus a second line naming the classes without a curve."""
    if not skipped:
        return base
    if not drawn:
        return f"{base}\nno curve: y_true holds a single class"
    missing = [names[k] for k in skipped]
    return f"{base}\nskipped (no positive or no negative row in y_true): {_names_note(missing)}"


def _roc_plot(y_true: np.ndarray, proba: np.ndarray, names: list[str], path: Path) -> Path:
    """ROC curve(s) of ``proba`` (n, K) against ``y_true`` (n,), written to ``path``."""
    drawn, skipped = _one_vs_rest(y_true, len(names))
    fig, ax, outside = _curve_figure(len(drawn))
    grid = np.linspace(0.0, 1.0, 201)
    tprs, aucs = [], []
    for k, color in zip(drawn, _class_colors(len(drawn))):
        fpr, tpr, _ = skm.roc_curve(y_true == k, proba[:, k])
        aucs.append(skm.auc(fpr, tpr))
        tprs.append(np.interp(grid, fpr, tpr))
        ax.plot(fpr, tpr, lw=1.5, color=color, label=f"{names[k]} (AUC = {aucs[-1]:.3f})")
    if len(drawn) > 1:
        # Macro AUC is the mean of the per-class AUCs, as sklearn's roc_auc_score(average="macro").
        ax.plot(grid, np.mean(tprs, axis=0), color="black", lw=2.5,
                label=f"macro average (AUC = {np.mean(aucs):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    base = "ROC curve" if len(names) == 2 else "ROC curves, one vs rest"
    if len(names) == 2:
        base += f" (positive class: {names[1]})"
    title = _curve_title(base, names, drawn, skipped)
    _finish_curve_axes(ax, title, "false positive rate", "true positive rate", outside)
    return _save(fig, path)


def _interpolated_precision(recall: np.ndarray, precision: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Precision at each recall of ``grid``, taken as the best precision at that recall or above.

    Plain linear interpolation is ill-defined where a PR curve's recall repeats; this envelope
    is monotone, so per-class curves can be averaged on a common recall grid.
    """
    # precision_recall_curve orders points by decreasing recall, so a running max over that
    # order is the best precision among all points of at least that recall.
    envelope = np.maximum.accumulate(precision)[::-1]
    ascending_recall = recall[::-1]
    index = np.clip(np.searchsorted(ascending_recall, grid, side="left"), 0, len(recall) - 1)
    return envelope[index]


def _pr_plot(y_true: np.ndarray, proba: np.ndarray, names: list[str], path: Path) -> Path:
    """Precision-recall curve(s) of ``proba`` (n, K) against ``y_true`` (n,), written to ``path``."""
    drawn, skipped = _one_vs_rest(y_true, len(names))
    fig, ax, outside = _curve_figure(len(drawn))
    grid = np.linspace(0.0, 1.0, 201)
    precisions, average_precisions = [], []
    for k, color in zip(drawn, _class_colors(len(drawn))):
        precision, recall, _ = skm.precision_recall_curve(y_true == k, proba[:, k])
        average_precisions.append(skm.average_precision_score(y_true == k, proba[:, k]))
        precisions.append(_interpolated_precision(recall, precision, grid))
        ax.step(recall, precision, where="post", lw=1.5, color=color, label=f"{names[k]} (AP = {average_precisions[-1]:.3f})")
    if len(drawn) > 1:
        ax.plot(grid, np.mean(precisions, axis=0), color="black", lw=2.5,
                label=f"macro average (AP = {np.mean(average_precisions):.3f})")
    if len(names) == 2:
        # A classifier that ignores its input has a precision equal to the positive rate.
        rate = float(np.mean(y_true == 1))
        ax.axhline(rate, ls="--", color="grey", lw=1, label=f"positive rate = {rate:.3f}")
        base = f"Precision-recall curve (positive class: {names[1]})"
    else:
        base = "Precision-recall curves, one vs rest"
    title = _curve_title(base, names, drawn, skipped)
    _finish_curve_axes(ax, title, "recall", "precision", outside)
    return _save(fig, path)


def _confusion_plot(y_true: np.ndarray, proba: np.ndarray, names: list[str], path: Path) -> Path:
    """Confusion matrix of the argmax prediction: counts and row percentages, written to ``path``."""
    plt = _pyplot()
    k = len(names)
    counts = skm.confusion_matrix(y_true, proba.argmax(axis=1), labels=list(range(k)))
    row_totals = counts.sum(axis=1, keepdims=True)
    # A class absent from y_true has an empty row: its percentages are undefined, not 0.
    percent = np.divide(100.0 * counts, row_totals, out=np.full(counts.shape, np.nan), where=row_totals > 0)
    cell = max(0.5, min(1.0, 8.0 / k))
    side = max(4.5, cell * k + 2.0)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(counts, cmap="Blues", aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="rows")
    if k * k <= _MAX_ANNOTATED_CELLS:
        texts = np.empty(counts.shape, dtype=object)
        for (i, j), count in np.ndenumerate(counts):
            texts[i, j] = f"{count}\n{_format_number(percent[i, j], '.1f')}%" if row_totals[i, 0] else f"{count}"
        fontsize = 10 if k <= 5 else 8 if k <= 10 else 7 if k <= 15 else 6
        _annotate_cells(ax, image, counts.astype(np.float64), texts, fontsize)
    _set_xticklabels(ax, names)
    _set_yticklabels(ax, names)
    ax.set_xlabel("predicted label", fontsize=11)
    ax.set_ylabel("true label", fontsize=11)
    accuracy = float(np.trace(counts)) / max(int(counts.sum()), 1)
    ax.set_title(f"Confusion matrix (argmax prediction), accuracy {accuracy:.3f}\n"
                 "cells: count and % of the true label's rows", fontsize=12)
    return _save(fig, path)


def _reliability_plot(is_positive: np.ndarray, probability: np.ndarray, title: str, xlabel: str,
                      ylabel: str, path: Path) -> Path:
    """Reliability diagram of ``probability`` (n,) against 0/1 outcomes ``is_positive`` (n,),
    with a histogram of ``probability`` beneath, written to ``path``."""
    plt = _pyplot()
    probability = np.clip(probability, 0.0, 1.0)
    strategy = "quantile" if len(probability) >= _MIN_ROWS_FOR_QUANTILE_BINS else "uniform"
    fraction, mean_predicted = calibration_curve(
        is_positive.astype(int), probability, n_bins=_CALIBRATION_BINS, strategy=strategy, pos_label=1
    )
    fig, (ax, hist_ax) = plt.subplots(
        2, 1, figsize=(6.5, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08}
    )
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    ax.plot(mean_predicted, fraction, marker="o", lw=1.5, label=f"model ({_CALIBRATION_BINS} {strategy} bins)")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(ylabel, fontsize=11)
    ax.set_title(title, fontsize=12)
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.3)
    hist_ax.hist(probability, bins=20, range=(0, 1), color="tab:blue", alpha=0.7)
    hist_ax.set_xlabel(xlabel, fontsize=11)
    hist_ax.set_ylabel("rows", fontsize=11)
    hist_ax.grid(alpha=0.3)
    return _save(fig, path)


def _brier(is_positive: np.ndarray, probability: np.ndarray) -> float:
    """Brier score: mean squared gap between a probability (n,) and the 0/1 outcome (n,)."""
    # Computed directly: sklearn's brier_score_loss warns or raises when one label is absent.
    return float(np.mean((np.clip(probability, 0.0, 1.0) - is_positive.astype(np.float64)) ** 2))


def _calibration_plot(y_true: np.ndarray, proba: np.ndarray, names: list[str], path: Path) -> Path:
    """Reliability diagram: of classes[1] when binary, of the top-label confidence otherwise."""
    if len(names) == 2:
        is_positive, probability = y_true == 1, proba[:, 1]
        title = f"Calibration of P({names[1]}), Brier score {_brier(is_positive, probability):.4f}"
        xlabel = f"mean predicted probability of {names[1]}"
        ylabel = f"fraction of positives ({names[1]})"
    else:
        predicted = proba.argmax(axis=1)
        is_positive, probability = predicted == y_true, proba.max(axis=1)
        title = ("Calibration of the top-label confidence\n"
                 f"top-label Brier score {_brier(is_positive, probability):.4f}")
        xlabel = "predicted probability of the predicted class (confidence)"
        ylabel = "fraction of rows predicted correctly"
    return _reliability_plot(is_positive, probability, title, xlabel, ylabel, path)


def classification_plots(y_true, proba, classes: Sequence, out_dir: str | Path) -> dict[str, Path]:
    """ROC, precision-recall, confusion-matrix and calibration plots of class probabilities.

    Args:
        y_true: True class indices, shape ``(n,)``, integers in ``[0, K)``.
        proba: Predicted class probabilities, shape ``(n, K)``, rows summing to 1.
        classes: The ``K`` class labels (ints, bools or strings; shown with ``str()``), in the
            column order of ``proba``. With 2 classes, ``classes[1]`` is the positive class.
        out_dir: Folder to write into; created when missing.

    Writes, in ``out_dir``:
        ``roc.png``: ROC curve of ``classes[1]`` (binary) or one-vs-rest curves per class with
        their macro average (multiclass); AUC in the legend, chance diagonal dashed.
        ``pr.png``: precision-recall curves of the same classes; average precision in the
        legend, and (binary) the positive rate as a dashed baseline.
        Classes with no positive or no negative row in ``y_true`` have no curve; the title
        names them.
        ``confusion_matrix.png``: counts of true (y) vs argmax-predicted (x) labels, each cell
        with its count and percentage of the true label's rows.
        ``calibration.png``: reliability diagram (10 quantile bins, uniform below 50 rows) with
        a histogram of the probabilities beneath; binary: of ``classes[1]``, multiclass: of
        the top-label confidence. The title gives the Brier score (binary: of ``classes[1]``;
        multiclass: top-label, i.e. of the confidence against whether the prediction was right).

    Returns:
        ``{"roc": path, "pr": path, "confusion_matrix": path, "calibration": path}``.

    Raises:
        ValueError: Fewer than 2 classes, ``proba`` not ``(n, K)``, ``y_true`` not ``(n,)``
            integers in ``[0, K)``, or non-finite probabilities.
    """
    y_true, proba, names = _check_classification(y_true, proba, classes)
    out_dir = Path(out_dir)
    return {
        "roc": _roc_plot(y_true, proba, names, out_dir / "roc.png"),
        "pr": _pr_plot(y_true, proba, names, out_dir / "pr.png"),
        "confusion_matrix": _confusion_plot(y_true, proba, names, out_dir / "confusion_matrix.png"),
        "calibration": _calibration_plot(y_true, proba, names, out_dir / "calibration.png"),
    }


# --------------------------------------------------------------------------------------------
# regression


def _padded_range(*arrays: np.ndarray) -> tuple[float, float]:
    """The joint ``(min, max)`` of ``arrays`` widened by 5%, never of zero width."""
    low = min(float(np.min(a)) for a in arrays)
    high = max(float(np.max(a)) for a in arrays)
    pad = 0.05 * (high - low) if high > low else max(0.5, 0.05 * abs(high))
    return low - pad, high + pad


def _point_cloud(fig, ax, x: np.ndarray, y: np.ndarray, extent: tuple[float, float, float, float]) -> None:
    """Scatter of ``x`` vs ``y``, or a hexbin of row counts (with a colorbar) when many rows."""
    if len(x) > _HEXBIN_ABOVE:
        cells = ax.hexbin(x, y, gridsize=60, cmap="viridis", mincnt=1, extent=extent)
        fig.colorbar(cells, ax=ax, label="rows")
    else:
        # Fainter points as rows grow, so dense regions still show as darker.
        alpha = float(np.clip(30.0 / np.sqrt(len(x)), 0.15, 0.9))
        ax.scatter(x, y, s=12, alpha=alpha, edgecolors="none")


def _predicted_vs_actual_plot(y_true: np.ndarray, y_pred: np.ndarray, target: str, path: Path) -> Path:
    """Predicted vs actual values with the y = x line; RMSE and R² in the title."""
    plt = _pyplot()
    rmse = float(np.sqrt(skm.mean_squared_error(y_true, y_pred)))
    # R² is undefined for one row or a constant target; sklearn would warn and return nan.
    r2 = float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 and np.ptp(y_true) > 0 else float("nan")
    low, high = _padded_range(y_true, y_pred)
    fig, ax = plt.subplots(figsize=(7 if len(y_true) > _HEXBIN_ABOVE else 6, 6))
    _point_cloud(fig, ax, y_true, y_pred, (low, high, low, high))
    ax.plot([low, high], [low, high], ls="--", color="black", lw=1, label="y = x")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel(f"actual {target}", fontsize=11)
    ax.set_ylabel(f"predicted {target}", fontsize=11)
    ax.set_title(f"Predicted vs actual {target} ({len(y_true)} rows)\n"
                 f"RMSE {_format_number(rmse, '.4g')}, R² {_format_number(r2, '.3f')}", fontsize=12)
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _residuals_plot(y_true: np.ndarray, y_pred: np.ndarray, target: str, path: Path) -> Path:
    """Residuals (actual - predicted) vs predicted, and their histogram, side by side."""
    plt = _pyplot()
    residual = y_true - y_pred
    fig, (ax, hist_ax) = plt.subplots(1, 2, figsize=(12, 5))
    x_low, x_high = _padded_range(y_pred)
    r_low, r_high = _padded_range(residual, np.zeros(1))
    _point_cloud(fig, ax, y_pred, residual, (x_low, x_high, r_low, r_high))
    ax.axhline(0.0, color="black", ls="--", lw=1)
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(r_low, r_high)
    ax.set_xlabel(f"predicted {target}", fontsize=11)
    ax.set_ylabel(f"residual (actual - predicted) {target}", fontsize=11)
    ax.set_title("Residuals vs predicted", fontsize=12)
    ax.grid(alpha=0.3)
    hist_ax.hist(residual, bins=int(np.clip(np.sqrt(len(residual)), 5, 60)), color="tab:blue", alpha=0.8)
    hist_ax.axvline(0.0, color="black", ls="--", lw=1)
    hist_ax.set_xlabel(f"residual (actual - predicted) {target}", fontsize=11)
    hist_ax.set_ylabel("rows", fontsize=11)
    hist_ax.set_title(f"Residual distribution (mean {residual.mean():.4g}, std {residual.std():.4g})", fontsize=12)
    hist_ax.grid(alpha=0.3)
    return _save(fig, path)


def regression_plots(y_true, y_pred, target_name: str, out_dir: str | Path) -> dict[str, Path]:
    """Predicted-vs-actual and residual plots of a regression, in the target's own units.

    Args:
        y_true: Actual values, shape ``(n,)``, in the target's units.
        y_pred: Predicted values, shape ``(n,)``, in the target's units.
        target_name: Name of the target, used in axis labels and titles.
        out_dir: Folder to write into; created when missing.

    Writes, in ``out_dir``:
        ``predicted_vs_actual.png``: scatter (hexbin of row counts above 5000 rows) of
        predicted vs actual values with the y = x line; RMSE and R² in the title (R² "n/a"
        for one row or a constant target).
        ``residuals.png``: residual (actual - predicted) vs predicted with a zero line, and
        the residual histogram.

    Returns:
        ``{"predicted_vs_actual": path, "residuals": path}``.

    Raises:
        ValueError: ``y_true`` and ``y_pred`` empty, not 1-D, of different lengths, or
            holding NaN/inf.
    """
    y_true = _finite_vector(y_true, "y_true")
    y_pred = _finite_vector(y_pred, "y_pred", len(y_true))
    target = str(target_name)
    out_dir = Path(out_dir)
    return {
        "predicted_vs_actual": _predicted_vs_actual_plot(y_true, y_pred, target, out_dir / "predicted_vs_actual.png"),
        "residuals": _residuals_plot(y_true, y_pred, target, out_dir / "residuals.png"),
    }


# --------------------------------------------------------------------------------------------
# heatmaps


def _check_value_format(value_format: str) -> None:
    """Raises ValueError when ``value_format`` is not a format spec for floats (e.g. ".2f")."""
    try:
        format(0.5, value_format)
    except (ValueError, TypeError) as error:
        raise ValueError(f"value_format {value_format!r} is not a format spec for floats: {error}") from None


def _color_limits(values: np.ndarray) -> tuple[float | None, float | None]:
    """``(min, max)`` of the finite ``values``, or ``(None, None)`` when there are none."""
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (None, None)


def heatmap(matrix, row_labels: Sequence, col_labels: Sequence, title: str, path: str | Path, *,
            xlabel: str = "", ylabel: str = "", value_format: str = ".2f", cmap: str = "viridis") -> Path:
    """A 2-D matrix as a heatmap with labelled rows and columns and a colorbar.

    Args:
        matrix: Values, shape ``(rows, cols)``; NaN cells are left blank.
        row_labels: ``rows`` labels, shown on the y axis (top to bottom).
        col_labels: ``cols`` labels, shown on the x axis (rotated when many or long).
        title: Figure title.
        path: PNG file to write; its folder is created when missing.
        xlabel, ylabel: Axis titles.
        value_format: Format spec of the cell annotations, e.g. ".2f" or ".0%". Cells are
            annotated only when ``rows * cols <= 400``.
        cmap: matplotlib colour map name.

    Writes:
        ``path``: the heatmap PNG; the figure grows with the number of labels.

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: ``matrix`` is empty, not 2-D or its shape differs from
            ``(len(row_labels), len(col_labels))`` (the message gives both), or
            ``value_format`` is not a float format spec.
    """
    values = np.asarray(matrix, dtype=np.float64)
    rows, cols = [str(label) for label in row_labels], [str(label) for label in col_labels]
    expected = (len(rows), len(cols))
    if values.ndim != 2 or values.shape != expected or values.size == 0:
        raise ValueError(
            f"matrix shape {values.shape} does not match the labels: {len(rows)} row labels x "
            f"{len(cols)} column labels, i.e. shape {expected} (and must not be empty)"
        )
    _check_value_format(value_format)
    plt = _pyplot()
    annotate = values.size <= _MAX_ANNOTATED_CELLS and values.size > 0
    cell = 0.5 if annotate else 0.3
    fig, ax = plt.subplots(figsize=(max(4.5, cell * len(cols) + 2.5), max(3.5, cell * len(rows) + 1.5)))
    vmin, vmax = _color_limits(values)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if annotate:
        texts = np.vectorize(lambda v: format(v, value_format), otypes=[object])(values)
        _annotate_cells(ax, image, values, texts, 9 if max(expected) <= 10 else 7)
    _set_xticklabels(ax, cols)
    _set_yticklabels(ax, rows)
    ax.set_xlabel(xlabel, fontsize=11)
    ax.set_ylabel(ylabel, fontsize=11)
    ax.set_title(title, fontsize=12)
    return _save(fig, path)


def _grid_shape(count: int) -> tuple[int, int]:
    """``(rows, columns)`` of a panel grid for ``count`` panels, at most 4 per row."""
    columns = min(count, _MAX_PANELS_PER_ROW)
    return math.ceil(count / columns), columns


def heatmap_grid(matrices, row_labels: Sequence, col_labels: Sequence, titles: Sequence[str],
                 path: str | Path, *, suptitle: str = "", cmap: str = "viridis") -> Path:
    """Several same-shaped matrices (e.g. one per attention head) as a grid of heatmaps.

    The panels share one colour scale and one colorbar, sit at most 4 per row, and show row
    labels on the left column and column labels on the bottom panel of each column only.

    Args:
        matrices: Values, shape ``(panels, rows, cols)``; NaN cells are left blank.
        row_labels: ``rows`` labels (y axis).
        col_labels: ``cols`` labels (x axis).
        titles: ``panels`` panel titles.
        path: PNG file to write; its folder is created when missing.
        suptitle: Figure title.
        cmap: matplotlib colour map name.

    Writes:
        ``path``: the grid PNG; panels grow with the number of labels.

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: ``matrices`` is empty, not 3-D, or its shape differs from
            ``(len(titles), len(row_labels), len(col_labels))`` (the message gives both).
    """
    values = np.asarray(matrices, dtype=np.float64)
    rows, cols = [str(label) for label in row_labels], [str(label) for label in col_labels]
    names = [str(title) for title in titles]
    expected = (len(names), len(rows), len(cols))
    if values.ndim != 3 or values.shape != expected or values.size == 0:
        raise ValueError(
            f"matrices shape {values.shape} does not match {len(names)} titles x {len(rows)} row labels x "
            f"{len(cols)} column labels, i.e. shape {expected} (and must not be empty)"
        )
    plt = _pyplot()
    grid_rows, grid_cols = _grid_shape(len(names))
    panel_width, panel_height = max(2.6, 0.22 * len(cols)), max(2.2, 0.22 * len(rows))
    # Room for the labels outside the panels: constrained layout fits them inside the figure.
    label_width = 0.07 * max(len(label) for label in rows) + 0.5
    label_height = 0.07 * max(len(label) for label in cols) + 0.5
    fig, axes = plt.subplots(
        grid_rows, grid_cols, squeeze=False, layout="constrained",
        figsize=(grid_cols * panel_width + label_width + 1.2, grid_rows * (panel_height + 0.4) + label_height + 0.6),
    )
    vmin, vmax = _color_limits(values)
    image = None
    for index, ax in enumerate(axes.ravel()):
        if index >= len(names):
            ax.axis("off")
            continue
        image = ax.imshow(np.ma.masked_invalid(values[index]), cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
        ax.set_title(names[index], fontsize=10)
        _set_xticklabels(ax, cols)
        _set_yticklabels(ax, rows)
        if index % grid_cols:
            ax.tick_params(labelleft=False)
        if index + grid_cols < len(names):  # another panel sits below this one
            ax.tick_params(labelbottom=False)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# bar charts


def _bar_height(count: int) -> float:
    """Figure height in inches for ``count`` horizontal bars."""
    return max(2.5, 0.32 * count + 1.3)


def bar_chart(values, labels: Sequence, title: str, path: str | Path, *, xlabel: str = "",
              top: int | None = None, sort: bool = True) -> Path:
    """Horizontal bar chart with the value written at each bar's end.

    Args:
        values: Bar lengths, shape ``(n,)``.
        labels: ``n`` bar labels (shown with ``str()``).
        title: Figure title.
        path: PNG file to write; its folder is created when missing.
        xlabel: Title of the value axis.
        top: Draw only the ``top`` largest values; all when None.
        sort: Order the bars by value, largest on top; otherwise keep the given order (first
            on top).

    Writes:
        ``path``: the bar chart PNG; taller with more bars.

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: ``values`` empty, not 1-D, holding NaN/inf, of a different length than
            ``labels``, or ``top`` < 1.
    """
    values = _finite_vector(values, "values")
    names = _labels(labels, "labels")
    if len(names) != len(values):
        raise ValueError(f"{len(values)} values but {len(names)} labels")
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    order = np.argsort(-values, kind="stable")
    if top is not None:
        # The `top` largest, in the requested order.
        order = order[:top] if sort else np.sort(order[:top])
    elif not sort:
        order = np.arange(len(values))
    plt = _pyplot()
    shown = values[order]
    fig, ax = plt.subplots(figsize=(8, _bar_height(len(order))))
    bars = ax.barh(range(len(order)), shown, color="tab:blue")
    ax.bar_label(bars, fmt="{:.3g}", padding=3, fontsize=_tick_fontsize(len(order)))
    _set_yticklabels(ax, [names[i] for i in order])
    ax.invert_yaxis()  # barh draws the first bar at the bottom; the first should be on top
    ax.axvline(0.0, color="black", lw=0.8)
    ax.margins(x=0.15)  # room for the value labels at the bar ends
    ax.set_xlabel(xlabel, fontsize=11)
    shown_note = f" (top {len(order)} of {len(values)})" if len(order) < len(values) else ""
    ax.set_title(f"{title}{shown_note}", fontsize=12)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two (n,) vectors; nan when undefined (n < 2 or constant)."""
    from scipy.stats import spearmanr  # scipy.stats is slow to import and needed only here

    if len(first) < 2:
        return float("nan")
    with warnings.catch_warnings():
        # A constant input has no ranks to correlate: scipy warns and returns nan.
        warnings.simplefilter("ignore")
        return float(spearmanr(first, second).statistic)


def importance_comparison(attention, permutation, labels: Sequence, path: str | Path, *, title: str = "",
                          permutation_std=None) -> Path:
    """Attention importance and permutation importance of the same features, side by side.

    Both panels list the features in the same order, sorted by attention importance with the
    largest on top; the figure title gives their Spearman rank correlation ("n/a" when it is
    undefined, e.g. for a constant input or a single feature).

    Args:
        attention: Attention importance per feature, shape ``(n,)``.
        permutation: Permutation importance per feature, shape ``(n,)`` (in the metric's units).
        labels: ``n`` feature names.
        path: PNG file to write; its folder is created when missing.
        title: First line of the figure title.
        permutation_std: Standard deviation of the permutation importance, shape ``(n,)``,
            drawn as error bars; none when None.

    Writes:
        ``path``: the two-panel PNG; taller with more features.

    Returns:
        ``path`` as a Path (the correlation is shown only; callers compute their own).

    Raises:
        ValueError: An input empty, not 1-D, holding NaN/inf, or of a length other than
            ``len(labels)``.
    """
    names = _labels(labels, "labels")
    attention = _finite_vector(attention, "attention", len(names))
    permutation = _finite_vector(permutation, "permutation", len(names))
    std = None if permutation_std is None else _finite_vector(permutation_std, "permutation_std", len(names))
    order = np.argsort(-attention, kind="stable")
    rho = _spearman(attention, permutation)
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, sharey=True, figsize=(11, _bar_height(len(names)) + 0.4))
    positions = np.arange(len(names))
    left.barh(positions, attention[order], color="tab:blue")
    right.barh(positions, permutation[order], color="tab:orange",
               xerr=None if std is None else std[order], capsize=2 if std is not None else 0)
    _set_yticklabels(left, [names[i] for i in order])
    left.invert_yaxis()  # shared y axis: inverts both panels, largest attention on top
    for ax, name in ((left, "attention importance"), (right, "permutation importance")):
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_xlabel(name, fontsize=11)
        ax.set_title(name + (" (± std)" if std is not None and ax is right else ""), fontsize=11)
        ax.grid(axis="x", alpha=0.3)
    heading = f"{title}\n" if title else ""
    # Two title lines need room above the panel titles.
    fig.suptitle(f"{heading}Spearman rank correlation: {_format_number(rho, '.3f')}", fontsize=12, y=1.0)
    fig.tight_layout(rect=(0, 0, 1, 0.9 if heading else 0.94))
    return _save(fig, path)
