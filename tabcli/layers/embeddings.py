"""Feature tokenizers: one ``d_model`` token per column (FT-Transformer's feature tokenizer)."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["NumericalEmbedding", "PeriodicEmbedding", "CategoricalEmbedding"]


@keras.saving.register_keras_serializable(package="tabcli")
class NumericalEmbedding(keras.layers.Layer):
    """Per-feature linear embedding of numerical values: ``token_f = x_f * W_f + b_f``.

    Each of the ``num_features`` columns has its own weight and bias vector of width
    ``d_model`` (the "feature tokenizer" of FT-Transformer, Gorishniy et al. 2021, §3.3).
    Weights are initialised uniformly in ``[-1/sqrt(d_model), 1/sqrt(d_model)]`` as there.

    Args:
        d_model: Width of each token.
        **kwargs: Standard layer keyword arguments.

    Call arguments:
        inputs: Float tensor ``(..., num_features)``: any number of leading axes.

    Returns:
        Float tensor ``(..., num_features, d_model)``.

    Raises:
        ValueError: If ``d_model`` is not positive or the last input axis is unknown.
    """

    def __init__(self, d_model: int, **kwargs):
        super().__init__(**kwargs)
        if int(d_model) < 1:
            raise ValueError(f"d_model must be a positive integer; received d_model={d_model}.")
        self.d_model = int(d_model)

    def build(self, input_shape):
        num_features = input_shape[-1]
        if num_features is None:
            raise ValueError(f"The last axis (features) must be known; received shape {input_shape}.")
        bound = 1.0 / self.d_model**0.5
        init = keras.initializers.RandomUniform(-bound, bound)
        self.kernel = self.add_weight(name="kernel", shape=(num_features, self.d_model), initializer=init)
        self.bias = self.add_weight(name="bias", shape=(num_features, self.d_model), initializer=init)

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        return ops.expand_dims(inputs, -1) * self.kernel + self.bias

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update({"d_model": self.d_model})
        return config


@keras.saving.register_keras_serializable(package="tabcli")
class CategoricalEmbedding(keras.layers.Layer):
    """One embedding table per categorical column, plus a per-column bias.

    Column ``i`` takes integer codes in ``[0, cardinalities[i])`` and looks them up in its own
    ``keras.layers.Embedding(cardinalities[i], d_model)``. tabcli's preprocessing reserves code
    0 for unseen and rare categories, so every column's table has a row for them.

    Args:
        cardinalities: Number of codes of each column (list of positive ints, one per column).
        d_model: Width of each token.
        **kwargs: Standard layer keyword arguments.

    Call arguments:
        inputs: Integer (or integer-valued float) tensor ``(..., num_columns)``.

    Returns:
        Float tensor ``(..., num_columns, d_model)``.

    Raises:
        ValueError: If ``cardinalities`` is empty or holds a non-positive entry, or if the
            input's last axis does not match ``len(cardinalities)``.
    """

    def __init__(self, cardinalities, d_model: int, **kwargs):
        super().__init__(**kwargs)
        cardinalities = [int(c) for c in cardinalities]
        if not cardinalities or min(cardinalities) < 1:
            raise ValueError(
                f"cardinalities must be a non-empty list of positive ints; received {cardinalities}."
            )
        if int(d_model) < 1:
            raise ValueError(f"d_model must be a positive integer; received d_model={d_model}.")
        self.cardinalities = cardinalities
        self.d_model = int(d_model)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(self.cardinalities):
            raise ValueError(
                f"Expected {len(self.cardinalities)} categorical columns (one per cardinality); "
                f"received input shape {input_shape}."
            )
        bound = 1.0 / self.d_model**0.5
        self.tables = []
        for i, cardinality in enumerate(self.cardinalities):
            table = keras.layers.Embedding(
                cardinality,
                self.d_model,
                embeddings_initializer=keras.initializers.RandomUniform(-bound, bound),
                name=f"table_{i}",
            )
            table.build((None,))
            self.tables.append(table)
        self.bias = self.add_weight(
            name="bias",
            shape=(len(self.cardinalities), self.d_model),
            initializer=keras.initializers.RandomUniform(-bound, bound),
        )

    def call(self, inputs):
        codes = ops.cast(inputs, "int32")
        tokens = [table(codes[..., i]) for i, table in enumerate(self.tables)]
        return ops.stack(tokens, axis=-2) + self.bias

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update({"cardinalities": list(self.cardinalities), "d_model": self.d_model})
        return config


@keras.saving.register_keras_serializable(package="tabcli")
class PeriodicEmbedding(keras.layers.Layer):
    """Periodic embedding of numerical values ("PLR", Gorishniy et al. 2022, "On Embeddings for
    Numerical Features in Tabular Deep Learning", §3.3).

    For feature ``f`` with value ``x``: ``v = [sin(2π c_f x), cos(2π c_f x)]`` with ``k``
    trainable frequencies ``c_f`` drawn from ``N(0, sigma²)``, then a per-feature linear map
    ``2k -> d_model`` and a ReLU. Periodic features let a network fit functions of a value
    that vary quickly, which linear embeddings of quantile-normal inputs fit poorly.

    Args:
        d_model: Width of each token.
        num_frequencies: Frequencies ``k`` per feature.
        sigma: Standard deviation of the initial frequencies (the paper's most important
            hyper-parameter; larger values give higher frequencies).
        **kwargs: Standard layer keyword arguments.

    Call arguments:
        inputs: Float tensor ``(..., num_features)``.

    Returns:
        Float tensor ``(..., num_features, d_model)``.

    Raises:
        ValueError: If ``d_model`` or ``num_frequencies`` is not positive, or ``sigma <= 0``.
    """

    def __init__(self, d_model: int, num_frequencies: int = 16, sigma: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if int(d_model) < 1 or int(num_frequencies) < 1:
            raise ValueError(
                "d_model and num_frequencies must be positive integers; received "
                f"d_model={d_model}, num_frequencies={num_frequencies}."
            )
        if float(sigma) <= 0:
            raise ValueError(f"sigma must be > 0; received sigma={sigma}.")
        self.d_model = int(d_model)
        self.num_frequencies = int(num_frequencies)
        self.sigma = float(sigma)

    def build(self, input_shape):
        num_features = input_shape[-1]
        if num_features is None:
            raise ValueError(f"The last axis (features) must be known; received shape {input_shape}.")
        self.frequencies = self.add_weight(
            name="frequencies",
            shape=(num_features, self.num_frequencies),
            initializer=keras.initializers.RandomNormal(stddev=self.sigma),
        )
        fan_in = 2 * self.num_frequencies
        bound = 1.0 / fan_in**0.5
        init = keras.initializers.RandomUniform(-bound, bound)
        self.kernel = self.add_weight(name="kernel", shape=(num_features, fan_in, self.d_model), initializer=init)
        self.bias = self.add_weight(name="bias", shape=(num_features, self.d_model), initializer=init)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        lead = ops.shape(x)[:-1]
        num_features = ops.shape(x)[-1]
        # Features first, (F, rows, ...): the per-feature maps are then one batched matmul, and
        # sin and cos each meet their half of the kernel, so the (rows, F, 2k) concatenation is
        # never built. TensorFlow's einsum "bfk,fkd->bfd" transposes on every call and in its
        # gradient, which costs more than these two products on the CPU.
        columns = ops.transpose(ops.reshape(x, (-1, num_features)))  # (F, rows)
        angles = 2.0 * 3.141592653589793 * ops.expand_dims(columns, -1) * ops.expand_dims(self.frequencies, 1)
        k = self.num_frequencies
        tokens = ops.matmul(ops.sin(angles), self.kernel[:, :k]) + ops.matmul(ops.cos(angles), self.kernel[:, k:])
        tokens = ops.relu(tokens + ops.expand_dims(self.bias, 1))  # (F, rows, d_model)
        return ops.reshape(ops.transpose(tokens, (1, 0, 2)), tuple(lead) + (num_features, self.d_model))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update({"d_model": self.d_model, "num_frequencies": self.num_frequencies, "sigma": self.sigma})
        return config
