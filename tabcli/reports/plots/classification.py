"""Classification displays: ROC and precision-recall curves, confusion matrix, calibration (reliability) curves.

Each curve is drawn by scikit-learn's own display (``RocCurveDisplay``, ``PrecisionRecallDisplay``,
``CalibrationDisplay``); this module adds what they do not draw: one-vs-rest curves of every
class with their macro average, the classes that cannot have a curve, and the histogram of the
probabilities beneath a reliability diagram."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

from tabcli.reports.plots._common import (
    _CALIBRATION_BINS,
    _MAX_ANNOTATED_CELLS,
    _MIN_ROWS_FOR_QUANTILE_BINS,
    _annotate_cells,
    _format_number,
    _labels,
    _names_note,
    _pyplot,
    _save,
    _set_xticklabels,
    _set_yticklabels,
)


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


def _one_vs_rest_curves(ax, display_class, y_true, proba, names, drawn, score, curve, label: str) -> None:
    """Each class of ``drawn`` against the rest, drawn by scikit-learn's ``display_class``
    (``RocCurveDisplay`` or ``PrecisionRecallDisplay``), then, for several classes, their macro
    average: ``curve(display, grid)`` puts each on a common grid and the legend gives the mean
    of ``score(display)`` (as ``roc_auc_score`` / ``average_precision_score`` with
    ``average="macro"``)."""
    grid = np.linspace(0.0, 1.0, 201)
    curves, scores = [], []
    for k, color in zip(drawn, _class_colors(len(drawn))):
        display = display_class.from_predictions(y_true == k, proba[:, k], pos_label=True, name=names[k], ax=ax,
                                                 curve_kwargs={"color": color, "lw": 1.5})
        scores.append(score(display))
        curves.append(curve(display, grid))
    if len(drawn) > 1:
        ax.plot(grid, np.mean(curves, axis=0), color="black", lw=2.5, label=f"macro average ({label} = {np.mean(scores):.3f})")


def _roc_plot(y_true: np.ndarray, proba: np.ndarray, names: list[str], path: Path) -> Path:
    """ROC curve(s) of ``proba`` (n, K) against ``y_true`` (n,), written to ``path``."""
    drawn, skipped = _one_vs_rest(y_true, len(names))
    fig, ax, outside = _curve_figure(len(drawn))
    _one_vs_rest_curves(ax, RocCurveDisplay, y_true, proba, names, drawn, lambda d: d.roc_auc,
                        lambda d, grid: np.interp(grid, d.fpr, d.tpr), "AUC")
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
    _one_vs_rest_curves(ax, PrecisionRecallDisplay, y_true, proba, names, drawn, lambda d: d.average_precision,
                        lambda d, grid: _interpolated_precision(d.recall, d.precision, grid), "AP")
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
    fig, (ax, hist_ax) = plt.subplots(
        2, 1, figsize=(6.5, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08}
    )
    CalibrationDisplay.from_predictions(is_positive.astype(int), probability, n_bins=_CALIBRATION_BINS, strategy=strategy,
                                        pos_label=1, name=f"model ({_CALIBRATION_BINS} {strategy} bins)", ax=ax, lw=1.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("")
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


