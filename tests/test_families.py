"""Every model family trains end to end, writes described attention scores for every attention layer, and
exports as a SavedModel and an ONNX file that predict as the run does."""

from __future__ import annotations

import json

import joblib
import keras
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import DATASETS, REPO, export_columns
from tabcli.cli import app
from tabcli.runs.run import LoadedRun

pytestmark = pytest.mark.slow  # end to end: trains models or runs real processes

runner = CliRunner()

TINY = {
    "tabular_attention": ["model.d_model=16", "model.num_heads=2", "model.num_feature_blocks=1",
                          "model.inter_sample=retrieval", "model.retrieval.k=8"],
    "multi_resolution": ["model.d_model=16", "model.num_heads=2", "model.num_blocks=1"],
    "interpretable": ["model.d_model=16", "model.num_heads=2", "model.num_blocks=2"],
    "ensemble": ["model.d_model=16", "model.normalizer=sparsemax",
                 "model.branches=[{type: tabular_attention, d_model: 16, num_heads: 2, inter_sample: retrieval, num_feature_blocks: 1}, "
                 "{type: interpretable, d_model: 16, num_heads: 2, num_blocks: 1}, {type: mlp, hidden_units: [16]}]"],
    "mlp": ["model.hidden_units=[32]", "training.epochs=15"],
    "gbdt": ["model.max_iter=50"],
}
EXPECTED_ARRAYS = {
    "tabular_attention": {"tabular_attention__inter_feature_0", "retrieval__weights", "retrieval__ids", "retrieval__labels"},
    "multi_resolution": {f"multi_resolution_0__{s}" for s in
                         ("numerical_self", "categorical_self", "numerical_to_categorical", "categorical_to_numerical")},
    "interpretable": {"interpretable_attention_0__attention", "interpretable_attention_1__attention", "attention_pooling__pooling"},
    "ensemble": {"b0_tabular_attention_tabular_attention__inter_feature_0", "b0_tabular_attention_retrieval__weights",
                 "b0_tabular_attention_retrieval__ids", "b0_tabular_attention_retrieval__labels",
                 "b1_interpretable_interpretable_attention_0__attention", "b1_interpretable_attention_pooling__pooling",
                 "branch_weighting__module_weights"},
}


def _train(family, run_dir, config="penguins"):
    args = ["train", str(REPO / "configs" / config / f"{family}.yaml"), "--run-dir", str(run_dir), "--quiet",
            "--set", "training.epochs=2", "--set", "training.batch_size=64"]
    for item in TINY[family]:
        args += ["--set", item]
    return runner.invoke(app, args)


def _check_exports(run, run_dir, table, tmp_path):
    """Both export formats give the run's probabilities on every row of the table plus a category never
    seen in training and missing values (SavedModel in TensorFlow, ONNX in ONNX Runtime)."""
    import onnxruntime as ort
    import tensorflow as tf

    odd = table.head(3).copy()
    odd.loc[odd.index[0], "island"] = "Atlantis"
    odd.loc[odd.index[1], ["bill_length_mm", "body_mass_g"]] = np.nan
    odd.loc[odd.index[2], "sex"] = np.nan
    table = pd.concat([table, odd], ignore_index=True)
    columns, expected = export_columns(run, table), run.predict_raw(table)
    for kind, path in (("savedmodel", tmp_path / "export"), ("onnx", tmp_path / "model.onnx")):
        exported = runner.invoke(app, ["export", str(run_dir), "--output", str(path), "--format", kind])
        assert exported.exit_code == 0, exported.output
        if kind == "savedmodel":
            serve = tf.saved_model.load(str(path)).signatures["serving_default"]
            served = serve(**{k: tf.constant(v) for k, v in columns.items()})["probabilities"].numpy()
        else:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            feeds = {i.name: columns[i.name].astype(object) if i.type == "tensor(string)" else columns[i.name]
                     for i in session.get_inputs()}
            served = session.run(["probabilities"], feeds)[0]
        assert np.abs(served - expected).max() <= 1e-4, kind
        assert (served.argmax(1) == expected.argmax(1)).all(), kind


@pytest.mark.parametrize("family", list(TINY))
def test_family_trains_and_writes_described_attention(family, tmp_path):
    run_dir = tmp_path / family
    result = _train(family, run_dir)
    assert result.exit_code == 0, result.output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.44  # above always predicting the majority class (Adelie)

    predictions = pd.read_parquet(run_dir / "predictions/test.parquet")
    table = pd.read_csv(DATASETS / "penguins.csv")
    reloaded = LoadedRun(run_dir)
    rows = table.loc[predictions["row"]]
    saved = predictions.filter(like="proba_").to_numpy()
    np.testing.assert_allclose(reloaded.predict_raw(rows), saved, atol=1e-5)
    # The model file alone (plain joblib / keras loading) gives the same probabilities.
    inputs = reloaded.inputs(rows)
    if family == "gbdt":
        assert not (run_dir / "model.keras").exists()
        direct = joblib.load(run_dir / "model.joblib").predict_proba(np.concatenate([inputs["numerical"], inputs["categorical"]], axis=1))
    else:
        from tabcli.models.candidates import with_candidate_index

        model = keras.saving.load_model(run_dir / "model.keras")
        # A retrieval model has one more input, each row's own candidate position in training; -1 here.
        direct = model.predict(with_candidate_index(model, inputs), verbose=0)
    np.testing.assert_allclose(direct, saved, atol=1e-5)

    evaluated = runner.invoke(app, ["evaluate", str(run_dir)])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((run_dir / "evaluation/test/metrics.json").read_text())["test"]["accuracy"] == pytest.approx(
        metrics["test"]["accuracy"]
    )
    explained = runner.invoke(app, ["explain", str(run_dir), "--rows", "0-1"])
    assert explained.exit_code == 0, explained.output
    assert (run_dir / "explain/report.html").is_file() and (run_dir / "explain/importance.png").is_file()

    if family not in ("gbdt", "tabular_attention"):  # exported, it predicts as the run does (the default: test_export.py)
        _check_exports(reloaded, run_dir, table, tmp_path)

    if family in ("mlp", "gbdt"):
        refused = runner.invoke(app, ["export", str(run_dir), "-o", str(tmp_path / "scores"), "--attention"])
        reason = "has no attention layer" if family == "mlp" else "cannot be exported"
        assert refused.exit_code == 2 and reason in refused.output, refused.output
        assert not (tmp_path / "scores").exists()
        assert not (run_dir / "attention").exists()
        assert "has no attention layer" in explained.output
        return
    chosen = np.load(run_dir / "explain/attention.npz")
    assert set(chosen.files) - {"row_ids"} == EXPECTED_ARRAYS[family] and len(chosen["row_ids"]) == 2
    arrays = np.load(run_dir / "attention/test.npz")
    description = json.loads((run_dir / "attention/test.json").read_text())
    assert set(arrays.files) - {"row_ids"} == EXPECTED_ARRAYS[family]
    for key in EXPECTED_ARRAYS[family]:
        value, info = arrays[key], description[key]
        assert value.shape[0] == len(predictions) and list(value.shape) == info["shape"]
        assert len(info["axes"]) == value.ndim
        for axis, labels in info.get("labels", {}).items():
            assert value.shape[info["axes"].index(axis)] == len(labels), (key, axis)
        if "values" not in info:  # ids and labels of retrieved rows are not distributions
            np.testing.assert_allclose(value.sum(axis=-1), 1.0, atol=1e-4)
    if family == "tabular_attention":  # retrieved rows are training rows, with their own labels
        train = LoadedRun(run_dir).splits().train
        ids = arrays["retrieval__ids"]
        assert set(ids.ravel()) <= set(train.index)
        np.testing.assert_array_equal(arrays["retrieval__labels"], train.loc[ids.ravel(), "species"].to_numpy().reshape(ids.shape))
    if family == "ensemble":
        weights = json.loads((run_dir / "branch_weights.json").read_text())
        assert list(weights) == ["b0_tabular_attention", "b1_interpretable", "b2_mlp"]
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(arrays["branch_weighting__module_weights"][0], list(weights.values()), atol=1e-6)


def test_multi_resolution_on_numerical_only_table_says_why(tmp_path, write_config):
    path = write_config({"data": {"train": str(DATASETS / "breast_cancer.parquet"), "target": "diagnosis"},
                         "model": {"type": "multi_resolution"}})
    result = runner.invoke(app, ["train", str(path), "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2
    assert "needs both numerical and categorical columns" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_ensemble_branch_errors_name_the_key(write_config):
    from tabcli.config import load_config
    from tabcli.errors import ConfigError

    path = write_config({"data": {"train": "a.csv", "target": "y"},
                         "model": {"type": "ensemble", "branches": ["mlp", {"type": "interpretable", "num_headz": 2}]}})
    with pytest.raises(ConfigError, match=r"model\.branches\.1\.num_headz.*Did you mean 'num_heads'"):
        load_config(path)
