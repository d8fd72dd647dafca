"""Config validation, --set overrides and path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabcli.config import load_config, parse_override
from tabcli.errors import ConfigError


def test_minimal_config_gets_design_defaults(write_config, tmp_path):
    path = write_config({"data": {"train": "table.csv", "target": "y"}})
    config = load_config(path)
    assert config.name == "experiment"
    assert config.seed == 42
    assert config.data.train == (tmp_path / "table.csv").resolve()
    assert config.data.task == "auto"
    assert (config.data.split.valid, config.data.split.test, config.data.split.stratify) == (0.15, 0.2, True)
    assert config.model.type == "tabular_attention"
    assert (config.model.d_model, config.model.num_heads, config.model.dropout_rate) == (64, 8, 0.1)
    assert (config.training.epochs, config.training.batch_size) == (100, 256)
    assert config.training.early_stopping_patience == 16


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    folder = tmp_path / "configs" / "deep"
    folder.mkdir(parents=True)
    path = folder / "c.yaml"
    path.write_text("data:\n  train: ../data/t.parquet\n  test: /abs/test.csv\n  target: y\n")
    config = load_config(path)
    assert config.data.train == (tmp_path / "configs" / "data" / "t.parquet").resolve()
    assert config.data.test == Path("/abs/test.csv")


def test_set_overrides_are_yaml_typed_and_paths_cwd_relative(write_config, tmp_path):
    path = write_config({"data": {"train": "a.csv", "target": "y"}})
    cwd = tmp_path / "elsewhere"
    config = load_config(
        path,
        ["training.epochs=5", "model.dropout_rate=0.0", "data.drop=[id, leak]", "data.train=b.csv", "name=run1"],
        cwd=cwd,
    )
    assert config.training.epochs == 5 and isinstance(config.training.epochs, int)
    assert config.model.dropout_rate == 0.0
    assert config.data.drop == ["id", "leak"]
    assert config.data.train == (cwd / "b.csv").resolve()
    assert config.name == "run1"


def test_set_can_switch_model_family(write_config):
    config = load_config(write_config({"data": {"train": "a.csv", "target": "y"}}), ["model.type=mlp"])
    assert config.model.type == "mlp"
    assert config.model.hidden_units == [256, 256]


def test_unknown_key_names_its_path_and_allowed_keys(write_config):
    path = write_config({"data": {"train": "a.csv", "target": "y"}, "model": {"num_headz": 4}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "model.num_headz" in message
    assert "Did you mean 'num_heads'" in message
    assert "d_model" in message and "dropout_rate" in message  # the allowed keys are listed
    assert str(path) in message


def test_unknown_top_level_and_nested_keys(write_config):
    path = write_config({"data": {"train": "a.csv", "target": "y", "split": {"vaild": 0.1}}, "trainig": {}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "data.split.vaild" in message and "'valid'" in message
    assert "unknown key 'trainig'" in message and "'training'" in message


def test_missing_required_keys(write_config):
    with pytest.raises(ConfigError, match=r"'data.target' is required"):
        load_config(write_config({"data": {"train": "a.csv"}}))
    with pytest.raises(ConfigError, match=r"'data' is required"):
        load_config(write_config({"seed": 1}))


def test_bad_values_are_explained(write_config):
    path = write_config({"data": {"train": "a.csv", "target": "y"}, "model": {"d_model": 30, "num_heads": 4}})
    with pytest.raises(ConfigError, match="divisible by num_heads"):
        load_config(path)
    with pytest.raises(ConfigError, match="training.epochs"):
        load_config(write_config({"data": {"train": "a.csv", "target": "y"}}), ["training.epochs=0"])
    for value in ("0", "true", "autp"):  # true would otherwise be read as 1 row
        with pytest.raises(ConfigError, match=r"'model.context_sample' \(from --set model.context_sample=...\): context_sample must be a number of rows >= 1"):
            load_config(write_config({"data": {"train": "a.csv", "target": "y"}}), [f"model.context_sample={value}"])
    with pytest.raises(ConfigError, match="model.type"):
        load_config(write_config({"data": {"train": "a.csv", "target": "y"}}), ["model.type=transformer"])


def test_yaml_syntax_error_gives_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("data:\n  train: a.csv\n  target: [y\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["epochs", "=5", "training..epochs=3"])
def test_malformed_overrides(text):
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override(text)


def test_override_into_a_value_is_rejected(write_config):
    path = write_config({"data": {"train": "a.csv", "target": "y"}})
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config(path, ["data.target.name=3"])


def test_ensemble_defaults_are_typed_branch_configs(write_config):
    config = load_config(write_config({"data": {"train": "a.csv", "target": "y"}, "model": {"type": "ensemble"}}))
    assert [b.type for b in config.model.branches] == ["tabular_attention", "interpretable", "mlp"]
    assert config.model.branches[0].d_model == 32


def test_dotted_keys_read_and_set_nested_sections():
    from tabcli.config.dotted import NotASection, get_dotted, set_dotted

    raw = {"training": {"epochs": 5}, "model": None}
    set_dotted(raw, "model.retrieval.k", 8)  # null and missing sections are created
    set_dotted(raw, "training.epochs", 7)
    assert raw == {"training": {"epochs": 7}, "model": {"retrieval": {"k": 8}}}
    assert get_dotted(raw, "model.retrieval.k") == 8 and get_dotted(raw, "model.nope", "-") == "-"
    assert get_dotted(raw, "training.epochs.max") is None
    with pytest.raises(NotASection) as error:
        set_dotted(raw, "training.epochs.max", 1)
    assert error.value.prefix == "training.epochs"
