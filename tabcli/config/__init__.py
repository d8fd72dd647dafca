"""The experiment config: schema (pydantic), YAML loading, ``--set`` overrides. No Keras import."""

from tabcli.config.loader import apply_overrides, config_to_yaml, load_config, parse_override, validate_config
from tabcli.config.experiment import ExperimentConfig

__all__ = ["ExperimentConfig", "apply_overrides", "config_to_yaml", "load_config", "parse_override", "validate_config"]
