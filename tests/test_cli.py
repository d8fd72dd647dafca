"""The command line: help/version, end-to-end training on a bundled table, and user errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tabcli.cli import app
from conftest import DATASETS, REPO, TINY

runner = CliRunner()


def _sets(*items):
    return [arg for item in items for arg in ("--set", item)]


def test_help_and_version_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from tabcli.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0 and 'train' in r.output, r.output\n"
        "r = CliRunner().invoke(app, ['train', '--help'])\n"
        "assert r.exit_code == 0 and '--set' in r.output, r.output\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("tabcli ")


def test_train_writes_a_complete_run_directory(penguins_run):
    run_dir, output = penguins_run
    assert str(run_dir) in output and "accuracy" in output
    for name in ("config.yaml", "run.json", "model.keras", "preprocessing.joblib", "metrics.json", "history.csv",
                 "predictions/test.parquet", "attention/test.npz", "attention/test.json"):
        assert (run_dir / name).is_file(), name
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and info["seed"] == 42 and info["versions"]["keras"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"train", "valid", "test"}
    assert {"accuracy", "roc_auc", "log_loss", "f1_macro"} <= set(metrics["test"])
    assert metrics["test"]["accuracy"] > 0.5  # 3 classes, 44% majority; 5 tiny epochs already do better
    history = pd.read_csv(run_dir / "history.csv")
    assert len(history) == 5 and {"loss", "val_loss"} <= set(history.columns)


def test_predictions_and_attention_artifacts(penguins_run):
    run_dir, _ = penguins_run
    predictions = pd.read_parquet(run_dir / "predictions/test.parquet")
    assert len(predictions) == 69  # 20 % of 344 penguins
    proba = predictions[["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    accuracy = (predictions["prediction"] == predictions["target"]).mean()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert accuracy == pytest.approx(metrics["test"]["accuracy"])
    arrays = np.load(run_dir / "attention/test.npz")
    description = json.loads((run_dir / "attention/test.json").read_text())
    feature = arrays["tabular_attention__inter_feature_0"]
    labels = description["tabular_attention__inter_feature_0"]["labels"]["key_feature"]
    assert feature.shape == (50, 2, len(labels), len(labels))  # the first output.attention_rows test rows
    assert {"bill_length_mm", "island", "sex"} <= set(labels)
    np.testing.assert_allclose(feature.sum(-1), 1.0, atol=1e-4)
    weights, ids = arrays["retrieval__weights"], arrays["retrieval__ids"]
    assert weights.shape == (50, 1, 8) and ids.shape == (50, 8)  # k = 8 retrieved training rows, one head
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    train_rows = set(pd.read_csv(REPO / "datasets" / "penguins.csv").index) - set(predictions["row"])
    assert set(ids.ravel()) <= train_rows  # retrieved rows are training rows, never a test row
    assert set(arrays["retrieval__labels"].ravel()) <= {"Adelie", "Chinstrap", "Gentoo"}
    np.testing.assert_array_equal(arrays["row_ids"], predictions["row"][:50])


def test_model_reloads_after_import_tabcli_with_same_predictions(penguins_run):
    run_dir, _ = penguins_run
    code = f"""
import json, joblib, numpy as np, pandas as pd
import tabcli
import keras
model = keras.saving.load_model({str(run_dir / 'model.keras')!r})
prep = joblib.load({str(run_dir / 'preprocessing.joblib')!r})
table = pd.read_csv({str(DATASETS / 'penguins.csv')!r})
expected = pd.read_parquet({str(run_dir / 'predictions/test.parquet')!r})
inputs = prep.transform(table.loc[expected['row']])
inputs['candidate_index'] = np.full(len(expected), -1, dtype='int32')  # retrieval: -1 = not a training row
proba = model.predict(inputs, verbose=0)
want = expected[['proba_Adelie', 'proba_Chinstrap', 'proba_Gentoo']].to_numpy()
assert np.abs(proba - want).max() < 1e-5, np.abs(proba - want).max()
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def _train(config_path, run_dir, *sets):
    return runner.invoke(app, ["train", str(config_path), "--run-dir", str(run_dir), "--quiet", *_sets(*TINY, *sets)])


def _assert_user_error(result, run_dir, *phrases):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.output, result.output
    assert not run_dir.exists()  # nothing that looks like a run is left behind


def test_typo_in_key(write_config, tmp_path):
    path = write_config({"data": {"train": str(DATASETS / "penguins.csv"), "target": "species"}, "trainng": {"epochs": 2}})
    _assert_user_error(_train(path, tmp_path / "run", ), tmp_path / "run", "unknown key 'trainng'", "Did you mean 'training'")


def test_missing_target_column(write_config, tmp_path):
    path = write_config({"data": {"train": str(DATASETS / "penguins.csv"), "target": "specie"}})
    _assert_user_error(_train(path, tmp_path / "run"), tmp_path / "run", "target column 'specie'", "Available columns")


def test_missing_file(write_config, tmp_path):
    path = write_config({"data": {"train": "no_such_table.csv", "target": "y"}})
    _assert_user_error(_train(path, tmp_path / "run"), tmp_path / "run", "no_such_table.csv", "does not exist")


def test_unreadable_file(write_config, tmp_path):
    bad = tmp_path / "table.parquet"
    bad.write_bytes(b"this is not parquet at all")
    path = write_config({"data": {"train": str(bad), "target": "y"}})
    _assert_user_error(_train(path, tmp_path / "run"), tmp_path / "run", "Cannot read the training file", "Parquet")


def test_missing_config_file(tmp_path):
    _assert_user_error(_train(tmp_path / "nope.yaml", tmp_path / "run"), tmp_path / "run", "does not exist")


def test_existing_run_directory_is_never_overwritten(write_config, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text("{\"keep\": true}")
    path = write_config({"data": {"train": str(DATASETS / "penguins.csv"), "target": "species"}})
    result = _train(path, run_dir)
    assert result.exit_code == 2 and "already exists" in result.output
    assert (run_dir / "metrics.json").read_text() == "{\"keep\": true}"


@pytest.mark.parametrize(
    "raised, exit_code, status",
    [("nan", 1, "failed"), ("interrupt", 130, "interrupted")],
)
def test_failed_or_interrupted_run_is_marked_in_run_json(write_config, tmp_path, monkeypatch, raised, exit_code, status):
    import tabcli.training.trainer as trainer
    from tabcli.errors import TrainingError

    def broken_fit(*args, **kwargs):
        if raised == "nan":
            raise TrainingError("Training diverged: the loss became NaN/infinite at epoch 1, batch 3.")
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "fit_model", broken_fit)
    path = write_config({"data": {"train": str(DATASETS / "penguins.csv"), "target": "species"}})
    result = _train(path, tmp_path / "run")
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == status and info["finished_at"]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_nan_loss_stops_training_with_advice():
    from tabcli.config.experiment import TrainingConfig
    from tabcli.errors import TrainingError
    from tabcli.models.mlp.config import MLPConfig
    from tabcli.models.registry import build_model
    from tabcli.models.spec import ModelSpec
    from tabcli.training.trainer import compile_model, fit_model

    spec = ModelSpec(task="regression", numerical_names=["a"], categorical_names=[], cardinalities=[])
    model = build_model(MLPConfig(hidden_units=[4]), spec)
    config = TrainingConfig(epochs=3, batch_size=4)
    compile_model(model, "regression", config)
    x = {"numerical": np.full((16, 1), np.nan, dtype="float32")}
    with pytest.raises(TrainingError, match=r"NaN.*learning_rate"):
        fit_model(model, "regression", (x, np.zeros(16)), (x, np.zeros(16)), config)
