"""Seeded train/valid/test split, stratified by class for classification tasks."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from tabcli.errors import DataError

__all__ = ["Splits", "split_frame"]


@dataclass
class Splits:
    """The three tables of an experiment, each keeping the original row index.

    Attributes:
        train: Rows the model and the preprocessing are fitted on.
        valid: Rows used for early stopping.
        test: Held-out rows, used only for the final metrics.
        stratified: Whether the splits carved from one file were stratified by class.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    stratified: bool = False


def _carve(frame: pd.DataFrame, fraction: float, target: str, stratify: bool, seed: int, what: str):
    """Split ``fraction`` of ``frame`` off; returns ``(rest, carved, stratified)``."""
    n_carved = int(round(fraction * len(frame)))
    if n_carved < 1 or len(frame) - n_carved < 1:
        raise DataError(
            f"Cannot split {fraction:.3g} of {len(frame)} rows off as the {what} set: it would be "
            f"empty or leave nothing to train on. Change `data.split.{what}` or give a `data.{what}` file."
        )
    labels = frame[target] if stratify else None
    if labels is not None:
        counts = labels.value_counts()
        n_classes = len(counts)
        if counts.min() < 2 or n_carved < n_classes or len(frame) - n_carved < n_classes:
            labels = None  # too few rows of some class to stratify; fall back to a random split
    rest, carved = train_test_split(frame, test_size=n_carved, random_state=seed, stratify=labels)
    return rest, carved, labels is not None


def split_frame(
    frame: pd.DataFrame,
    target: str,
    task: str,
    valid_fraction: float,
    test_fraction: float,
    stratify: bool = True,
    seed: int = 42,
    test: pd.DataFrame | None = None,
    valid: pd.DataFrame | None = None,
) -> Splits:
    """Split ``frame`` into train/valid/test, unless valid/test tables are given.

    ``test_fraction`` and ``valid_fraction`` are fractions of ``frame`` (so the defaults 0.2
    and 0.15 give a 65/15/20 split). The test rows are carved first, then the valid rows from
    what remains. Splits are stratified by the target for classification when ``stratify``
    is true and every class has at least two rows (otherwise random). The same seed gives
    the same split.

    Args:
        frame: The training table (rows with a missing target already removed).
        target: Target column.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        valid_fraction: Fraction of ``frame`` for validation, used if ``valid`` is None.
        test_fraction: Fraction of ``frame`` for testing, used if ``test`` is None.
        stratify: Stratify classification splits by class.
        seed: Random seed of the split.
        test: A separate test table, if the config names one.
        valid: A separate validation table, if the config names one.

    Returns:
        :class:`Splits` with the original row index kept.

    Raises:
        DataError: If a split would be empty.
    """
    stratify = stratify and task in ("binary", "multiclass")
    stratified = False
    rest = frame
    if test is None:
        rest, test, stratified = _carve(rest, test_fraction, target, stratify, seed, "test")
    if valid is None:
        fraction_of_rest = valid_fraction * len(frame) / len(rest)
        rest, valid, carved_stratified = _carve(rest, fraction_of_rest, target, stratify, seed + 1, "valid")
        stratified = stratified or carved_stratified
    return Splits(train=rest, valid=valid, test=test, stratified=stratified)
