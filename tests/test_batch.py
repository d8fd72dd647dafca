"""`tabcli batch`: gate grammar, exit codes, a failing config mid-batch, resume, leaderboard, JUnit, and a
batch split with --shard over processes and merged with `tabcli batch merge`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from conftest import DATASETS, REPO
from tabcli.batch.gates import evaluate_gates, parse_gate
from tabcli.cli import app
from tabcli.errors import ConfigError

pytestmark = pytest.mark.slow  # end to end: trains models or runs real processes

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


def test_bad_shard_is_refused_naming_the_option(tmp_path):
    config = _config(tmp_path, "p", DATASETS / "penguins.csv", "species")
    for text in ("0/3", "4/3", "x", "1/0", "2"):
        result = runner.invoke(app, ["batch", str(config), "--shard", text, "--output", str(tmp_path / "out")])
        assert result.exit_code == 2 and "--shard expects K/N" in result.output.replace("\n", " "), (text, result.output)
    result = runner.invoke(app, ["batch", str(config), "--shard", "1/2", "--gate", "test.accuracy>0.9", "--output", str(tmp_path / "out")])
    assert result.exit_code == 2 and "tabcli batch merge" in result.output
    assert not (tmp_path / "out").exists()


def test_a_batch_in_three_shards_merges_into_the_unsplit_leaderboard(tmp_path):
    """The same batch run whole and as `--shard K/3` on three "machines" (concurrent processes):
    the shards split the runs, every config's repeats spread over shards, and `batch merge` gives
    the unsplit leaderboard, JUnit report and gate verdicts (a gate relative to gbdt needs runs of
    two shards)."""
    configs = tmp_path / "configs"
    configs.mkdir()
    _config(configs, "gbdt", DATASETS / "penguins.csv", "species", max_iter=20)
    (configs / "mlp.yaml").write_text(yaml.safe_dump({
        "data": {"train": str(DATASETS / "penguins.csv"), "target": "species"},
        "model": {"type": "mlp", "hidden_units": [16]}, "training": {"batch_size": 64}, "output": {"tensorboard": False},
    }))
    # --jobs 2 everywhere: each run gets the same thread count, hence the same floating-point results.
    command = [sys.executable, "-m", "tabcli", "batch", str(configs), "--repeat", "2", "--jobs", "2", "--set", "training.epochs=1"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    outputs = {name: tmp_path / name for name in ("whole", "shard-1", "shard-2", "shard-3")}
    processes = {
        name: subprocess.Popen(command + ["--output", str(folder)] + ([] if name == "whole" else ["--shard", f"{name[-1]}/3"]),
                               env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, folder in outputs.items()
    }
    logs = {name: process.communicate(timeout=600)[0] for name, process in processes.items()}
    assert all(p.returncode == 0 for p in processes.values()), logs

    shards = [outputs[f"shard-{k}"] for k in (1, 2, 3)]
    ran = [{str(p.relative_to(shard / "runs")) for p in (shard / "runs").glob("*/seed-*")} for shard in shards]
    # the plan sorted by (config, seed), dealt round-robin: each config's two seeds land on two shards
    assert ran == [{"gbdt/seed-42", "mlp/seed-43"}, {"gbdt/seed-43"}, {"mlp/seed-42"}]

    merged = tmp_path / "merged"
    result = runner.invoke(app, ["batch", "merge", *map(str, shards), "--output", str(merged), "--gate", "test.accuracy>=gbdt*0.1"])
    assert result.exit_code == 0, result.output
    same = ("config", "family", "dataset", "task", "metric", "mean", "std", "means", "stds", "completed", "runs", "status")
    whole_rows = json.loads((outputs["whole"] / "leaderboard.json").read_text())
    merged_rows = json.loads((merged / "leaderboard.json").read_text())
    assert [{k: row[k] for k in same} for row in merged_rows] == [{k: row[k] for k in same} for row in whole_rows]
    assert all(row["completed"] == 2 for row in merged_rows)
    assert all(run_dir.startswith(str(tmp_path / "shard-")) for row in merged_rows for run_dir in row["run_dirs"])
    run_suite = ET.parse(merged / "junit.xml").getroot().find("testsuite[@name='runs']")
    assert run_suite.get("tests") == "4" and run_suite.get("failures") == "0"
    gates = json.loads((merged / "gates.json").read_text())
    assert [(g["config"], g["passed"]) for g in gates] == [("mlp", True)]
    assert (merged / "leaderboard.md").read_text().count("| 2/2 |") == 2 and (merged / "leaderboard.csv").is_file()

    failing = runner.invoke(app, ["batch", "merge", *map(str, shards), "--output", str(merged), "--gate", "test.accuracy>=gbdt*1.5"])
    assert failing.exit_code == 3, failing.output
    gates = json.loads((merged / "gates.json").read_text())
    assert [(g["config"], g["passed"]) for g in gates] == [("mlp", False)]  # compared with gbdt's runs on other shards

    for args, message in (([shards[0], shards[1]], "Shard 3/3 missing"), ([shards[0], *shards], "are both shard 1/3"),
                          ([*shards, outputs["whole"]], "parts of different batches"), ([tmp_path / "configs"], "holds no batch.json")):
        result = runner.invoke(app, ["batch", "merge", *map(str, args), "--output", str(tmp_path / "never")])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    result = runner.invoke(app, ["batch", "merge", *map(str, shards), "--output", str(shards[0])])
    assert result.exit_code == 2 and "is one of the shard folders" in result.output
    assert not (tmp_path / "never").exists()
