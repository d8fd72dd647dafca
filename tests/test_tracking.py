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
    module.get_experiment_by_name = lambda name: None
    module.create_experiment = lambda name, artifact_location=None: calls.setdefault("artifact_location", artifact_location)
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
    assert calls["uri"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
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


def test_mlflow_logging_with_the_real_package(tmp_path):
    """The same run logged by the installed mlflow (the `mlflow` extra) to a local store, read back
    through mlflow's own client."""
    import pytest

    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'tabcli[mlflow]')")
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", str(REPO / "configs" / "penguins" / "gbdt.yaml"), "--run-dir", str(run_dir), "--quiet",
                                 "--set", "tracking.mlflow=true", "--set", f"output.dir={tmp_path}", "--set", "model.max_iter=20"])
    assert result.exit_code == 0, result.output
    run_id = json.loads((run_dir / "run.json").read_text())["mlflow_run_id"]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    logged = mlflow.get_run(run_id)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert logged.data.metrics["test_accuracy"] == metrics["test"]["accuracy"]
    assert logged.data.params["model.type"] == "gbdt" and logged.info.run_name == "run"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {"config.yaml", "metrics.json", "run.json"} <= artifacts
    assert (tmp_path / "mlartifacts").is_dir()
