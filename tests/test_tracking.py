"""Experiment tracking: TensorBoard logs in the run directory, optional MLflow logging."""

from __future__ import annotations

import json
import sys
import types

from typer.testing import CliRunner

from conftest import REPO
from tabcli.cli import app

runner = CliRunner()


def test_tensorboard_logs_in_run_directory(penguins_run):
    run_dir, _ = penguins_run
    events = list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} >= {"train", "validation"}
    assert all(p.stat().st_size > 0 for p in events)


def _fake_mlflow(calls):
    module = types.ModuleType("mlflow")

    class _Run:
        info = types.SimpleNamespace(run_id="abc123")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    module.set_tracking_uri = lambda uri: calls.setdefault("uri", uri)
    module.set_experiment = lambda name: calls.setdefault("experiment", name)
    module.start_run = lambda run_name=None: calls.setdefault("run_name", run_name) and _Run()
    module.log_params = lambda params: calls.setdefault("params", params)
    module.log_metrics = lambda metrics: calls.setdefault("metrics", metrics)
    module.set_tags = lambda tags: calls.setdefault("tags", tags)
    module.log_artifact = lambda path: calls.setdefault("artifacts", []).append(path)
    return module


def test_mlflow_logging(tmp_path, monkeypatch):
    calls = {}
    monkeypatch.setitem(sys.modules, "mlflow", _fake_mlflow(calls))
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", str(REPO / "configs" / "penguins" / "gbdt.yaml"), "--run-dir", str(run_dir), "--quiet",
                                 "--set", "tracking.mlflow=true", "--set", f"output.dir={tmp_path}", "--set", "model.max_iter=20"])
    assert result.exit_code == 0, result.output
    assert calls["uri"] == (tmp_path / "mlruns").as_uri()
    assert calls["experiment"] == "penguins-gbdt" and calls["run_name"] == "run"
    assert calls["params"]["model.type"] == "gbdt" and calls["params"]["data.target"] == "species"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert calls["metrics"]["test_accuracy"] == metrics["test"]["accuracy"]
    assert "test_confusion_matrix" not in calls["metrics"]
    assert {p.split("/")[-1] for p in calls["artifacts"]} >= {"config.yaml", "metrics.json", "run.json"}
    assert json.loads((run_dir / "run.json").read_text())["mlflow_run_id"] == "abc123"


def test_mlflow_missing_is_a_clear_error_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", str(REPO / "configs" / "penguins" / "gbdt.yaml"), "--run-dir", str(run_dir), "--quiet",
                                 "--set", "tracking.mlflow=true"])
    assert result.exit_code == 2 and "pip install 'tabcli[mlflow]'" in result.output
    assert not run_dir.exists()
