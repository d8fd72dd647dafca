"""The experiment config: every key with its type, default and description (pydantic 2).

Unknown keys are errors. Only ``data.train`` and ``data.target`` have no default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, model_validator

from tabcli.config.tune import TuneConfig
from tabcli.models.base_config import StrictModel
from tabcli.models.registry import FAMILIES, model_config_union

__all__ = [
    "ExperimentConfig",
    "DataConfig",
    "SplitConfig",
    "TrainingConfig",
    "OutputConfig",
    "TrackingConfig",
    "ModelConfig",
    "PATH_KEYS",
]

#: Every registered family's config, told apart by ``type`` (:func:`tabcli.models.registry.model_config_union`).
ModelConfig = model_config_union()

#: The family used when the config gives no ``model.type``: the registry's first.
DEFAULT_MODEL_TYPE = next(iter(FAMILIES))


def _default_model():
    return FAMILIES[DEFAULT_MODEL_TYPE].config_class()

#: Config keys holding file paths (resolved against the config file's folder).
PATH_KEYS = ("data.train", "data.valid", "data.test")


class SplitConfig(StrictModel):
    """How rows are split when no separate valid/test file is given."""

    valid: float = Field(0.15, gt=0.0, lt=1.0, description="Fraction of all rows for validation (early stopping).")
    test: float = Field(0.2, gt=0.0, lt=1.0, description="Fraction of all rows held out for the test metrics.")
    stratify: bool = Field(True, description="Keep class proportions in every split (classification).")
    seed: Optional[int] = Field(
        None, ge=0,
        description="Seed of the split alone (null: the run's seed). Fix it to compare seeds of a model on one split, "
        "as `tabcli tune --refit` does.",
    )

    @model_validator(mode="after")
    def _leave_training_rows(self):
        if self.valid + self.test >= 0.9:
            raise ValueError(
                f"valid + test = {self.valid + self.test:.2f} leaves too few training rows; keep it below 0.9"
            )
        return self


class DataConfig(StrictModel):
    """Where the table is and what each column is."""

    train: Path = Field(
        ..., description="Training table: CSV, TSV or Parquet file (by extension), or a folder of Parquet files "
        "(read in sorted path order; hive partitions such as year=2024/ become columns).",
    )
    test: Optional[Path] = Field(None, description="Separate test table (file or Parquet folder); without it, test rows are split off train.")
    valid: Optional[Path] = Field(None, description="Separate validation table (file or Parquet folder); without it, valid rows are split off train.")
    target: str = Field(..., min_length=1, description="Column to predict.")
    task: Literal["auto", "binary", "multiclass", "regression"] = Field(
        "auto", description="Prediction task; auto infers it from the target's values."
    )
    numerical: Optional[list[str]] = Field(None, description="Columns forced to numerical; others are inferred.")
    categorical: Optional[list[str]] = Field(None, description="Columns forced to categorical; others are inferred.")
    drop: list[str] = Field(default_factory=list, description="Columns to ignore (ids, leaks).")
    dates: Optional[list[str]] = Field(
        None,
        description="Columns forced to dates (others holding dates are recognised); each becomes numerical "
        "features: year, month, day of week, day of year, days since 1970.",
    )
    na_values: list[str] = Field(default_factory=list, description="Extra strings read as missing values.")
    sep: str = Field(
        "auto", min_length=1,
        description="CSV field separator: 'auto' (detected among , ; tab |), or the separator itself (';', 'tab').",
    )
    encoding: str = Field(
        "utf-8", min_length=1, description="Text encoding of CSV/TSV files, e.g. 'cp1252' for Excel exports on Windows."
    )
    integer_categorical_max_unique: int = Field(
        10, ge=0, description="Integer columns with at most this many distinct values are categorical."
    )
    rare_category_min_count: int = Field(
        5, ge=1, description="Categories seen fewer times in training share one 'rare' code."
    )
    preprocessing_sample_rows: Optional[int] = Field(
        1_000_000, ge=2,
        description="Above this many training rows, the preprocessing (quantiles, category vocabularies, "
        "imputation values, missing indicators, target scaling) is fitted on a random sample of this many "
        "training rows (seeded by `seed`) and then applied to every row; the model still trains on every row. "
        "A category or a missing value absent from the sample is treated as unseen. null: always fit on every row.",
    )
    split: SplitConfig = Field(default_factory=SplitConfig, description="Split fractions.")


class TrainingConfig(StrictModel):
    """Optimisation: AdamW with early stopping on the validation loss."""

    epochs: int = Field(100, ge=1, description="Maximum number of passes over the training rows.")
    batch_size: int = Field(256, ge=1, description="Rows per gradient step.")
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-5, ge=0.0, description="AdamW decoupled weight decay.")
    early_stopping_patience: int = Field(
        16, ge=1, description="Epochs without validation-loss improvement before stopping (best weights restored)."
    )
    gradient_clip_norm: Optional[float] = Field(1.0, gt=0.0, description="Clip each gradient to this global norm (null: off).")
    eval_batch_size: int = Field(1024, ge=1, description="Rows per batch when predicting.")


class OutputConfig(StrictModel):
    """Where runs are written."""

    dir: Path = Field(Path("runs"), description="Folder of run directories (relative: to the current directory).")
    save_attention: bool = Field(True, description="Write attention/test.npz with the test rows' attention scores.")
    attention_rows: Optional[int] = Field(
        10_000, ge=1,
        description="Test rows whose attention scores attention/test.npz holds: the first N of the test split "
        "(null: every row). The saved scores take kilobytes per row (the default model on 8 columns: 4 KB) and "
        "collecting them holds more, so every row of a 2-million-row test split does not fit in memory; "
        "`tabcli explain` computes any rows' scores on demand.",
    )
    tensorboard: bool = Field(True, description="Write TensorBoard logs (loss and metrics per epoch) to <run>/tensorboard.")


class TrackingConfig(StrictModel):
    """Experiment tracking beyond the run directory."""

    mlflow: bool = Field(False, description="Log params, metrics and run files to MLflow (pip install 'tabcli[mlflow]').")
    mlflow_uri: Optional[str] = Field(
        None, description="MLflow tracking URI; default: a local SQLite store <output.dir>/mlflow.db (artifacts in <output.dir>/mlartifacts)."
    )
    experiment: Optional[str] = Field(None, description="MLflow experiment name; default: the run name.")


class ExperimentConfig(StrictModel):
    """One experiment: data, model, training and output settings."""

    name: Optional[str] = Field(None, description="Run name; default: the config file's stem.")
    seed: int = Field(42, ge=0, description="Seed for the split, initialisation and shuffling.")
    data: DataConfig = Field(..., description="The table and its columns.")
    model: ModelConfig = Field(default_factory=_default_model, description="Model family and its settings.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Optimisation settings.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Output settings.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Experiment tracking (MLflow).")
    tune: TuneConfig = Field(default_factory=TuneConfig, description="Hyper-parameter search (`tabcli tune` only).")

    @model_validator(mode="before")
    @classmethod
    def _default_model_type(cls, raw):
        # `model: {d_model: 32}` (or only --set model.d_model=32) means the default family.
        if isinstance(raw, dict) and isinstance(raw.get("model"), dict) and "type" not in raw["model"]:
            raw = {**raw, "model": {"type": DEFAULT_MODEL_TYPE, **raw["model"]}}
        return raw


def rebuild_model_union() -> None:
    """Validate ``model`` against every family registered so far (called by
    :func:`tabcli.models.registry.register` for a family added after this module was imported)."""
    global ModelConfig
    ModelConfig = model_config_union()
    ExperimentConfig.model_fields["model"].annotation = ModelConfig
    ExperimentConfig.model_rebuild(force=True)
