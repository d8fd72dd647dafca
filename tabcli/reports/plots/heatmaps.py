"""Heatmaps of attention scores: one matrix, or a grid of them (one per head)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tabcli.reports.plots._common import (
    _MAX_ANNOTATED_CELLS,
    _MAX_PANELS_PER_ROW,
    _annotate_cells,
    _pyplot,
    _save,
    _set_xticklabels,
    _set_yticklabels,
)


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

