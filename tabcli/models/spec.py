"""What a model builder needs to know about the data and its training batches (no Keras import)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ModelSpec"]


@dataclass
class ModelSpec:
    """The shape of the model's inputs and outputs.

    Attributes:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        numerical_names: Columns of the ``"numerical"`` input (float32, ``(batch, n)``).
        categorical_names: Columns of the ``"categorical"`` input (int32, ``(batch, n)``).
        cardinalities: Codes per categorical column (code 0 = unseen/rare).
        num_classes: Number of classes (classification) or 1.
        batch_size: Rows per training batch, or None if unknown (tabular_attention's
            ``context_sample: auto`` is half of it; unknown means every context row).
    """

    task: str
    numerical_names: list[str]
    categorical_names: list[str]
    cardinalities: list[int]
    num_classes: int = 1
    batch_size: int | None = None
    feature_names: list[str] = field(init=False)

    @classmethod
    def from_preprocessor(cls, preprocessor, batch_size: int | None = None) -> "ModelSpec":
        """The spec of the model inputs a fitted
        :class:`~tabcli.data.preprocessing.TabularPreprocessor` produces (its schema gives the task
        and classes), trained in batches of ``batch_size`` rows."""
        schema = preprocessor.schema
        return cls(
            task=schema.task,
            numerical_names=preprocessor.numerical_names,
            categorical_names=preprocessor.categorical_names,
            cardinalities=preprocessor.cardinalities,
            num_classes=max(1, len(schema.classes)),
            batch_size=batch_size,
        )

    def __post_init__(self):
        self.feature_names = [*self.numerical_names, *self.categorical_names]

    @property
    def num_outputs(self) -> int:
        """Units of the output layer: 1 (binary, regression) or the number of classes."""
        return self.num_classes if self.task == "multiclass" else 1

    @property
    def output_activation(self) -> str:
        """``sigmoid`` (binary), ``softmax`` (multiclass) or ``linear`` (regression)."""
        return {"binary": "sigmoid", "multiclass": "softmax"}.get(self.task, "linear")
