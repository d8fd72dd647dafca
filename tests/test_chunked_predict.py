"""`tabcli predict` on tables read a chunk at a time, folders of Parquet files and shards: the output is
byte for byte what predicting the whole table at once gives, and a failure leaves no partial file."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import yaml
from typer.testing import CliRunner

import tabcli
from conftest import DATASETS
from tabcli.cli import app
from tabcli.data.chunks import TableChunks
from tabcli.data.io import read_table

# One worker runs this file's tests (pytest-xdist), so the module's trained run is built once.
pytestmark = pytest.mark.xdist_group("chunked_predict")

runner = CliRunner()


def _predict(*args):
    return runner.invoke(app, ["predict", *map(str, args)])


@pytest.fixture(scope="module")
def small_batch_run(penguins_run, tmp_path_factory):
    """The shared penguins run predicting 43 rows per model batch, so the 344 penguins are 8 model
    batches (one shape: one graph to trace) whose bounds fall inside chunks of 7 rows."""
    run_dir = tmp_path_factory.mktemp("small_batch") / "run"
    shutil.copytree(penguins_run[0], run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["training"]["eval_batch_size"] = 43
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    return run_dir


def _odd_rows() -> pd.DataFrame:
    """Penguins without the target, with an unseen island, gaps, an integer id with a gap only in
    its last rows and a `year` that is numbers at the top and text at the bottom."""
    rows = pd.read_csv(DATASETS / "penguins.csv").drop(columns=["species"])
    rows.insert(0, "penguin_id", pd.array(range(len(rows)), dtype="Int64"))  # CSV: 0, 1, ..., then empty
    rows.loc[len(rows) - 1, "penguin_id"] = pd.NA
    rows.loc[0, "island"] = "Atlantis"
    rows.loc[1, "bill_length_mm"] = np.nan
    rows.loc[2, "sex"] = np.nan
    rows["year"] = rows["year"].astype(str)
    rows.loc[3, "year"] = "2008.0"  # the year 2008 in a chunk of numbers; an unseen text in the whole table
    rows.loc[len(rows) - 2, "year"] = "unknown"
    return rows


def test_chunked_predict_writes_what_the_whole_table_gives(small_batch_run, tmp_path):
    rows = _odd_rows()
    rows.to_csv(tmp_path / "new.csv", index=False)
    rows.to_parquet(tmp_path / "new.parquet")
    run = tabcli.load_run(small_batch_run)
    for source, output in (("new.csv", "chunked.csv"), ("new.parquet", "chunked.parquet")):
        result = _predict(small_batch_run, "--data", tmp_path / source, "--output", tmp_path / output,
                          "--id-column", "penguin_id", "--chunk-rows", 7)
        assert result.exit_code == 0, result.output
        assert "344 predictions written" in result.output
        frame = read_table(tmp_path / source)  # the whole table at once, as the Python API is given it
        expected = run.predict(frame.drop(columns="penguin_id"))
        expected.insert(0, "penguin_id", frame["penguin_id"].to_numpy())
        if output.endswith(".csv"):
            assert (tmp_path / output).read_text() == expected.to_csv(index=False)
        else:
            pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / output), expected)
    written = pd.read_csv(tmp_path / "chunked.csv")
    assert written["penguin_id"].iloc[:2].tolist() == [0.0, 1.0] and np.isnan(written["penguin_id"].iloc[-1])
    # The row whose year reads "2008.0" among text is that text (an unseen year), not the year 2008.
    codes = run.inputs(read_table(tmp_path / "new.csv").iloc[2:5], extra_columns=["penguin_id"])["categorical"][:, -1]
    assert codes[0] == codes[2] != codes[1] == 0


def test_chunks_parse_pinned_columns_as_the_whole_table(tmp_path):
    table = pd.DataFrame({"code": ["01", "02", "03", "04", "A5", "06"], "n": pd.array([1, 2, 3, 4, 5, None], dtype="Int64"),
                          "x": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]})
    table.to_csv(tmp_path / "t.csv", index=False)
    whole = read_table(tmp_path / "t.csv")
    chunks = TableChunks(tmp_path / "t.csv", chunk_rows=3, pinned=["code", "n"])
    chunks.scan()
    pd.testing.assert_frame_equal(pd.concat(list(chunks), ignore_index=True), whole)
    assert chunks.completed == chunks.total == (tmp_path / "t.csv").stat().st_size
    unpinned = pd.concat(list(TableChunks(tmp_path / "t.csv", chunk_rows=3)), ignore_index=True)
    assert unpinned["code"].tolist()[:2] == [1, 2]  # what reading a chunk alone gives


def test_parquet_folder_trains_on_a_sample_predicts_and_splits_into_shards(tmp_path):
    table = pd.read_csv(DATASETS / "penguins.csv")
    table.insert(0, "penguin_id", [f"p{i:03d}" for i in range(len(table))])
    ds.write_dataset(pa.Table.from_pandas(table, preserve_index=False), tmp_path / "penguins", format="parquet",
                     partitioning=["island"], partitioning_flavor="hive", max_rows_per_file=60, max_rows_per_group=60)
    config = {"seed": 3, "data": {"train": str(tmp_path / "penguins"), "target": "species", "drop": ["penguin_id"],
                                  "preprocessing_sample_rows": 50},
              "model": {"type": "gbdt", "max_iter": 5}, "output": {"dir": str(tmp_path / "runs")}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train", str(tmp_path / "c.yaml"), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "3 categorical" in result.output  # island, read from the folder names, is one of them
    assert "random sample of 50 of the" in result.output

    whole = tmp_path / "whole.parquet"
    result = _predict(tmp_path / "run", "--data", tmp_path / "penguins", "--output", whole, "--id-column", "penguin_id",
                      "--chunk-rows", 50)
    assert result.exit_code == 0, result.output
    frame = read_table(tmp_path / "penguins")
    expected = tabcli.load_run(tmp_path / "run").predict(frame)
    expected.insert(0, "penguin_id", frame["penguin_id"].to_numpy())
    pd.testing.assert_frame_equal(pd.read_parquet(whole), expected)
    # Rows come in sorted file order: island=Biscoe/ before island=Dream/ before island=Torgersen/.
    assert frame["island"].tolist() == sorted(frame["island"])

    shards = []
    for k in (1, 2, 3):
        out = tmp_path / f"part-{k}-of-3.csv"
        result = _predict(tmp_path / "run", "--data", tmp_path / "penguins", "--output", out, "--id-column",
                          "penguin_id", "--shard", f"{k}/3")
        assert result.exit_code == 0, result.output
        shards.append(pd.read_csv(out))
    ids = [set(s["penguin_id"]) for s in shards]
    assert all(ids) and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set.union(*ids) == set(table["penguin_id"])


@pytest.mark.parametrize("shard", ["2", "0/3", "4/3", "a/b", "1/0"])
def test_a_bad_shard_names_the_option_and_its_form(shard, tmp_path):
    result = _predict(tmp_path / "no-run", "--data", tmp_path, "--output", tmp_path / "p.csv", "--shard", shard)
    assert result.exit_code == 2 and "--shard" in result.output and "K/N" in result.output
    assert "Traceback" not in result.output


def test_an_empty_folder_or_file_or_a_shard_of_a_file_is_refused(tmp_path, penguins_run):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "_SUCCESS").write_text("")
    result = _predict(penguins_run[0], "--data", tmp_path / "empty", "--output", tmp_path / "p.csv")
    assert result.exit_code == 2 and "'" + str(tmp_path / "empty") + "' holds no Parquet files" in result.output
    result = _predict(penguins_run[0], "--data", DATASETS / "penguins.csv", "--output", tmp_path / "p.csv",
                      "--shard", "1/2")
    assert result.exit_code == 2 and "single file" in result.output
    (tmp_path / "header.csv").write_text((DATASETS / "penguins.csv").read_text().splitlines()[0] + "\n")
    result = _predict(penguins_run[0], "--data", tmp_path / "header.csv", "--output", tmp_path / "p.csv")
    assert result.exit_code == 2 and "holds no data (0 rows, 8 columns)" in result.output
    assert not (tmp_path / "p.csv").exists() and not list(tmp_path.glob(".p.csv*"))


def test_a_failing_predict_leaves_the_earlier_output_and_no_partial_file(tmp_path, small_batch_run, monkeypatch):
    from tabcli.runs.run import LoadedRun

    output = tmp_path / "predictions.csv"
    output.write_text("earlier\n")
    calls = []
    real = LoadedRun.predict_inputs

    def fail_on_second_batch(self, inputs):
        calls.append(len(next(iter(inputs.values()))))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, inputs)

    monkeypatch.setattr(LoadedRun, "predict_inputs", fail_on_second_batch)
    result = _predict(small_batch_run, "--data", DATASETS / "penguins.csv", "--output", output, "--overwrite",
                      "--chunk-rows", 100)
    assert result.exit_code == 130 and len(calls) == 2
    assert output.read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]
