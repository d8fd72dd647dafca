"""End to end on the shared benchmark tables (CI only: they live in ../shared/datasets).

Few epochs and a small model keep these to well under a minute each on 2 cores; the full-default
figures are measured with the configs in configs/benchmarks/ and
benchmarks/run.py and reported in docs/benchmarks.md, not asserted here.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import export_columns, REPO, shared_dataset
from tabcli.cli import app

pytestmark = pytest.mark.slow  # end to end: trains models or runs real processes

runner = CliRunner()
FAST = ["model.d_model=32", "model.num_heads=4", "training.batch_size=512"]


def _train(config, data, run_dir, *sets):
    args = ["train", str(REPO / "configs" / "benchmarks" / config), "--run-dir", str(run_dir), "--quiet",
            "--set", f"data.train={data}"]
    for item in (*FAST, *sets):
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def bank_run(tmp_path_factory):
    # A seeded random 20,000 of the 45,211 rows keeps the module within the CI budget.
    folder = tmp_path_factory.mktemp("bank")
    data = folder / "bank_marketing.csv"
    pd.read_csv(shared_dataset("bank_marketing.csv")).sample(20_000, random_state=0).to_csv(data, index=False)
    run_dir = folder / "run"
    metrics = _train("bank_marketing.yaml", data, run_dir, "training.epochs=3", "model.num_feature_blocks=1", "model.context_rows=16")
    return run_dir, metrics, data


# Both bank tests on one worker (pytest-xdist), so the module's trained run is built once.
@pytest.mark.xdist_group("bank_marketing")
def test_bank_marketing_beats_the_majority_class(bank_run):
    _, metrics, _ = bank_run
    test = metrics["test"]
    # 11.7 % positives: always answering "no" scores accuracy 0.883 and ROC AUC 0.5.
    assert test["accuracy"] >= 0.895, test
    assert test["roc_auc"] >= 0.90, test


@pytest.mark.xdist_group("bank_marketing")
def test_bank_marketing_evaluate_predict_explain(bank_run, tmp_path):
    run_dir, metrics, data = bank_run
    result = runner.invoke(app, ["evaluate", str(run_dir), "--output", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval.json").read_text())["test"]["roc_auc"] == pytest.approx(metrics["test"]["roc_auc"], abs=1e-6)
    table = pd.read_csv(data)
    rows = table.drop(columns=["y"]).head(300)
    rows.to_csv(tmp_path / "new.csv", index=False)
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(tmp_path / "new.csv"), "--output", str(tmp_path / "p.parquet")])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == 300
    # 600 of the test rows (with their labels) keep the global figures' cost down; the run's
    # own test split is the default path, exercised on penguins.
    test_rows = pd.read_parquet(run_dir / "predictions" / "test.parquet")["row"].to_numpy()[:600]
    table.loc[test_rows].to_csv(tmp_path / "labelled.csv", index=False)
    result = runner.invoke(app, ["explain", str(run_dir), "--data", str(tmp_path / "labelled.csv"), "--rows", "0-2",
                                 "--output", str(tmp_path / "explain")])
    assert result.exit_code == 0, result.output
    importance = pd.read_csv(tmp_path / "explain" / "importance.csv")
    assert len(importance) == 16 and importance["permutation_importance"].notna().all()
    # call duration is the strongest single predictor of a subscription in this table
    assert importance.sort_values("permutation_importance", ascending=False)["column"].iloc[0] == "duration"
    _assert_export_matches(run_dir, table.loc[test_rows[:400]], tmp_path / "export")


def _assert_export_matches(run_dir, frame, export_dir):
    """The run exported as a SavedModel (TensorFlow) and as ONNX (ONNX Runtime) predicts ``frame``
    as the run does: probabilities within 1e-4 and the same class, or values within 1e-4 relative.
    ONNX Runtime may retrieve other training rows only where they tie with the run's k-th nearest."""
    import onnxruntime as ort
    import tensorflow as tf

    import tabcli

    run = tabcli.load_run(run_dir)
    expected = run.predict(frame)
    columns = export_columns(run, frame)
    result = runner.invoke(app, ["export", str(run_dir), "--output", str(export_dir)])
    assert result.exit_code == 0, result.output
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    served = {name: value.numpy() for name, value in serve(**{k: tf.constant(v) for k, v in columns.items()}).items()}
    onnx_path = export_dir.with_suffix(".onnx")
    result = runner.invoke(app, ["export", str(run_dir), "--output", str(onnx_path), "--format", "onnx", "--attention"])
    assert result.exit_code == 0, result.output
    session = ort.InferenceSession(str(onnx_path))
    feed = {i.name: columns[i.name].astype(object) if i.type == "tensor(string)" else columns[i.name] for i in session.get_inputs()}
    ran = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    for got, runtime in ((served, "tensorflow"), (ran, "onnxruntime")):
        if run.schema.task == "regression":
            want = expected["prediction"].to_numpy()
            off = np.abs(got["prediction"] - want) / np.maximum(np.abs(want), 1e-9) > 1e-4
        else:
            want = expected.filter(like="proba_").to_numpy()
            off = (np.abs(got["probabilities"] - want).max(1) > 1e-4) | (got["probabilities"].argmax(1) != want.argmax(1))
        if runtime == "tensorflow":
            assert not off.any(), np.where(off)[0]
            continue
        # ONNX Runtime computes the keys and distances with other kernels, so a row whose k-th and
        # (k+1)-th nearest training rows are almost equally far may retrieve the other one (seen at
        # a gap of 5.5e-5 of the squared distance). Such rows must be rare, and the rows retrieved
        # differently must all be such ties.
        assert off.mean() <= 0.01, np.where(off)[0]
        inputs = run.inputs(frame)
        arrays, _ = run.attention_scores(inputs, list(frame.index))
        swapped = _swapped_only_at_ties(run, inputs, arrays["retrieval__ids"], got["retrieval__ids"])
        assert not (off & ~swapped).any(), np.where(off & ~swapped)[0]


def _swapped_only_at_ties(run, inputs, ids, other_ids, relative=2e-4):
    """Per row of the model inputs ``inputs``: whether ``other_ids`` ``(rows, k)`` (training row
    ids) retrieves rows other than the run's ``ids``. Asserts that every row in one set and not
    the other is, by the run's own float32 keys, within ``relative`` of the k-th nearest's squared
    distance: a tie at the k-th place, not another neighbourhood."""
    layer = run.model.get_layer("retrieval")
    queries = layer.row_keys(inputs.get("numerical"), inputs.get("categorical")).astype(np.float64)
    keys = layer.candidate_keys().astype(np.float64)
    position = {int(row): i for i, row in enumerate(keras.ops.convert_to_numpy(layer.candidate_ids))}
    swapped = np.zeros(len(ids), bool)
    for row, (mine, theirs) in enumerate(zip(ids, other_ids)):
        differ = set(map(int, mine)) ^ set(map(int, theirs))
        if not differ:
            continue
        swapped[row] = True
        distance = {i: float(((keys[position[i]] - queries[row]) ** 2).sum()) for i in set(map(int, mine)) | differ}
        kth = max(distance[i] for i in map(int, mine))
        assert all(abs(distance[i] - kth) <= relative * kth for i in differ), (row, sorted(distance[i] for i in differ), kth)
    return swapped


def test_california_housing_regression_in_target_units(tmp_path):
    data = shared_dataset("california_housing.parquet")
    metrics = _train("california_housing.yaml", data, tmp_path / "cal", "training.epochs=6", "model.num_feature_blocks=1", "model.context_rows=16")
    test = metrics["test"]
    # Predicting the mean scores RMSE ~1.15 (the target's standard deviation, in $100,000).
    assert test["rmse"] <= 0.65, test
    assert test["r2"] >= 0.68, test
    _assert_export_matches(tmp_path / "cal", pd.read_parquet(data).sample(500, random_state=0), tmp_path / "export")


def test_california_raw_mixed_types_with_missing_values(tmp_path):
    data = shared_dataset("california_housing_raw.csv")
    run_dir = tmp_path / "raw"
    metrics = _train("california_housing_raw.yaml", data, run_dir, "model.type=multi_resolution", "model.num_blocks=1", "training.epochs=4")
    assert metrics["test"]["rmse"] <= 80_000, metrics["test"]  # in dollars; the target's std is ~115,000
    description = json.loads((run_dir / "attention" / "test.json").read_text())
    assert description["multi_resolution_0__numerical_to_categorical"]["labels"]["key_categorical"] == ["ocean_proximity"]
    # With seed 42 every row missing total_bedrooms falls in the test split: values the
    # preprocessing never saw missing must still be imputed, not crash or give NaN.
    table = pd.read_csv(data)
    predictions = pd.read_parquet(run_dir / "predictions" / "test.parquet")
    missing = table.loc[predictions["row"], "total_bedrooms"].isna().to_numpy()
    assert missing.sum() > 0
    assert predictions["prediction"].notna().all()
