"""Plots of tabcli.reports.plots: each writes a readable, non-blank PNG and closes its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tabcli.reports import plots

CLASSIFICATION_FILES = {"roc", "pr", "confusion_matrix", "calibration"}


def assert_png(path: Path) -> None:
    """``path`` is a PNG of at least 100 x 100 pixels that is not a single colour."""
    import matplotlib.image

    path = Path(path)
    assert path.is_file(), path
    assert path.suffix == ".png"
    pixels = matplotlib.image.imread(path)
    height, width = pixels.shape[:2]
    assert height > 100 and width > 100, (path.name, pixels.shape)
    assert float(pixels.std()) > 0.01, f"{path.name} looks blank"


def assert_no_open_figures() -> None:
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def assert_all_pngs(paths: dict[str, Path], keys: set[str]) -> None:
    assert set(paths) == keys
    for path in paths.values():
        assert_png(path)
    assert_no_open_figures()


def random_proba(rows: int, classes: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(classes), size=rows)


def informative_case(rows: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities that lean towards the true class, so curves are non-trivial."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % classes
    logits = rng.normal(size=(rows, classes))
    logits[np.arange(rows), y] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


# --------------------------------------------------------------------------------------------
# classification


def test_classification_binary_string_labels(tmp_path):
    y, proba = informative_case(80, 2)
    paths = plots.classification_plots(y, proba, ["no", "yes"], tmp_path / "binary")
    assert_all_pngs(paths, CLASSIFICATION_FILES)
    assert paths["roc"] == tmp_path / "binary" / "roc.png"


def test_classification_four_classes(tmp_path):
    y, proba = informative_case(120, 4)
    paths = plots.classification_plots(y, proba, ["alpha", "beta", "gamma", "delta"], tmp_path)
    assert_all_pngs(paths, CLASSIFICATION_FILES)


def test_classification_class_absent_from_y_true(tmp_path):
    y, proba = informative_case(60, 3)
    y[y == 2] = 0  # class "c" never occurs
    paths = plots.classification_plots(y, proba, ["a", "b", "c"], tmp_path)
    assert_all_pngs(paths, CLASSIFICATION_FILES)


def test_classification_binary_with_a_single_class_in_y_true(tmp_path):
    paths = plots.classification_plots(np.zeros(10, dtype=int), random_proba(10, 2), ["no", "yes"], tmp_path)
    assert_all_pngs(paths, CLASSIFICATION_FILES)


@pytest.mark.parametrize("classes", [[0, 1, 2], [False, True]], ids=["ints", "bools"])
def test_classification_int_and_bool_labels(tmp_path, classes):
    y, proba = informative_case(40, len(classes))
    paths = plots.classification_plots(y, proba, classes, tmp_path)
    assert_all_pngs(paths, CLASSIFICATION_FILES)


def test_classification_one_row(tmp_path):
    paths = plots.classification_plots(np.array([1]), np.array([[0.3, 0.7]]), ["no", "yes"], tmp_path)
    assert_all_pngs(paths, CLASSIFICATION_FILES)


def test_classification_many_classes_with_long_names(tmp_path):
    classes = [f"category number {k} with a long name" for k in range(12)]
    y, proba = informative_case(240, 12)
    paths = plots.classification_plots(y, proba, classes, tmp_path)
    assert_all_pngs(paths, CLASSIFICATION_FILES)


@pytest.mark.parametrize(
    ("y", "proba", "message"),
    [
        (np.array([0, 1]), np.full((2, 3), 1 / 3), r"shape \(rows, 2\)"),
        (np.array([0, 2]), np.full((2, 2), 0.5), r"outside \[0, 2\)"),
        (np.array([0, 1, 1]), np.full((2, 2), 0.5), "y_true must have shape"),
    ],
    ids=["columns", "index", "rows"],
)
def test_classification_rejects_inconsistent_inputs(tmp_path, y, proba, message):
    with pytest.raises(ValueError, match=message):
        plots.classification_plots(y, proba, ["no", "yes"], tmp_path)
    assert_no_open_figures()


# --------------------------------------------------------------------------------------------
# regression


def test_regression_small(tmp_path):
    rng = np.random.default_rng(0)
    actual = rng.normal(50, 10, size=200)
    paths = plots.regression_plots(actual, actual + rng.normal(0, 3, size=200), "price (EUR)", tmp_path / "reg")
    assert_all_pngs(paths, {"predicted_vs_actual", "residuals"})
    assert paths["residuals"] == tmp_path / "reg" / "residuals.png"


def test_regression_hexbin_above_5000_rows(tmp_path):
    rng = np.random.default_rng(1)
    actual = rng.normal(size=6000)
    paths = plots.regression_plots(actual, 0.8 * actual + rng.normal(0, 0.3, size=6000), "y", tmp_path)
    assert_all_pngs(paths, {"predicted_vs_actual", "residuals"})


def test_regression_one_row(tmp_path):
    paths = plots.regression_plots([3.0], [2.5], "y", tmp_path)
    assert_all_pngs(paths, {"predicted_vs_actual", "residuals"})


def test_regression_rejects_length_mismatch(tmp_path):
    with pytest.raises(ValueError, match="y_pred has 2 entries, expected 3"):
        plots.regression_plots([1.0, 2.0, 3.0], [1.0, 2.0], "y", tmp_path)


# --------------------------------------------------------------------------------------------
# heatmaps


def test_heatmap_30_by_30_long_labels(tmp_path):
    labels = [f"feature_with_a_long_name_{i}" for i in range(30)]
    matrix = np.random.default_rng(0).random((30, 30))
    path = plots.heatmap(matrix, labels, labels, "attention between features", tmp_path / "sub" / "h.png",
                         xlabel="key feature", ylabel="query feature")
    assert path == tmp_path / "sub" / "h.png"
    assert_png(path)
    assert_no_open_figures()


def test_heatmap_small_annotated_with_int_labels(tmp_path):
    path = plots.heatmap(np.arange(6).reshape(2, 3), [0, 1], [True, False, "x"], "small", tmp_path / "h.png",
                         value_format=".0f", cmap="Blues")
    assert_png(path)
    assert_no_open_figures()


def test_heatmap_shape_mismatch_names_both_shapes(tmp_path):
    with pytest.raises(ValueError) as error:
        plots.heatmap(np.zeros((3, 4)), ["a", "b"], ["c", "d", "e", "f"], "bad", tmp_path / "h.png")
    assert "(3, 4)" in str(error.value) and "(2, 4)" in str(error.value)
    assert not (tmp_path / "h.png").exists()
    assert_no_open_figures()


def test_heatmap_grid_eight_heads(tmp_path):
    rows = [f"row {i}" for i in range(6)]
    cols = [f"column_{j}" for j in range(10)]
    matrices = np.random.default_rng(0).random((8, 6, 10))
    path = plots.heatmap_grid(matrices, rows, cols, [f"head {h}" for h in range(8)], tmp_path / "grid.png",
                              suptitle="attention per head")
    assert_png(path)
    assert_no_open_figures()


def test_heatmap_grid_uneven_last_row(tmp_path):
    matrices = np.random.default_rng(0).random((5, 3, 3))
    path = plots.heatmap_grid(matrices, [1, 2, 3], ["a", "b", "c"], list("ABCDE"), tmp_path / "grid.png")
    assert_png(path)
    assert_no_open_figures()


def test_heatmap_grid_shape_mismatch(tmp_path):
    with pytest.raises(ValueError, match=r"\(2, 3, 3\).*\(3, 3, 3\)"):
        plots.heatmap_grid(np.zeros((2, 3, 3)), list("abc"), list("abc"), list("XYZ"), tmp_path / "g.png")


# --------------------------------------------------------------------------------------------
# bar charts


def test_bar_chart_top_5_of_20(tmp_path):
    values = np.random.default_rng(0).random(20)
    path = plots.bar_chart(values, [f"feature {i}" for i in range(20)], "importance", tmp_path / "bars.png",
                           xlabel="mean attention", top=5)
    assert_png(path)
    assert_no_open_figures()


def test_bar_chart_unsorted_single_bar(tmp_path):
    path = plots.bar_chart([0.4], [True], "one bar", tmp_path / "bar.png", sort=False)
    assert_png(path)
    assert_no_open_figures()


def test_bar_chart_rejects_label_mismatch(tmp_path):
    with pytest.raises(ValueError, match="3 values but 2 labels"):
        plots.bar_chart([1.0, 2.0, 3.0], ["a", "b"], "bad", tmp_path / "b.png")


@pytest.mark.parametrize("with_std", [False, True], ids=["no_std", "std"])
def test_importance_comparison(tmp_path, with_std):
    rng = np.random.default_rng(0)
    attention = rng.random(30)
    permutation = attention + rng.normal(0, 0.1, size=30)
    std = rng.random(30) * 0.05 if with_std else None
    path = plots.importance_comparison(attention, permutation, [f"feature_{i}" for i in range(30)],
                                       tmp_path / "compare.png", title="validation split", permutation_std=std)
    assert path == tmp_path / "compare.png"
    assert_png(path)
    assert_no_open_figures()


def test_importance_comparison_constant_input(tmp_path):
    path = plots.importance_comparison([0.5, 0.5, 0.5], [0.1, 0.3, 0.2], ["a", "b", "c"], tmp_path / "c.png")
    assert_png(path)
    assert_no_open_figures()


def test_one_rank_correlation_rule_for_charts_and_reports():
    """The chart title and the explain report compute Spearman's rho by the same rule: None (shown
    as "n/a") below 3 values or for a constant vector."""
    from tabcli.explain.importance import rank_correlation
    from tabcli.evaluation.metrics import spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None
    assert rank_correlation({"a": 1.0, "b": 2.0, "c": 3.0, "x": 9.0}, {"c": 0.3, "b": 0.2, "a": 0.1}) == pytest.approx(1.0)
    assert rank_correlation({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0}) is None


# --------------------------------------------------------------------------------------------
# import cost


def test_import_does_not_load_matplotlib():
    code = (
        "import sys, tabcli.reports.plots; "
        "print('matplotlib.pyplot' in sys.modules, 'matplotlib' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_loading_keras_leaves_pyplot_out_and_plots_still_work():
    code = (
        "import sys; from tabcli.models.backends.quiet import import_keras_quietly; import_keras_quietly(); "
        "loaded = 'matplotlib.pyplot' in sys.modules; "
        "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
        "figure = plt.figure(); figure.gca().plot([0, 1], [1, 0]); figure.canvas.draw(); "
        "print(loaded, len(figure.axes))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "1"]
