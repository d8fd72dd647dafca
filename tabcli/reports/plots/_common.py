"""What every plot shares: matplotlib on the Agg backend, saving, tick labels, cell annotations, input checks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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


