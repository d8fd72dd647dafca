"""Real files as users have them: other separators and encodings, repeated headers, infinite values,
lone classes, empty columns. Each either works with a note or stops with exit 2 and a message that
names the file, column or config key, before any run directory exists."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tabcli.cli import app
from tabcli.data.io import read_table
from tabcli.errors import DataError

runner = CliRunner()


def _table(n=120, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "town": rng.choice(["Köln", "Zürich", "Málaga"], n),
                         "y": np.where(x1 + 0.3 * rng.normal(size=n) > 0, "yes", "no")})


def _train(tmp_path, data, **data_keys):
    config = {"seed": 1, "data": {"train": str(data), "target": "y", **data_keys}, "model": {"type": "gbdt"},
              "output": {"dir": str(tmp_path / "runs")}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return runner.invoke(app, ["train", str(path), "--run-dir", str(tmp_path / "run")])


def test_semicolon_separated_csv_is_detected(tmp_path):
    frame = _table()
    frame.to_csv(tmp_path / "excel.csv", sep=";", index=False)
    read = read_table(tmp_path / "excel.csv")
    assert list(read.columns) == ["x1", "x2", "town", "y"]
    np.testing.assert_allclose(read["x1"], frame["x1"])
    result = _train(tmp_path, tmp_path / "excel.csv")
    assert result.exit_code == 0, result.output
    # A quoted comma inside a field does not fool the detection.
    (tmp_path / "quoted.csv").write_text('a;b;y\n"1,5";2;x\n"2,5";3;y\n"3,0";4;x\n')
    assert list(read_table(tmp_path / "quoted.csv").columns) == ["a", "b", "y"]
    assert list(read_table(tmp_path / "quoted.csv", sep=",").columns) != ["a", "b", "y"]


def test_latin1_file_names_the_encoding_key(tmp_path):
    _table().to_csv(tmp_path / "windows.csv", index=False, encoding="cp1252")
    result = _train(tmp_path, tmp_path / "windows.csv")
    assert result.exit_code == 2
    assert "data.encoding" in result.output and "windows.csv" in result.output
    assert not (tmp_path / "run").exists()
    assert _train(tmp_path, tmp_path / "windows.csv", encoding="cp1252").exit_code == 0
    assert set(read_table(tmp_path / "windows.csv", encoding="cp1252")["town"]) == {"Köln", "Zürich", "Málaga"}


def test_a_repeated_column_name_is_an_error(tmp_path):
    (tmp_path / "dup.csv").write_text("x1,x1,y\n1,2,a\n3,4,b\n")
    with pytest.raises(DataError, match=r"'x1' \(columns 1, 2\)"):
        read_table(tmp_path / "dup.csv")


def test_infinite_features_are_missing_values_everywhere(tmp_path):
    frame = _table()
    frame.loc[[3, 7], "x2"] = np.inf
    frame.loc[9, "x2"] = -np.inf
    frame.to_csv(tmp_path / "inf.csv", index=False)
    result = _train(tmp_path, tmp_path / "inf.csv")
    assert result.exit_code == 0, result.output
    assert "'x2'" in result.output and "3 infinite" in result.output
    out = tmp_path / "pred.csv"
    predicted = runner.invoke(app, ["predict", str(tmp_path / "run"), "--data", str(tmp_path / "inf.csv"), "--output", str(out)])
    assert predicted.exit_code == 0, predicted.output
    assert "3 infinite" in predicted.output
    table = pd.read_csv(out)
    assert len(table) == len(frame) and table["proba_yes"].notna().all()
    evaluated = runner.invoke(app, ["evaluate", str(tmp_path / "run"), "--data", str(tmp_path / "inf.csv")])
    assert evaluated.exit_code == 0, evaluated.output


def test_infinite_regression_target_stops_before_the_run(tmp_path):
    frame = _table().assign(y=lambda f: f["x1"] * 2.0)
    frame.loc[[4, 50], "y"] = np.inf
    frame.to_csv(tmp_path / "target.csv", index=False)
    result = _train(tmp_path, tmp_path / "target.csv")
    assert result.exit_code == 2
    assert "'y'" in result.output and "[4, 50]" in result.output and "diverged" not in result.output
    assert not (tmp_path / "run").exists()


def test_a_class_with_one_row_stays_in_training(tmp_path):
    frame = _table()
    frame.loc[0, "y"] = "maybe"
    frame.to_csv(tmp_path / "lone.csv", index=False)
    result = _train(tmp_path, tmp_path / "lone.csv")
    assert result.exit_code == 0, result.output
    assert "['maybe']" in result.output and "single row" in result.output
    test = pd.read_parquet(tmp_path / "run/predictions/test.parquet")
    assert 0 not in set(test["row"])


def test_empty_column_and_small_table_notes(tmp_path):
    frame = _table(n=40).assign(blank=np.nan)
    frame.to_csv(tmp_path / "small.csv", index=False)
    result = _train(tmp_path, tmp_path / "small.csv")
    assert result.exit_code == 0, result.output
    assert "'blank' is left out" in result.output
    assert "only 40 rows" in result.output


# ------------------------------------------------------------------------------ command line
def test_run_files_share_one_mode(tmp_path):
    _table().to_csv(tmp_path / "t.csv", index=False)
    assert _train(tmp_path, tmp_path / "t.csv").exit_code == 0
    run = tmp_path / "run"
    modes = {name: (run / name).stat().st_mode & 0o777 for name in ("config.yaml", "run.json", "metrics.json", "model.joblib")}
    assert len(set(modes.values())) == 1, modes


def test_a_failed_write_names_the_file_and_leaves_no_model(tmp_path, monkeypatch):
    import errno

    import joblib

    _table().to_csv(tmp_path / "t.csv", index=False)
    real_dump = joblib.dump

    def full_disk(value, filename, *args, **kwargs):
        if ".model.joblib." in str(filename):
            with open(filename, "wb") as handle:
                handle.write(b"half a model")
            raise OSError(errno.ENOSPC, "No space left on device", str(filename))
        return real_dump(value, filename, *args, **kwargs)

    monkeypatch.setattr(joblib, "dump", full_disk)
    result = _train(tmp_path, tmp_path / "t.csv")
    assert result.exit_code == 1
    assert "No space left on device" in result.output and "Traceback" not in result.output
    run = tmp_path / "run"
    assert not (run / "model.joblib").exists() and not list(run.glob(".model.joblib*"))
    info = yaml.safe_load((run / "run.json").read_text())
    assert info["status"] == "failed"
    evaluated = runner.invoke(app, ["evaluate", str(run)])
    assert evaluated.exit_code == 2 and "status 'failed'" in evaluated.output and "No space left" in evaluated.output


def test_reversed_rows_and_wrong_set_keys_are_named(tmp_path):
    from tabcli.errors import ConfigError
    from tabcli.explain.explain import parse_rows

    with pytest.raises(ConfigError, match="reversed.*'2-5'"):
        parse_rows("5-2", 80)
    _table().to_csv(tmp_path / "t.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"train": str(tmp_path / "t.csv"), "target": "y"}}))
    result = runner.invoke(app, ["train", str(config), "--set", "training.epoch=3"])
    assert result.exit_code == 2 and "from --set training.epoch" in result.output


def test_a_gate_that_cannot_apply_is_refused_before_the_batch(tmp_path):
    _table().to_csv(tmp_path / "t.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"train": str(tmp_path / "t.csv"), "target": "y"}, "model": {"type": "gbdt"}}))
    out = tmp_path / "batch"
    for gate, message in (("test.rmse<=0.5", "regression metric"), ("test.auc>=0.5", "not a metric"),
                          ("nothing*:test.accuracy>0.5", "matches no config")):
        result = runner.invoke(app, ["batch", str(config), "--gate", gate, "--output", str(out)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not out.exists()


def test_help_reads_as_written():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "<bool>" not in text and "{config}" not in text
    assert "ensemble | mlp | gbdt" in text and "<output.dir>/<name>-<YYYYmmdd-HHMMSS>" in text
    # A docstring paragraph is reflowed whole, not broken where the source line ended.
    assert "(status, versions, times), model.keras" in text
    assert not re.search(r"times\),[ │]*\n[ │]*model\.keras", result.output)
    batch = " ".join(runner.invoke(app, ["batch", "--help"], terminal_width=100).output.split())
    assert "test.rmse<=gbdt*1.05" in batch and "penguins*:test.accuracy>0.95" in batch


def test_date_columns_become_numerical_features(tmp_path):
    from tabcli.data.dates import expand_dates
    from tabcli.explain.importance import token_column

    frame = _table()
    days = pd.date_range("2020-01-01", periods=len(frame), freq="3D")
    frame["signup"] = days.strftime("%Y-%m-%d")
    frame.loc[5, "signup"] = "not a date"
    frame.to_csv(tmp_path / "dates.csv", index=False)
    result = _train(tmp_path, tmp_path / "dates.csv")
    assert result.exit_code == 0, result.output
    assert "'signup' is read as a date" in result.output
    info = yaml.safe_load((tmp_path / "run/run.json").read_text())
    assert info["schema"]["dates"] == ["signup"] and "signup" not in info["schema"]["categorical"]
    expanded = expand_dates(frame, ["signup"])
    assert list(expanded.columns[4:9]) == ["signup (year)", "signup (month)", "signup (day of week)",
                                          "signup (day of year)", "signup (days since 1970)"]
    np.testing.assert_array_equal(expanded.loc[1, ["signup (year)", "signup (month)", "signup (day of week)"]], [2020, 1, 5])
    assert expanded.loc[1, "signup (days since 1970)"] == (days[1] - pd.Timestamp("1970-01-01")).days
    assert expanded.loc[5, ["signup (year)", "signup (days since 1970)"]].isna().all()
    assert token_column("signup (month)") == "signup" and token_column("signup (year) (missing)") == "signup"
    # Prediction parses the dates of a new file the same way; a file without the column is refused by name.
    out = tmp_path / "pred.csv"
    predicted = runner.invoke(app, ["predict", str(tmp_path / "run"), "--data", str(tmp_path / "dates.csv"), "--output", str(out)])
    assert predicted.exit_code == 0, predicted.output
    frame.drop(columns=["signup"]).to_csv(tmp_path / "nodate.csv", index=False)
    refused = runner.invoke(app, ["predict", str(tmp_path / "run"), "--data", str(tmp_path / "nodate.csv"), "--output", str(out), "--overwrite"])
    assert refused.exit_code == 2 and "signup" in refused.output


def test_explain_keeps_an_earlier_explanation_and_train_names_the_next_commands(tmp_path):
    _table().to_csv(tmp_path / "t.csv", index=False)
    trained = _train(tmp_path, tmp_path / "t.csv")
    assert "next: tabcli evaluate" in trained.output and "tabcli explain" in trained.output
    run = str(tmp_path / "run")
    assert runner.invoke(app, ["explain", run, "--rows", "0"]).exit_code == 0
    report = (tmp_path / "run/explain/report.html").read_bytes()
    again = runner.invoke(app, ["explain", run, "--rows", "1"])
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert (tmp_path / "run/explain/report.html").read_bytes() == report
    assert runner.invoke(app, ["explain", run, "--rows", "1", "--overwrite"]).exit_code == 0


def test_an_unreadable_model_file_is_one_paragraph_naming_it(tmp_path, penguins_run):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(penguins_run[0], run_dir)
    model = run_dir / "model.keras"
    model.write_bytes(model.read_bytes()[:2000])  # a damaged (truncated) zip, as after a partial copy
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(Path(__file__).parents[1] / "datasets" / "penguins.csv"), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and f"'{model}' cannot be loaded" in " ".join(result.output.split())
    assert "Retrain it" in result.output and not (tmp_path / "p.csv").exists()
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
