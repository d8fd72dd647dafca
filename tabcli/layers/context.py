"""ContextRows: a fixed set of (preprocessed) training rows stored inside a model."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["ContextRows"]


@keras.saving.register_keras_serializable(package="tabcli")
class ContextRows(keras.layers.Layer):
    """Holds ``num_rows`` rows of ``num_columns`` values as a non-trainable weight.

    The context rows of inter-sample attention (SAINT, Somepalli et al. 2021; TabR, Gorishniy
    et al. 2023) must travel with the model so that predictions after a reload use the same
    rows. Storing them as a weight puts them inside ``model.keras``. The weight is created
    with zeros; the caller assigns the real rows with ``layer.rows.assign(values)`` (or
    ``set_rows``) once the model is built.

    Args:
        num_rows: Number of context rows ``M`` (>= 1).
        num_columns: Number of columns ``C`` of each row (>= 1).
        **kwargs: Standard layer keyword arguments.

    Call arguments:
        inputs: Any model tensor; only used to place the layer in the functional graph.

    Returns:
        The stored rows, ``(num_rows, num_columns)``, float32 (categorical codes are stored as
        exact float32 integers; cast them back with ``ops.cast(..., "int32")``).

    Raises:
        ValueError: If ``num_rows`` or ``num_columns`` is not positive, or ``set_rows`` gets an
            array of another shape.
    """

    def __init__(self, num_rows: int, num_columns: int, **kwargs):
        super().__init__(**kwargs)
        if int(num_rows) < 1 or int(num_columns) < 1:
            raise ValueError(
                "num_rows and num_columns must be positive integers; received "
                f"num_rows={num_rows}, num_columns={num_columns}."
            )
        self.num_rows = int(num_rows)
        self.num_columns = int(num_columns)

    def build(self, input_shape=None):
        self.rows = self.add_weight(
            name="rows",
            shape=(self.num_rows, self.num_columns),
            initializer="zeros",
            trainable=False,
            dtype="float32",
        )

    def set_rows(self, values) -> None:
        """Assign the context rows; ``values`` must have shape ``(num_rows, num_columns)``."""
        values = ops.convert_to_tensor(values, dtype="float32")
        if tuple(values.shape) != (self.num_rows, self.num_columns):
            raise ValueError(
                f"Expected context rows of shape {(self.num_rows, self.num_columns)}; "
                f"received {tuple(values.shape)}."
            )
        if not self.built:
            self.build()
        self.rows.assign(values)

    def call(self, inputs):
        return ops.convert_to_tensor(self.rows)

    def compute_output_shape(self, input_shape):
        return (self.num_rows, self.num_columns)

    def get_config(self):
        config = super().get_config()
        config.update({"num_rows": self.num_rows, "num_columns": self.num_columns})
        return config
