"""`tabcli serve` as a real process on a loopback port, spoken to over HTTP, and the Python API: both
give the predictions `tabcli predict` gives for the same rows."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import DATASETS, REPO, TINY
from tabcli.cli import app

# One worker runs this file's tests (pytest-xdist), so the module's trained run and server process are built once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]

pytest.importorskip("fastapi", reason="the server extra is not installed: pip install '.[serve]'")
pytest.importorskip("uvicorn", reason="the server extra is not installed: pip install '.[serve]'")

runner = CliRunner()
PENGUINS = DATASETS / "penguins.csv"


def _as_exported(path):
    """The penguins table as customer tables often come (e.g. the Telco churn sample): an id
    column the config drops, and a blank (" ") where a number is missing."""
    frame = pd.read_csv(PENGUINS)
    frame.insert(0, "penguin_id", [f"P{i:04d}" for i in range(len(frame))])
    depth = frame["bill_depth_mm"].astype(object)
    depth[frame.sample(60, random_state=0).index] = np.nan
    frame["bill_depth_mm"] = depth.where(depth.notna(), " ")
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small penguins run of the default model (retrieval, so explanations carry neighbours),
    trained on the exported table, 40 of its rows as ``pd.read_csv`` gives them (blanks are
    ``" "`` text, the id column present) and `tabcli predict`'s output for them."""
    folder = tmp_path_factory.mktemp("serve")
    run, table = folder / "run", _as_exported(folder / "penguins.csv")
    sets = [*TINY, f"data.train={table}", "data.drop=[penguin_id]"]
    args = ["train", str(REPO / "configs/penguins/tabular_attention.yaml"), "--run-dir", str(run), "-q"]
    for item in sets:
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(table).sample(40, random_state=1)
    assert (rows["bill_depth_mm"] == " ").sum() >= 3 and not pd.api.types.is_numeric_dtype(rows["bill_depth_mm"])
    rows.to_csv(folder / "rows.csv", index=False)
    predicted = runner.invoke(app, ["predict", str(run), "--data", str(folder / "rows.csv"), "--output", str(folder / "cli.csv")])
    assert predicted.exit_code == 0, predicted.output
    return run, rows, pd.read_csv(folder / "cli.csv")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained):
    run = trained[0]
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "tabcli", "serve", str(run), "--port", str(port), "--max-rows", "500"],
                               cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                break
        except OSError:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the server did not answer /health within 120 s"
            time.sleep(0.3)
    yield port, process
    process.terminate()
    process.wait(timeout=30)


def _request(port, method, path, body=None, content_type="application/json"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    connection.request(method, path, body=payload, headers={"content-type": content_type})
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")


def _records(frame):
    return json.loads(frame.drop(columns=["species"]).to_json(orient="records"))


def _probabilities(answer) -> np.ndarray:
    return np.array([[p["probabilities"][c] for c in ("Adelie", "Chinstrap", "Gentoo")] for p in answer["predictions"]])


def test_predictions_equal_the_cli(trained, server):
    run, rows, cli = trained
    port, _ = server
    status, answer = _request(port, "POST", "/predict", _records(rows))
    assert status == 200 and len(answer["predictions"]) == len(rows)
    assert [p["prediction"] for p in answer["predictions"]] == cli["prediction"].tolist()
    np.testing.assert_allclose(_probabilities(answer), cli[["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]].to_numpy(), atol=1e-5)
    # The same rows as CSV, the target column included (it is ignored).
    status, as_csv = _request(port, "POST", "/predict", rows.to_csv(index=False).encode(), "text/csv")
    assert status == 200
    np.testing.assert_allclose(_probabilities(as_csv), _probabilities(answer), atol=1e-6)


def test_the_same_rows_get_the_same_predictions_through_every_door(trained, server):
    """The training reader, `tabcli predict` on the file, `Run.predict` on ``pd.read_csv`` of it and
    ``POST /predict`` with the records as the file has them (blanks as " ", the dropped id and the
    target sent along) give the same predictions; a column the training table did not have is
    refused by each, by name."""
    import tabcli
    from tabcli.data.io import read_table
    from tabcli.errors import DataError

    run_dir, rows, cli = trained
    port, _ = server
    run = tabcli.load_run(run_dir)
    doors = {"training reader": run.predict(read_table(run_dir.parent / "rows.csv", run.config.data.na_values)),
             "Run.predict": run.predict(pd.read_csv(run_dir.parent / "rows.csv"))}
    status, answer = _request(port, "POST", "/predict", json.loads(rows.to_json(orient="records")))
    assert status == 200, answer
    columns = ["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]
    doors["POST /predict"] = pd.DataFrame(_probabilities(answer), columns=columns).assign(
        prediction=[p["prediction"] for p in answer["predictions"]])
    for door, table in doors.items():
        assert table["prediction"].tolist() == cli["prediction"].tolist(), door
        np.testing.assert_allclose(table[columns].to_numpy(), cli[columns].to_numpy(), atol=1e-5, err_msg=door)
    blank = rows["bill_depth_mm"].to_numpy() == " "  # they are predicted as missing values, not refused
    assert blank.any() and cli["prediction"][blank].isin(["Adelie", "Chinstrap", "Gentoo"]).all()

    extra = rows.assign(colour="blue")
    extra.to_csv(run_dir.parent / "extra.csv", index=False)
    with pytest.raises(DataError, match="'colour'"):
        run.predict(extra)
    refused = runner.invoke(app, ["predict", str(run_dir), "--data", str(run_dir.parent / "extra.csv"),
                                  "--output", str(run_dir.parent / "extra-out.csv")])
    assert refused.exit_code == 2 and "colour" in refused.output and not (run_dir.parent / "extra-out.csv").exists()
    status, answer = _request(port, "POST", "/predict", json.loads(extra.head(2).to_json(orient="records")))
    assert status == 422 and "column 'colour': unknown column" in answer["message"]


def test_bad_records_are_422s_that_name_record_and_column(server):
    port, _ = server
    good = _records(pd.read_csv(PENGUINS).head(3))
    typo = [dict(good[0]), {**{k: v for k, v in good[1].items() if k != "body_mass_g"}, "body_mass": 4000}]
    status, answer = _request(port, "POST", "/predict", typo)
    assert status == 422
    assert "record 1, column 'body_mass': unknown column" in answer["message"]
    assert "record 1, column 'body_mass_g': Field required" in answer["message"]
    status, answer = _request(port, "POST", "/predict", [good[0], {**good[2], "flipper_length_mm": "long"}])
    assert status == 422 and "record 1, column 'flipper_length_mm'" in answer["message"]
    # Unseen categories and missing values are handled as in training.
    odd = [{**good[0], "island": "Atlantis", "sex": None, "bill_depth_mm": None}]
    status, answer = _request(port, "POST", "/predict", odd)
    assert status == 200 and answer["predictions"][0]["prediction"] in ("Adelie", "Chinstrap", "Gentoo")
    status, answer = _request(port, "POST", "/predict", good * 200)
    assert status == 413 and "500" in answer["message"]


def test_concurrent_clients_get_their_own_rows(trained, server):
    """8 clients at once, each sending different rows: every answer is the one its rows get alone."""
    _, rows, cli = trained
    port, _ = server
    expected = dict(zip(range(len(rows)), cli["prediction"]))
    records = _records(rows)
    failures = []

    def client(index):
        for round_ in range(6):
            chosen = [(index * 5 + round_ + j) % len(records) for j in range(1 + (index + round_) % 4)]
            status, answer = _request(port, "POST", "/predict", [records[i] for i in chosen])
            got = [p["prediction"] for p in answer.get("predictions", [])] if status == 200 else None
            if got != [expected[i] for i in chosen]:
                failures.append((index, round_, status, got))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]


def test_docs_metadata_and_explanations(trained, server):
    _, rows, _ = trained
    port, _ = server
    status, spec = _request(port, "GET", "/openapi.json")
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    properties = body["application/json"]["schema"]["items"]["properties"]
    assert {"bill_length_mm", "island", "sex", "year"} <= set(properties) and "text/csv" in body
    assert "number" in json.dumps(properties["bill_length_mm"])
    status, meta = _request(port, "GET", "/metadata")
    assert meta["target"] == "species" and meta["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert {"name": "island", "type": "categorical"} in meta["columns"] and "accuracy" in meta["test_metrics"]
    status, answer = _request(port, "POST", "/predict?explain=true&top_neighbours=3", _records(rows.head(2)))
    assert status == 200 and len(answer["explanations"]) == 2
    first = answer["explanations"][0]
    assert 1 <= len(first["top_features"]) <= 5 and len(first["neighbours"]) == 3
    train_labels = set(pd.read_csv(PENGUINS)["species"])
    assert all(n["label"] in train_labels and 0 <= n["weight"] <= 1 for n in first["neighbours"])
    # The same rows get the same explanation from the server as from the Python API.
    import tabcli

    local = tabcli.load_run(trained[0]).explain(rows.head(2), top_neighbours=3)
    for served, own in zip(answer["explanations"], local):
        assert [c["column"] for c in served["top_features"]] == [c["column"] for c in own["top_features"]]
        np.testing.assert_allclose([c["importance"] for c in served["top_features"]],
                                   [c["importance"] for c in own["top_features"]], atol=1e-4)
        assert [n["training_row"] for n in served["neighbours"]] == [n["training_row"] for n in own["neighbours"]]
        assert [c["column"] for c in served["neighbour_columns"]] == [c["column"] for c in own["neighbour_columns"]]


def test_refused_starts_are_one_paragraph(trained, server, tmp_path):
    port, _ = server
    taken = runner.invoke(app, ["serve", str(trained[0]), "--port", str(port)])
    assert taken.exit_code == 2 and "already in use" in taken.output
    missing = runner.invoke(app, ["serve", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_python_api_equals_the_cli(trained):
    import tabcli

    run_dir, rows, cli = trained
    run = tabcli.load_run(run_dir)
    table = run.predict(rows)
    assert list(table.columns) == list(cli.columns)
    assert table["prediction"].tolist() == cli["prediction"].tolist()
    np.testing.assert_allclose(table.drop(columns="prediction").to_numpy(), cli.drop(columns="prediction").to_numpy(), atol=1e-6)
    assert list(run.predict_proba(rows.to_dict("records")).columns) == ["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]
    metrics = run.evaluate(rows)
    assert metrics["accuracy"] == pytest.approx((cli["prediction"] == rows["species"].to_numpy()).mean())
    explained = run.explain(rows, rows=[0, 3], top_neighbours=4)
    assert [e["row"] for e in explained] == [0, 3] and len(explained[1]["neighbours"]) == 4
    from tabcli.errors import ConfigError, DataError

    with pytest.raises(DataError, match="target column 'species'"):
        run.evaluate(rows.drop(columns="species"))
    with pytest.raises(ConfigError, match="does not exist"):
        tabcli.load_run(run_dir.parent / "missing")


def test_train_from_a_mapping_with_overrides(tmp_path):
    import tabcli
    from tabcli.errors import DataError

    config = {"data": {"train": str(PENGUINS), "target": "species"}, "model": {"type": "gbdt"},
              "output": {"dir": str(tmp_path / "runs")}}
    run = tabcli.train(config, run_dir=tmp_path / "run", model__max_iter=30)
    assert run.config.model.max_iter == 30 and run.path == tmp_path / "run"
    assert run.metrics["test"]["accuracy"] > 0.9
    with pytest.raises(DataError, match="nope"):
        tabcli.train({**config, "data": {"train": str(PENGUINS), "target": "nope"}})
