"""The whole data flow up to model inputs: read -> schema -> split -> preprocess."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabcli.config.experiment import DataConfig
from tabcli.data.io import read_with_settings
from tabcli.data.preprocessing import TabularPreprocessor
from tabcli.data.schema import TableSchema, infer_schema
from tabcli.data.split import Splits, split_frame
from tabcli.errors import DataError

__all__ = ["PreparedData", "prepare_data", "load_splits", "fitting_rows", "SPLITS"]

SPLITS = ("train", "valid", "test")


@dataclass
class PreparedData:
    """Everything the model needs, fitted on the training rows only.

    Attributes:
        schema: Column roles and task.
        splits: The raw train/valid/test tables (original row index kept).
        preprocessor: Fitted feature/target transforms.
        inputs: Per split, ``{"numerical": float32 (rows, n), "categorical": int32 (rows, n)}``.
        targets: Per split, encoded targets (class indices or standardised values).
    """

    schema: TableSchema
    splits: Splits
    preprocessor: TabularPreprocessor
    inputs: dict[str, dict[str, np.ndarray]]
    targets: dict[str, np.ndarray]

    def frame(self, split: str) -> pd.DataFrame:
        """The raw table of ``split``."""
        return getattr(self.splits, split)

    def model_inputs(self, split: str) -> dict[str, np.ndarray]:
        """Inputs of ``split`` restricted to the inputs the model has (no empty arrays)."""
        return {k: v for k, v in self.inputs[split].items() if v.shape[1] > 0}


def _without_missing_target(frame: pd.DataFrame, target: str, what: str) -> pd.DataFrame:
    if target not in frame.columns:
        raise DataError(
            f"The target column '{target}' (`data.target`) is not in {what}. "
            f"Available columns: {list(frame.columns)}."
        )
    return frame[frame[target].notna()]


def load_splits(config: DataConfig, seed: int = 42) -> tuple[TableSchema, Splits]:
    """Read the configured files, infer the schema and split (no fitting).

    The same config and seed give the same splits, so a run's test rows can be recreated later
    (``tabcli evaluate``) from its saved config. ``config.split.seed``, when set, replaces ``seed``
    for the split.

    Raises:
        DataError: For unreadable files, missing columns, an unusable target, or empty splits.
    """
    train = read_with_settings(config.train, config, role="training")
    schema = infer_schema(
        train,
        target=config.target,
        task=config.task,
        numerical=config.numerical,
        categorical=config.categorical,
        drop=config.drop,
        dates=config.dates,
        integer_categorical_max_unique=config.integer_categorical_max_unique,
        source=f"the training file '{config.train}'",
    )
    train = _without_missing_target(train, schema.target, f"'{config.train}'")
    test = valid = None
    if config.test is not None:
        test = _without_missing_target(read_with_settings(config.test, config, role="test"), schema.target, f"the test file '{config.test}'")
    if config.valid is not None:
        valid = _without_missing_target(read_with_settings(config.valid, config, role="validation"), schema.target, f"the validation file '{config.valid}'")
    splits = split_frame(
        train,
        target=schema.target,
        task=schema.task,
        valid_fraction=config.split.valid,
        test_fraction=config.split.test,
        stratify=config.split.stratify,
        seed=seed if config.split.seed is None else config.split.seed,
        test=test,
        valid=valid,
    )
    schema.notes.extend(splits.notes)
    return schema, splits


def fitting_rows(train: pd.DataFrame, sample_rows: int | None, seed: int, notes: list[str] | None = None) -> pd.DataFrame:
    """The training rows the preprocessing is fitted on: all of them, or, above ``sample_rows``
    rows (``data.preprocessing_sample_rows``), ``sample_rows`` of them drawn at random without
    replacement (seeded by ``seed``, kept in table order).

    Fitting costs time and memory that grow with the rows, while what is fitted barely moves
    past a million: the quantile transform keeps at most 1,000 quantiles, each estimated from a
    million rows to within about 0.05 % of rank (the standard error of a sample quantile). What
    a sample does change: a category rarer than about ``rare_category_min_count`` in
    ``sample_rows`` gets the rare or the unseen code, and a column whose gaps all miss the
    sample gets no missing indicator. A note is appended to ``notes`` when a sample is used.
    """
    if sample_rows is None or len(train) <= sample_rows:
        return train
    positions = np.sort(np.random.default_rng(seed).choice(len(train), size=sample_rows, replace=False))
    if notes is not None:
        notes.append(f"The preprocessing is fitted on a random sample of {sample_rows:,} of the {len(train):,} "
                     "training rows (`data.preprocessing_sample_rows`) and applied to every row.")
    return train.iloc[positions]


def prepare_data(config: DataConfig, seed: int = 42) -> PreparedData:
    """Read the configured files, infer the schema, split, and fit the preprocessing.

    Args:
        config: The ``data`` section of the experiment config (absolute paths).
        seed: Seed of the split and of the quantile transform.

    Returns:
        :class:`PreparedData`.

    Raises:
        DataError: For unreadable files, missing columns, an unusable target, or splits that
            would be empty. Nothing is written anywhere.
    """
    schema, splits = load_splits(config, seed)
    preprocessor = TabularPreprocessor(schema, rare_min_count=config.rare_category_min_count, seed=seed)
    preprocessor.fit(fitting_rows(splits.train, config.preprocessing_sample_rows, seed, schema.notes))
    inputs, targets = {}, {}
    sources = {"train": f"'{config.train}'", "valid": f"'{config.valid or config.train}'", "test": f"'{config.test or config.train}'"}
    for name in SPLITS:
        frame = getattr(splits, name)
        inputs[name] = preprocessor.transform(frame, what=f"the {name} rows of {sources[name]}")
        targets[name] = preprocessor.encode_target(frame[schema.target], what=f"the {name} rows of {sources[name]}")
    return PreparedData(schema=schema, splits=splits, preprocessor=preprocessor, inputs=inputs, targets=targets)
