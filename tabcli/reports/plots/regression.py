"""Regression displays: predicted against actual, residuals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from tabcli.reports.plots._common import (
    _HEXBIN_ABOVE,
    _finite_vector,
    _format_number,
    _pyplot,
    _save,
)


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

