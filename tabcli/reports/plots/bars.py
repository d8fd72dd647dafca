"""Bar charts of importances, and attention importance beside permutation importance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tabcli.reports.plots._common import (
    _finite_vector,
    _format_number,
    _labels,
    _pyplot,
    _save,
    _set_yticklabels,
    _tick_fontsize,
)


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


def importance_comparison(attention, permutation, labels: Sequence, path: str | Path, *, title: str = "",
                          permutation_std=None, name: str = "attention importance",
                          correlation: float | None = None) -> Path:
    """An importance (attention importance by default) and permutation importance of the same
    features, side by side.

    Both panels list the features in the same order, sorted by the first importance with the
    largest on top; the figure title gives their Spearman rank correlation
    (:func:`tabcli.evaluation.metrics.spearman`; "n/a" when it is undefined: fewer than 3 features or a
    constant input).

    Args:
        attention: Attention importance per feature, shape ``(n,)``.
        permutation: Permutation importance per feature, shape ``(n,)`` (in the metric's units).
        labels: ``n`` feature names.
        path: PNG file to write; its folder is created when missing.
        title: First line of the figure title.
        permutation_std: Standard deviation of the permutation importance, shape ``(n,)``,
            drawn as error bars; none when None.
        name: What the first importance is (its panel's title and axis label).
        correlation: The rank correlation to print in the title; None computes Spearman's from
            the two vectors as given.

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
    if correlation is None:
        from tabcli.evaluation.metrics import spearman  # scikit-learn and scipy: imported when a chart needs them

        correlation = spearman(attention, permutation)
    rho = correlation
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, sharey=True, figsize=(11, _bar_height(len(names)) + 0.4))
    positions = np.arange(len(names))
    left.barh(positions, attention[order], color="tab:blue")
    right.barh(positions, permutation[order], color="tab:orange",
               xerr=None if std is None else std[order], capsize=2 if std is not None else 0)
    _set_yticklabels(left, [names[i] for i in order])
    left.invert_yaxis()  # shared y axis: inverts both panels, largest attention on top
    for ax, label in ((left, name), (right, "permutation importance")):
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_xlabel(label, fontsize=11)
        ax.set_title(label + (" (± std)" if std is not None and ax is right else ""), fontsize=11)
        ax.grid(axis="x", alpha=0.3)
    heading = f"{title}\n" if title else ""
    # Two title lines need room above the panel titles.
    fig.suptitle(f"{heading}Spearman rank correlation: {_format_number(rho, '.3f')}", fontsize=12, y=1.0)
    fig.tight_layout(rect=(0, 0, 1, 0.9 if heading else 0.94))
    return _save(fig, path)
