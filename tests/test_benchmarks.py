"""The benchmark: the reference FT-Transformer, the aggregation of results, and a tiny end-to-end run."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import report  # noqa: E402
import run as bench_run  # noqa: E402

pytestmark = pytest.mark.slow  # end to end: trains models or runs real processes


def _spec(task="binary", num_classes=1):
    from tabcli.models.spec import ModelSpec

    return ModelSpec(task=task, numerical_names=["a", "b", "c"], categorical_names=["u", "v"], cardinalities=[4, 6],
                     num_classes=num_classes)


def test_ft_transformer_uses_only_stock_keras_layers_and_has_the_published_shape():
    from ft_transformer import build_ft_transformer

    model = build_ft_transformer(_spec("multiclass", 3), d_model=16, num_blocks=2, num_heads=4)
    assert {type(layer).__module__.split(".")[0] for layer in model.layers} == {"keras"}
    # tokens: 3 numerical + [CLS] (linear: weight + bias per token), 2 embedding tables
    tokens = model.get_layer("numerical_tokens")
    assert tuple(tokens.kernel.shape) == (4, 16) and tuple(tokens.bias.shape) == (4, 16)
    assert [model.get_layer(f"categorical_tokens_{j}").input_dim for j in range(2)] == [4, 6]
    # pre-norm: no attention LayerNorm in the first block, one in the second
    names = {layer.name for layer in model.layers}
    assert "block_0_attention_norm" not in names and "block_1_attention_norm" in names
    assert model.get_layer("block_0_ffn_in").units == 2 * round(16 * 4 / 3)  # ReGLU doubles the input width
    x = {"numerical": np.random.default_rng(0).normal(size=(5, 3)).astype("float32"),
         "categorical": np.array([[0, 1], [1, 2], [2, 3], [3, 4], [0, 5]], dtype="int32")}
    probabilities = np.asarray(model(x))
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_ft_transformer_learns_a_rule_that_needs_a_numerical_and_a_categorical_column():
    import keras

    from ft_transformer import build_ft_transformer

    rng = np.random.default_rng(0)
    n = 1200
    numerical = rng.normal(size=(n, 3)).astype("float32")
    categorical = np.stack([rng.integers(0, 4, n), rng.integers(0, 6, n)], axis=1).astype("int32")
    y = ((numerical[:, 0] > 0) ^ (categorical[:, 0] >= 2)).astype("float32")  # XOR: no single column decides
    keras.utils.set_random_seed(0)
    model = build_ft_transformer(_spec(), d_model=16, num_blocks=1, num_heads=2)
    model.compile(optimizer=keras.optimizers.AdamW(3e-3), loss="binary_crossentropy", metrics=["accuracy"])
    x = {"numerical": numerical, "categorical": categorical}
    model.fit({k: v[:1000] for k, v in x.items()}, y[:1000], epochs=25, batch_size=64, verbose=0)
    accuracy = model.evaluate({k: v[1000:] for k, v in x.items()}, y[1000:], verbose=0)[1]
    assert accuracy > 0.9


def _record(dataset, model, seed, test, **extra):
    return {"dataset": dataset, "model": model, "seed": seed, "metric": "rmse", "higher_is_better": False, "test": test,
            "fit_seconds": 10.0, "seconds_per_epoch": 1.0, "epochs": 20, "best_epoch": 12,
            "throughput_rows_per_s": 1000.0, "peak_rss_mib": 500.0, "parameters": 100, **extra}


def test_summary_means_spreads_ratios_and_order():
    records = [
        _record("cal", "gbdt", 42, 0.40, fit_seconds=0.5, seconds_per_epoch=None, throughput_rows_per_s=100000.0,
                peak_rss_mib=200.0),
        _record("cal", "gbdt", 43, 0.42, fit_seconds=0.5, seconds_per_epoch=None, throughput_rows_per_s=100000.0,
                peak_rss_mib=220.0),
        _record("cal", "tabular_attention", 42, 0.44, seconds_per_epoch=3.0),
        _record("cal", "tabular_attention", 43, 0.48, seconds_per_epoch=3.0),
        _record("cal", "ft_transformer", 42, 0.46, seconds_per_epoch=2.0),
        {"dataset": "cal", "model": "ft_transformer", "seed": 43, "error": "DataError: boom"},
        {"dataset": "cal", "model": "ensemble", "seed": 42, "error": "TrainingError: diverged"},
    ]
    rows = report.summarize(records)
    assert [r["model"] for r in rows] == ["gbdt", "tabular_attention", "ft_transformer", "ensemble"]  # lower rmse first
    gbdt, attention, ftt, ensemble = rows
    assert gbdt["test_mean"] == pytest.approx(0.41) and gbdt["test_std"] == pytest.approx(np.std([0.40, 0.42], ddof=1))
    assert gbdt["peak_rss_mib"] == 220.0 and gbdt["test_vs_gbdt"] == pytest.approx(1.0)
    assert attention["test_vs_gbdt"] == pytest.approx(0.46 / 0.41)
    assert attention["fit_seconds_vs_gbdt"] == pytest.approx(20.0)
    assert attention["throughput_rows_per_s_vs_gbdt"] == pytest.approx(0.01)
    assert attention["seconds_per_epoch_vs_ft_transformer"] == pytest.approx(1.5)
    assert (ftt["runs"], ftt["failed"], ftt["test_std"]) == (1, 1, 0.0)
    assert ensemble["runs"] == 0 and ensemble["errors"] == ["TrainingError: diverged"]
    markdown = report.to_markdown(rows)
    assert "### cal — test rmse (lower is better)" in markdown
    assert "| tabular_attention | 0.4600 ± 0.0283 | 1.122 |" in markdown
    assert "| ensemble | failed: TrainingError: diverged |" in markdown
    assert report.fmt_metric(296.22, scale=48451.0) == "296" and report.fmt_metric(0.0283, scale=0.46) == "0.0283"


def test_plan_skips_what_a_table_cannot_run_and_starts_with_expensive_cells():
    cells = bench_run.plan(["penguins", "california_housing", "breast_cancer"], ["gbdt", "tabular_attention", "multi_resolution"], [1, 2])
    assert cells[0] == ("california_housing", "tabular_attention", [1, 2])  # one process per cell, all seeds
    assert ("breast_cancer", "multi_resolution", [1, 2]) not in cells and ("california_housing", "multi_resolution", [1, 2]) not in cells
    assert ("penguins", "multi_resolution", [1, 2]) in cells and len(cells) == 7
    assert cells.index(("penguins", "multi_resolution", [1, 2])) < cells.index(("penguins", "gbdt", [1, 2]))


def test_tiny_benchmark_end_to_end(tmp_path):
    out = tmp_path / "bench"
    code = bench_run.main(["--out", str(out), "--datasets", "penguins", "--models", "gbdt", "ft_transformer",
                           "--seeds", "7", "8", "--jobs", "1", "--set", "training.epochs=2"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert sorted((r["model"], r["seed"]) for r in results["runs"]) == [
        ("ft_transformer", 7), ("ft_transformer", 8), ("gbdt", 7), ("gbdt", 8)]
    ftt = next(r for r in results["runs"] if r["model"] == "ft_transformer" and r["seed"] == 7)
    assert ftt["epochs"] == 2 and ftt["throughput_rows_per_s"] > 0 and ftt["peak_rss_mib"] > 50
    # throughput is measured once per cell, on its first seed
    assert next(r for r in results["runs"] if r["model"] == "ft_transformer" and r["seed"] == 8)["throughput_rows_per_s"] is None
    assert 0.0 <= ftt["test"] <= 1.0 and ftt["metric"] == "accuracy" and ftt["settings"][-1] == "training.epochs=2"
    gbdt = next(r for r in results["summary"] if r["model"] == "gbdt")
    assert gbdt["test_vs_gbdt"] == 1.0 and gbdt["test_mean"] > 0.9  # penguins is easy for boosting
    assert "### penguins" in (out / "results.md").read_text()
    # a second call without --resume refuses to mix results; with it, nothing is re-run
    assert bench_run.main(["--out", str(out), "--datasets", "penguins", "--models", "gbdt", "--seeds", "7"]) == 2
    before = (out / "runs" / "penguins" / "gbdt-7" / "result.json").read_text()
    (out / "runs" / "penguins" / "gbdt-8" / "result.json").unlink()  # as if interrupted after seed 7
    assert bench_run.main(["--out", str(out), "--datasets", "penguins", "--models", "gbdt", "--seeds", "7", "8", "--resume"]) == 0
    assert (out / "runs" / "penguins" / "gbdt-7" / "result.json").read_text() == before
    assert json.loads((out / "runs" / "penguins" / "gbdt-8" / "result.json").read_text())["seed"] == 8
    (out / "results.md").unlink()
    assert bench_run.main(["--out", str(out), "--report-only"]) == 0  # rebuilds the table from the finished runs
    assert "| ft_transformer |" in (out / "results.md").read_text()
