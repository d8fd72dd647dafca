"""A model family is one folder (typed config + builder) and one registry line: a toy family
written in a test trains, saves, loads and predicts through every command without other changes."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import REPO
from tabcli.cli import app

CONFIG = '''
from typing import Literal

from pydantic import Field

from tabcli.models.base_config import StrictModel


class ToyConfig(StrictModel):
    """One hidden Dense layer on the preprocessed columns."""

    type: Literal["toy"] = Field("toy", description="Model family.")
    units: int = Field(8, ge=1, description="Hidden units.")
'''

MODEL = '''
import keras

from tabcli.models.inputs import make_inputs


def build(config, spec, context=None, candidates=None):
    inputs = make_inputs(spec)
    parts = [keras.layers.Flatten()(value) for value in inputs.values()]
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate()(parts)
    x = keras.layers.Dense(config.units, activation="relu")(x)
    outputs = keras.layers.Dense(spec.num_outputs, activation=spec.output_activation, name="prediction")(x)
    return keras.Model(inputs, outputs, name="toy_model")


def attention_manifest(config, spec, context_ids):
    return {}
'''


@pytest.fixture
def toy_family(tmp_path, monkeypatch):
    from tabcli.config import experiment as schema
    from tabcli.models.registry import FAMILIES, Family, register

    folder = tmp_path / "toy_family"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "config.py").write_text(textwrap.dedent(CONFIG))
    (folder / "model.py").write_text(textwrap.dedent(MODEL))
    monkeypatch.syspath_prepend(str(tmp_path))
    # The whole of adding a family, beside its folder:
    register(Family("toy", "toy_family.config:ToyConfig", "toy_family.model", "keras", "a toy"))
    yield
    del FAMILIES["toy"]
    schema.rebuild_model_union()
    for name in [m for m in sys.modules if m.startswith("toy_family")]:
        del sys.modules[name]


def test_a_registered_family_trains_loads_and_predicts(toy_family, tmp_path):
    import tabcli

    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(REPO / "configs" / "penguins" / "mlp.yaml"), "--run-dir", str(run_dir),
                                      "--quiet", "--set", "model={type: toy, units: 16}", "--set", "training.epochs=40"])
    assert result.exit_code == 0, result.output
    run = tabcli.load_run(run_dir)
    assert run.config.model.type == "toy" and run.family.name == "toy"
    assert (run_dir / "model.keras").is_file()
    frame = pd.read_csv(REPO / "datasets" / "penguins.csv")
    test = run.test_frame()
    predictions = run.predict(test)
    stored = pd.read_parquet(run_dir / "predictions" / "test.parquet")
    np.testing.assert_allclose(predictions.filter(like="proba_").to_numpy(), stored.filter(like="proba_").to_numpy(), atol=1e-5)
    assert run.metrics["test"]["accuracy"] > 0.6  # three classes; the majority class is 44 %
    assert len(run.predict(frame)) == len(frame)


def test_an_unregistered_family_is_refused_by_name(write_config):
    from tabcli.config import validate_config
    from tabcli.errors import ConfigError

    with pytest.raises(ConfigError, match="toy"):
        validate_config({"data": {"train": "x.csv", "target": "y"}, "model": {"type": "toy"}})


def test_every_registered_family_is_listed_in_the_help_and_the_readme():
    from tabcli.models.registry import FAMILIES

    help_text = CliRunner().invoke(app, ["train", "--help"], terminal_width=200).output
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Model families"):readme.index("## Documentation")]
    for name in FAMILIES:
        assert name in help_text, name
        assert f"- `{name}`" in section, f"README's model families section lacks {name}"
