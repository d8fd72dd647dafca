"""`tabcli export`: a SavedModel with the preprocessing inside, loaded by plain TensorFlow (no
tabcli import), gives the numbers `tabcli predict` gives on the same rows, including missing
values and categories never seen in training, and with ``--attention`` the run's own attention scores; so does the
ONNX file in ONNX Runtime. Every other Keras family is exported in
test_families.py; a regression run (California housing) and bank marketing in test_real_data.py."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import REPO, export_columns
from tabcli.cli import app

pytestmark = pytest.mark.slow  # end to end: trains models or runs real processes

runner = CliRunner()

# Runs in a fresh interpreter that imports TensorFlow and NumPy only.
SERVE = """
import sys, numpy as np, tensorflow as tf
columns = dict(np.load(sys.argv[2], allow_pickle=False))
signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
outputs = signature(**{name: tf.constant(values) for name, values in columns.items()})
np.savez(sys.argv[3], **{name: np.char.decode(value.numpy().astype(bytes)) if value.dtype == tf.string else value.numpy()
                        for name, value in outputs.items()})
"""


def _served(export_dir, columns: dict, tmp_path) -> dict:
    np.savez(tmp_path / "in.npz", **columns)
    subprocess.run([sys.executable, "-c", SERVE, str(export_dir), str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                   check=True, capture_output=True, timeout=300)
    return dict(np.load(tmp_path / "out.npz"))


def test_exported_classifier_matches_predict_with_missing_and_unseen_values(penguins_run, tmp_path):
    import tabcli

    run_dir, _ = penguins_run
    export_dir = tmp_path / "export"
    result = runner.invoke(app, ["export", str(run_dir), "--output", str(export_dir), "--attention"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(REPO / "datasets" / "penguins.csv")
    odd = frame.head(4).copy()
    odd.loc[odd.index[0], "island"] = "Atlantis"          # never seen in training
    odd.loc[odd.index[1], "bill_length_mm"] = np.nan      # missing number
    odd.loc[odd.index[2], "sex"] = np.nan                 # missing category
    odd.loc[odd.index[3], "flipper_length_mm"] = 1e6      # far beyond the training range
    frame = pd.concat([frame, odd], ignore_index=True)
    run = tabcli.load_run(run_dir)
    expected = run.predict(frame)
    served = _served(export_dir, export_columns(run, frame), tmp_path)
    probabilities = expected.filter(like="proba_").to_numpy()
    assert served["probabilities"].shape == probabilities.shape
    assert np.abs(served["probabilities"] - probabilities).max() <= 1e-4
    assert (served["probabilities"].argmax(axis=1) == probabilities.argmax(axis=1)).all()
    metadata = json.loads((export_dir / "assets" / "tabcli_export.json").read_text())
    assert metadata["classes"] == [str(c) for c in run.schema.classes]
    assert set(metadata["inputs"]) == set(run.schema.features)
    assert metadata["test_metrics"] == run.metrics["test"]
    _check_attention(run, frame, served, metadata["attention_outputs"])


def _check_attention(run, frame, served: dict, described: dict) -> None:
    """The exported attention outputs are the run's own attention scores for ``frame``
    (``LoadedRun.attention_scores``): same names, shapes and axes; the same retrieved training rows
    with the same labels (two rows at exactly the same distance may come in either order) and
    weights."""
    arrays, description = run.attention_scores(run.inputs(frame), list(frame.index))
    names = set(arrays) - {"row_ids"}
    assert names == set(described) and {"retrieval__ids", "retrieval__labels", "retrieval__weights"} <= names
    for name in names:
        assert served[name].shape == arrays[name].shape, name
        assert described[name]["axes"] == description[name]["axes"], name
    ids, served_ids = arrays["retrieval__ids"], served["retrieval__ids"]
    labels, served_labels = arrays["retrieval__labels"], served["retrieval__labels"].astype(str)
    for row in range(len(ids)):
        assert sorted(zip(ids[row], labels[row])) == sorted(zip(served_ids[row], served_labels[row])), row
    assert set(np.unique(labels)) <= {str(c) for c in run.schema.classes}
    for name in names - {"retrieval__ids", "retrieval__labels"}:
        np.testing.assert_allclose(served[name], arrays[name], atol=1e-5, err_msg=name)


# Runs in a fresh interpreter that imports ONNX Runtime and NumPy only.
ONNX_RUN = """
import json, sys, numpy as np, onnxruntime as ort
columns = dict(np.load(sys.argv[2], allow_pickle=False))
session = ort.InferenceSession(sys.argv[1])
feed = {i.name: (columns[i.name].astype(object) if i.type == "tensor(string)" else columns[i.name]) for i in session.get_inputs()}
outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
np.savez(sys.argv[3], **{name: value.astype(str) if value.dtype == object else value for name, value in outputs.items()})
print(json.dumps({"metadata": session.get_modelmeta().custom_metadata_map["tabcli_export"], "tensorflow": "tensorflow" in sys.modules}))
"""


def test_onnx_export_runs_in_onnx_runtime_as_predict_does(penguins_run, tmp_path):
    import tabcli

    run_dir, _ = penguins_run
    path = tmp_path / "penguins.onnx"
    result = runner.invoke(app, ["export", str(run_dir), "--output", str(path), "--format", "onnx", "--attention"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(REPO / "datasets" / "penguins.csv")
    odd = frame.head(3).copy()
    odd.loc[odd.index[0], "island"] = "Atlantis"
    odd.loc[odd.index[1], ["bill_length_mm", "body_mass_g"]] = np.nan
    odd.loc[odd.index[2], "sex"] = np.nan
    frame = pd.concat([frame, odd], ignore_index=True)
    run = tabcli.load_run(run_dir)
    np.savez(tmp_path / "in.npz", **export_columns(run, frame))
    done = subprocess.run([sys.executable, "-c", ONNX_RUN, str(path), str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                          check=True, capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert not report["tensorflow"]
    metadata = json.loads(report["metadata"])
    assert metadata["classes"] == [str(c) for c in run.schema.classes]
    outputs = dict(np.load(tmp_path / "out.npz"))
    served = outputs["probabilities"]
    expected = run.predict(frame).filter(like="proba_").to_numpy()
    assert np.abs(served - expected).max() <= 1e-4 and (served.argmax(1) == expected.argmax(1)).all()
    _check_attention(run, frame, outputs, metadata["attention_outputs"])


def test_export_refuses_bad_requests_and_writes_nothing(penguins_run, tmp_path):
    run_dir, _ = penguins_run
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["export", str(run_dir), "-o", str(existing)])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (existing / "keep.txt").read_text() == "mine"
    result = runner.invoke(app, ["export", str(run_dir), "-o", str(tmp_path / "x"), "--format", "tflite"])
    assert result.exit_code == 2 and "savedmodel, onnx" in result.output
    assert not (tmp_path / "x").exists()
    running = tmp_path / "running"
    running.mkdir()
    (running / "run.json").write_text(json.dumps({"status": "running"}))
    result = runner.invoke(app, ["export", str(running), "-o", str(tmp_path / "y")])
    assert result.exit_code == 2 and "running" in result.output
    assert not (tmp_path / "y").exists()


def test_input_names_keep_plain_column_names_and_make_the_rest_valid_and_distinct():
    from tabcli.export.inputs import input_names

    names = input_names(["AveBedrms", "bill_length_mm", "Bill length (mm)", "Bill_length__mm_", "2nd", "_x", "é", "a.b"])
    assert names == {"AveBedrms": "AveBedrms", "bill_length_mm": "bill_length_mm", "Bill length (mm)": "Bill_length__mm_",
                     "Bill_length__mm_": "Bill_length__mm__2", "2nd": "c_2nd", "_x": "c__x", "é": "c__", "a.b": "a_b"}


def test_columns_named_with_spaces_capitals_and_dots_export_under_their_input_names(tmp_path):
    """TensorFlow refuses a signature argument named "Bill length (mm)" and lower-cases the
    placeholders ONNX inputs were named after; both formats take the names in the metadata."""
    import onnxruntime as ort
    import tensorflow as tf

    import tabcli

    frame = pd.read_csv(REPO / "datasets" / "penguins.csv").rename(
        columns={"bill_length_mm": "Bill length (mm)", "island": "Island", "bill_depth_mm": "bill depth.mm"})
    frame.to_csv(tmp_path / "odd.csv", index=False)
    (tmp_path / "odd.yaml").write_text("data: {train: odd.csv, target: species}\nmodel: {type: mlp}\ntraining: {epochs: 2}\n")
    result = runner.invoke(app, ["train", str(tmp_path / "odd.yaml"), "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    run = tabcli.load_run(tmp_path / "run")
    expected = run.predict(frame).filter(like="proba_").to_numpy()
    columns = export_columns(run, frame)
    assert {"Bill_length__mm_", "Island", "bill_depth_mm"} <= set(columns)

    result = runner.invoke(app, ["export", str(tmp_path / "run"), "-o", str(tmp_path / "sm")])
    assert result.exit_code == 0, result.output
    assert "'Bill length (mm)' -> Bill_length__mm_" in " ".join(result.output.split())
    metadata = json.loads((tmp_path / "sm" / "assets" / "tabcli_export.json").read_text())
    assert metadata["input_names"]["Bill length (mm)"] == "Bill_length__mm_"
    served = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"](
        **{name: tf.constant(values) for name, values in columns.items()})["probabilities"].numpy()
    np.testing.assert_allclose(served, expected, atol=1e-4)

    result = runner.invoke(app, ["export", str(tmp_path / "run"), "-o", str(tmp_path / "odd.onnx"), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    session = ort.InferenceSession(str(tmp_path / "odd.onnx"))
    assert {i.name for i in session.get_inputs()} == set(columns)
    feed = {i.name: columns[i.name].astype(object) if i.type == "tensor(string)" else columns[i.name] for i in session.get_inputs()}
    np.testing.assert_allclose(session.run(["probabilities"], feed)[0], expected, atol=1e-4)
