"""`tabcli explain`: arrays, heatmaps, the importance table, trust checks and the HTML report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO
from tabcli.cli import app

sys.path.insert(0, str(REPO / "benchmarks"))
from planted import PLANTED, planted_table  # noqa: E402

pytestmark = pytest.mark.slow  # end to end: trains models or runs real processes

runner = CliRunner()


def test_explain_writes_arrays_heatmaps_and_report(penguins_run, tmp_path):
    run_dir, _ = penguins_run
    out = tmp_path / "explain"
    result = runner.invoke(app, ["explain", str(run_dir), "--rows", "0,2,5-6", "--output", str(out)])
    assert result.exit_code == 0, result.output
    arrays = np.load(out / "attention.npz")
    description = json.loads((out / "attention.json").read_text())
    tokens = description["tabular_attention__inter_feature_0"]["labels"]["key_feature"]
    assert arrays["tabular_attention__inter_feature_0"].shape == (4, 2, len(tokens), len(tokens))  # 4 chosen rows, 2 heads
    assert arrays["retrieval__weights"].shape == (4, 1, 8) and arrays["retrieval__ids"].shape == (4, 8)
    assert len(arrays["row_ids"]) == 4
    for name in ("tabular_attention__inter_feature_0.png", "tabular_attention__inter_feature_0_heads.png", "importance.png",
                 "attention_importance.png", "row_0.png", "row_6.png"):
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 100 and image.std() > 0.01, name
    importance = pd.read_csv(out / "importance.csv")
    assert set(importance["column"]) == {"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex", "year"}
    for column in ("importance", "retrieval_path", "inter_feature_path", "attention_importance"):
        assert importance[column].sum() == pytest.approx(1.0, abs=1e-6), column
    assert importance["importance"].is_monotonic_decreasing  # the model's ranking comes first
    trust = json.loads((out / "trust.json").read_text())
    assert set(trust) == {"importance", "attention"}
    assert trust["importance"]["deleted_columns"] == importance["column"].head(3).tolist()
    assert "Spearman with permutation" in result.output and "deleting its top 3" in result.output
    report = (out / "report.html").read_text()
    assert "Can these rankings be trusted" in report and report.count("data:image/png;base64,") >= 6
    assert "not by itself the model's reasons" in report  # the attention maps say what they are
    assert "made this row's neighbours its neighbours" in report and "leaned on most" in report


def test_explain_model_without_attention(tmp_path):
    run_dir = tmp_path / "mlp"
    args = ["train", str(REPO / "configs" / "penguins" / "mlp.yaml"), "--run-dir", str(run_dir), "--quiet", "--set", "training.epochs=3"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["explain", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "has no attention layer" in result.output and "top columns (occlusion)" in result.output
    assert not (run_dir / "explain" / "attention.npz").exists()
    assert (run_dir / "explain" / "report.html").is_file()
    importance = pd.read_csv(run_dir / "explain" / "importance.csv")
    assert importance["importance"].sum() == pytest.approx(1.0) and importance["attention_importance"].isna().all()


def test_bad_rows_spec(penguins_run):
    run_dir, _ = penguins_run
    result = runner.invoke(app, ["explain", str(run_dir), "--rows", "3-x"])
    assert result.exit_code == 2 and "--rows" in result.output
    result = runner.invoke(app, ["explain", str(run_dir), "--rows", "500"])
    assert result.exit_code == 2 and "between 0 and 68" in result.output


def test_attention_finds_the_two_features_that_decide_the_target(tmp_path):
    """The interpretable family: its attention (pooling read through the rollout) and its ranking
    both find the planted pair."""
    frame = planted_table("binary", rows=2000, seed=0)
    frame.to_csv(tmp_path / "product.csv", index=False)
    config = {
        "data": {"train": "product.csv", "target": "target"},
        "model": {"type": "interpretable", "d_model": 32, "num_heads": 4},
        "training": {"epochs": 25, "batch_size": 128},
    }
    (tmp_path / "product.yaml").write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", str(tmp_path / "product.yaml"), "--run-dir", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "metrics.json").read_text())["test"]["roc_auc"] > 0.95
    result = runner.invoke(app, ["explain", str(run_dir)])
    assert result.exit_code == 0, result.output
    importance = pd.read_csv(run_dir / "explain" / "importance.csv")
    for key in ("importance", "attention_importance", "permutation_importance"):
        ranked = importance.sort_values(key, ascending=False)["column"].tolist()
        assert set(ranked[:2]) == set(PLANTED), (key, ranked)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(penguins_run, tmp_path):
    run_dir, _ = penguins_run
    out = tmp_path / "explain"
    assert runner.invoke(app, ["explain", str(run_dir), "--output", str(out)]).exit_code == 0
    screenshot = tmp_path / "report.png"
    command = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1280,4000",
        f"--screenshot={screenshot}", (out / "report.html").as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    image = matplotlib.image.imread(screenshot)[..., :3]
    assert image.shape[:2] == (4000, 1280)
    # The embedded heatmaps and charts are colourful; a page of text and tables is not.
    colourful = (image.max(axis=-1) - image.min(axis=-1)) > 0.25
    assert colourful.mean() > 0.02, colourful.mean()
    distinct = np.unique((image * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(distinct) > 500
