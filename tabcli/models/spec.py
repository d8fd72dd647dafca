"""What a model builder needs to know about the data (no Keras import)."""

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
    """

    task: str
    numerical_names: list[str]
    categorical_names: list[str]
    cardinalities: list[int]
    num_classes: int = 1
    feature_names: list[str] = field(init=False)

    @classmethod
    def from_preprocessor(cls, preprocessor) -> "ModelSpec":
        """The spec of the model inputs a fitted
        :class:`~tabcli.data.preprocessing.TabularPreprocessor` produces (its schema gives the task
        and classes)."""
        schema = preprocessor.schema
        return cls(
            task=schema.task,
            numerical_names=preprocessor.numerical_names,
            categorical_names=preprocessor.categorical_names,
            cardinalities=preprocessor.cardinalities,
            num_classes=max(1, len(schema.classes)),
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
