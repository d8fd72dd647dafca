"""Shared fixtures: small synthetic tables, tiny configs, and the path of the shared benchmark data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO / "datasets"
SHARED_DATASETS = REPO.parent / "shared" / "datasets"

#: Settings that make a training run of the default model (retrieval) take seconds: use with --set.
TINY = [
    "training.epochs=3",
    "training.batch_size=64",
    "model.d_model=16",
    "model.num_heads=2",
    "model.num_feature_blocks=1",
    "model.retrieval.k=8",
]


def shared_dataset(name: str) -> Path:
    """Path of a table in ../shared/datasets, or skip the test where that folder is absent."""
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} not found: the shared benchmark tables live beside the repository in CI only")
    return path


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    """300 rows: numerical (with gaps), categorical strings, a boolean, a low-cardinality int, binary target."""
    rng = np.random.default_rng(0)
    n = 300
    x1 = rng.normal(size=n)
    x2 = rng.exponential(size=n) * 100
    color = rng.choice(["red", "green", "blue"], size=n)
    flag = rng.random(n) > 0.5
    level = rng.integers(1, 4, size=n)
    logit = 2 * x1 + (color == "red") * 1.5 - 1
    target = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    frame = pd.DataFrame({"x1": x1, "x2": x2, "color": color, "flag": flag, "level": level, "target": target})
    frame.loc[rng.choice(n, 20, replace=False), "x2"] = np.nan
    frame.loc[rng.choice(n, 10, replace=False), "color"] = np.nan
    return frame


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML config (a dict) to tmp_path and return its path."""

    def _write(config: dict, name: str = "experiment.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session")
def penguins_run(tmp_path_factory):
    """A tiny run of the default model (tabular_attention with retrieval) on the bundled penguins
    table: ``(run_dir, printed output)``."""
    from typer.testing import CliRunner

    from tabcli.cli import app

    run_dir = tmp_path_factory.mktemp("runs") / "penguins"
    args = ["train", str(REPO / "configs" / "penguins" / "tabular_attention.yaml"), "--run-dir", str(run_dir), "--quiet"]
    for item in [*TINY, "training.epochs=5", "output.attention_rows=50"]:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return run_dir, result.output


def export_columns(run, frame):
    """``frame``'s feature columns as an exported model takes them (``tabcli export``)."""
    from tabcli.export.inputs import export_inputs

    return export_inputs(run.schema, frame)
