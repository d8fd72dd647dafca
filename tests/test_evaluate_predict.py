"""`tabcli evaluate` and `tabcli predict` on a trained run."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import DATASETS
from tabcli.cli import app

runner = CliRunner()


def test_evaluate_on_the_test_split_reproduces_metrics_json(penguins_run, tmp_path):
    run_dir, _ = penguins_run
    output = tmp_path / "eval" / "metrics.json"
    result = runner.invoke(app, ["evaluate", str(run_dir), "--output", str(output)])
    assert result.exit_code == 0, result.output
    measured = json.loads(output.read_text())["test"]
    trained = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert set(measured) == set(trained)
    for key, value in trained.items():
        if isinstance(value, float):
            assert measured[key] == pytest.approx(value, abs=1e-6), key
        else:
            assert measured[key] == value, key
    assert {"accuracy", "balanced_accuracy", "roc_auc", "pr_auc", "log_loss", "f1_macro", "brier", "confusion_matrix"} <= set(measured)
    assert np.sum(measured["confusion_matrix"]) == 69
    for name in ("roc", "pr", "confusion_matrix", "calibration"):
        image = matplotlib.image.imread(output.parent / f"{name}.png")
        assert image.shape[0] > 100 and image.std() > 0.01
    assert "accuracy" in result.output


def test_evaluate_on_a_labelled_file(penguins_run, tmp_path):
    run_dir, _ = penguins_run
    result = runner.invoke(app, ["evaluate", str(run_dir), "--data", str(DATASETS / "penguins.csv")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run_dir / "evaluation" / "data" / "metrics.json").read_text())["data"]
    assert np.sum(metrics["confusion_matrix"]) == 344
    assert metrics["accuracy"] > 0.5


def test_evaluate_without_target_says_to_use_predict(penguins_run, tmp_path):
    run_dir, _ = penguins_run
    unlabelled = tmp_path / "new.csv"
    pd.read_csv(DATASETS / "penguins.csv").drop(columns=["species"]).to_csv(unlabelled, index=False)
    result = runner.invoke(app, ["evaluate", str(run_dir), "--data", str(unlabelled)])
    assert result.exit_code == 2 and "tabcli predict" in result.output and "Traceback" not in result.output


def test_evaluate_rejects_incomplete_run(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result = runner.invoke(app, ["evaluate", str(run_dir)])
    assert result.exit_code == 2 and "not a complete tabcli run directory" in result.output


def test_predict_one_row_per_input_row_in_order(penguins_run, tmp_path):
    run_dir, _ = penguins_run
    table = pd.read_csv(DATASETS / "penguins.csv")
    rows = table.drop(columns=["species"]).iloc[::-1].reset_index(drop=True)  # reversed order, no target
    rows["penguin_id"] = [f"p{i}" for i in range(len(rows))]
    rows.loc[0, "island"] = "Atlantis"  # a category never seen in training
    rows.loc[1, "bill_length_mm"] = np.nan
    source = tmp_path / "new.parquet"
    rows.to_parquet(source)
    output = tmp_path / "predictions.csv"
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(source), "--output", str(output), "--id-column", "penguin_id"])
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(output)
    assert list(predictions.columns) == ["penguin_id", "prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]
    assert predictions["penguin_id"].tolist() == rows["penguin_id"].tolist()
    proba = predictions.filter(like="proba_").to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (predictions["prediction"] == predictions.filter(like="proba_").idxmax(axis=1).str.removeprefix("proba_")).all()
    # Same rows in another order (other neighbours in each batch): each row keeps its probabilities.
    shuffled_source = tmp_path / "shuffled.parquet"
    rows.sample(frac=1.0, random_state=0).to_parquet(shuffled_source)
    again = tmp_path / "again.parquet"
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(shuffled_source), "--output", str(again),
                                 "--id-column", "penguin_id"])
    assert result.exit_code == 0, result.output
    shuffled = pd.read_parquet(again).set_index("penguin_id").loc[predictions["penguin_id"]]
    np.testing.assert_allclose(shuffled.filter(like="proba_").to_numpy(), proba, atol=1e-6)


def test_predict_errors_name_the_columns(penguins_run, tmp_path):
    run_dir, _ = penguins_run
    table = pd.read_csv(DATASETS / "penguins.csv")
    missing = tmp_path / "missing.csv"
    table.drop(columns=["island", "sex"]).to_csv(missing, index=False)
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(missing), "--output", str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and "['island', 'sex']" in result.output and "Traceback" not in result.output
    wrong_type = tmp_path / "wrong.csv"
    bad = table.copy()
    bad["body_mass_g"] = bad["body_mass_g"].astype(object)
    bad.loc[0, "body_mass_g"] = "heavy"
    bad.to_csv(wrong_type, index=False)
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(wrong_type), "--output", str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and "body_mass_g" in result.output and "heavy" in result.output
    assert not (tmp_path / "p.csv").exists()
    existing = tmp_path / "keep.csv"
    existing.write_text("precious\n")
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(DATASETS / "penguins.csv"), "--output", str(existing)])
    assert result.exit_code == 2 and "--overwrite" in result.output and existing.read_text() == "precious\n"
