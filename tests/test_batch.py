"""`tabcli batch`: gate grammar, exit codes, a failing config mid-batch, resume, leaderboard, JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from conftest import DATASETS
from tabcli.batch.gates import evaluate_gates, parse_gate
from tabcli.cli import app
from tabcli.errors import ConfigError

runner = CliRunner()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("test.roc_auc>=0.92", dict(pattern=None, split="test", metric="roc_auc", op=">=", value=0.92, family=None)),
        ("test.rmse <= gbdt*1.05", dict(split="test", metric="rmse", op="<=", value=None, family="gbdt", arith="*", factor=1.05)),
        ("penguins*:valid.accuracy>mlp-0.01", dict(pattern="penguins*", split="valid", family="mlp", arith="-", factor=0.01)),
        ("train.r2==1", dict(op="==", value=1.0)),
    ],
)
def test_gate_grammar(text, expected):
    gate = parse_gate(text)
    for key, value in expected.items():
        assert getattr(gate, key) == value, key


@pytest.mark.parametrize("text", ["roc_auc>=0.9", "test.roc_auc=>0.9", "test.roc_auc>=", "holdout.rmse<1", "test.rmse<=gbdt**2"])
def test_bad_gates_explain_the_grammar(text):
    with pytest.raises(ConfigError, match="--gate"):
        parse_gate(text)


def _row(config, family, dataset, **means):
    return {"config": config, "family": family, "dataset": dataset, "means": means}


def test_gate_evaluation():
    rows = [
        _row("cal/gbdt", "gbdt", "cal", **{"test.rmse": 0.46}),
        _row("cal/attention", "tabular_attention", "cal", **{"test.rmse": 0.47}),
        _row("cal/mlp", "mlp", "cal", **{"test.rmse": 0.55}),
        _row("bank/attention", "tabular_attention", "bank", **{"test.roc_auc": 0.93}),
    ]
    results = evaluate_gates([parse_gate("test.rmse<=gbdt*1.05")], rows)
    assert {(r.config, r.passed) for r in results} == {("cal/attention", True), ("cal/mlp", False)}
    results = evaluate_gates([parse_gate("test.roc_auc>=0.92"), parse_gate("cal/*:test.rmse<0.5")], rows)
    assert [(r.config, r.passed) for r in results] == [("bank/attention", True), ("cal/gbdt", True), ("cal/attention", True), ("cal/mlp", False)]
    missing_reference = evaluate_gates([parse_gate("test.roc_auc>=gbdt")], rows)
    assert not missing_reference[0].passed and "no completed 'gbdt' run" in missing_reference[0].message
    nothing = evaluate_gates([parse_gate("test.log_loss<=0.3")], rows)
    assert len(nothing) == 1 and not nothing[0].passed and nothing[0].config is None


def _config(folder, name, data, target, **model):
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"data": {"train": str(data), "target": target}, "model": {"type": "gbdt", "max_iter": 30, **model}}))
    return path


def test_batch_failing_config_resume_and_junit(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    _config(configs, "a_penguins", DATASETS / "penguins.csv", "species")
    broken = _config(configs, "b_broken", DATASETS / "penguins.csv", "species", max_iterr=5)  # typo: fails validation
    _config(configs, "c_diabetes", DATASETS / "diabetes.tsv", "progression")
    output = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(configs), "--repeat", "2", "--jobs", "2", "--output", str(output)])
    assert result.exit_code == 1, result.output  # a run failed; the others went on
    rows = json.loads((output / "leaderboard.json").read_text())
    by_config = {row["config"]: row for row in rows}
    assert by_config["a_penguins"]["status"] == "completed" and by_config["a_penguins"]["completed"] == 2
    assert by_config["c_diabetes"]["metric"] == "rmse" and by_config["c_diabetes"]["std"] >= 0
    assert by_config["b_broken"]["status"] == "failed" and "max_iterr" in by_config["b_broken"]["errors"][0]
    assert rows[-1]["config"] == "b_broken"  # failed rows last
    assert "± " in (output / "leaderboard.md").read_text() and (output / "leaderboard.csv").read_text().startswith("config,")
    suites = ET.parse(output / "junit.xml").getroot()
    assert suites.tag == "testsuites"
    run_suite = suites.find("testsuite[@name='runs']")
    assert run_suite.get("tests") == "6" and run_suite.get("failures") == "2"
    failed = [case for case in run_suite.iter("testcase") if case.find("failure") is not None]
    assert {case.get("classname") for case in failed} == {"runs.b_broken"}

    finished = {p: (p / "run.json").read_text() for p in (output / "runs").glob("*/seed-*") if "broken" not in str(p)}
    broken.write_text(broken.read_text().replace("max_iterr", "max_iter"))
    result = runner.invoke(app, ["batch", str(configs), "--repeat", "2", "--jobs", "2", "--output", str(output), "--resume",
                                 "--gate", "test.accuracy>=0.9", "--gate", "test.rmse<=1"])
    assert result.exit_code == 3, result.output  # every run completed, but the RMSE gate (in target units) fails
    for path, before in finished.items():
        assert (path / "run.json").read_text() == before  # not redone
    rows = json.loads((output / "leaderboard.json").read_text())
    assert all(row["status"] == "completed" for row in rows)
    gates = json.loads((output / "gates.json").read_text())
    assert [g["passed"] for g in gates if g["gate"] == "test.accuracy>=0.9"] == [True, True]
    assert [g["passed"] for g in gates if g["gate"] == "test.rmse<=1"] == [False]
    gate_suite = ET.parse(output / "junit.xml").getroot().find("testsuite[@name='gates']")
    assert gate_suite.get("tests") == "3" and gate_suite.get("failures") == "1"
    resumed = [c for c in ET.parse(output / "junit.xml").getroot().iter("testcase") if c.find("properties") is not None]
    assert len(resumed) == 4


def test_batch_refuses_to_mix_with_an_earlier_batch_without_resume(tmp_path):
    (tmp_path / "out" / "runs" / "x").mkdir(parents=True)
    config = _config(tmp_path, "p", DATASETS / "penguins.csv", "species")
    result = runner.invoke(app, ["batch", str(config), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--resume" in result.output
    result = runner.invoke(app, ["batch", str(tmp_path / "nothing_here")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["batch", str(config), "--gate", "accuracy>0.9"])
    assert result.exit_code == 2 and "Expected [CONFIG_GLOB:]SPLIT.METRIC OP VALUE" in result.output
