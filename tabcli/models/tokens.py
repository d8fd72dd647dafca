"""The feature tokenizer shared by the attention families: one ``d_model`` token per column."""

from __future__ import annotations

import keras

from tabcli.layers import CategoricalEmbedding, NumericalEmbedding, PeriodicEmbedding
from tabcli.models.base_config import TokenizerOptions
from tabcli.models.spec import ModelSpec

__all__ = ["FeatureTokenizer"]


class FeatureTokenizer:
    """Creates the embedding layers of a family and applies them to model inputs.

    Numerical columns get a linear or periodic embedding (``config.numerical_embedding``);
    categorical columns one embedding table each. The same layers tokenize the model's inputs
    and any stored context rows, so both live in one token space.

    Args:
        config: The family config (its tokenizer options).
        spec: Input layout.
        d_model: Token width.
        prefix: Prefix of the layer names (unique names inside an ensemble).
    """

    def __init__(self, config: TokenizerOptions, spec: ModelSpec, d_model: int, prefix: str = ""):
        self.numerical = self.categorical = None
        if spec.numerical_names:
            if config.numerical_embedding == "periodic":
                self.numerical = PeriodicEmbedding(
                    d_model, config.periodic_frequencies, config.periodic_sigma, name=f"{prefix}numerical_embedding"
                )
            else:
                self.numerical = NumericalEmbedding(d_model, name=f"{prefix}numerical_embedding")
        if spec.categorical_names:
            self.categorical = CategoricalEmbedding(spec.cardinalities, d_model, name=f"{prefix}categorical_embedding")
        self.prefix = prefix

    def streams(self, numerical=None, categorical=None):
        """``(numerical tokens (..., n_num, d) | None, categorical tokens (..., n_cat, d) | None)``."""
        n = self.numerical(numerical) if self.numerical is not None and numerical is not None else None
        c = self.categorical(categorical) if self.categorical is not None and categorical is not None else None
        return n, c

    def tokens(self, numerical=None, categorical=None, name: str = "feature_tokens"):
        """All tokens ``(..., n_num + n_cat, d)``: numerical first, then categorical."""
        parts = [t for t in self.streams(numerical, categorical) if t is not None]
        if len(parts) == 1:
            return parts[0]
        return keras.layers.Concatenate(axis=-2, name=f"{self.prefix}{name}")(parts)
