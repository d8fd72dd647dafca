"""Seeded train/valid/test split, stratified by class for classification tasks."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sklearn.model_selection import train_test_split

from tabcli.errors import DataError

__all__ = ["Splits", "split_frame", "SMALL_TABLE_ROWS"]

#: Below this many rows, a note says that metrics on the resulting splits are unreliable.
SMALL_TABLE_ROWS = 100


@dataclass
class Splits:
    """The three tables of an experiment, each keeping the original row index.

    Attributes:
        train: Rows the model and the preprocessing are fitted on.
        valid: Rows used for early stopping.
        test: Held-out rows, used only for the final metrics.
        stratified: Whether the splits carved from one file were stratified by class.
        notes: Remarks for the user (classes kept in training, very small splits).
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    stratified: bool = False
    notes: list = field(default_factory=list)


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
    is true and every class has at least two rows (otherwise random). The rows of a class
    with a single row stay in training. The same seed gives the same split.

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
    classification = task in ("binary", "multiclass")
    stratify = stratify and classification
    stratified = False
    rest, notes = frame, []
    held = frame.iloc[:0]
    if classification and (test is None or valid is None):
        # A class with one row would otherwise land in valid or test by chance and leave the
        # model trained without it; such rows always stay in training.
        counts = frame[target].value_counts()
        lone = counts.index[counts < 2].tolist()
        if lone:
            held = frame[frame[target].isin(lone)]
            rest = frame[~frame[target].isin(lone)]
            notes.append(
                f"Class(es) {[str(c) for c in lone[:10]]} of '{target}' have a single row; it is kept in the "
                "training split, so validation and test metrics do not measure those classes."
            )
    if test is None:
        rest, test, stratified = _carve(rest, test_fraction, target, stratify, seed, "test")
    if valid is None:
        fraction_of_rest = min(valid_fraction * len(frame) / max(1, len(rest)), 0.999)
        rest, valid, carved_stratified = _carve(rest, fraction_of_rest, target, stratify, seed + 1, "valid")
        stratified = stratified or carved_stratified
    train = pd.concat([rest, held]) if len(held) else rest
    if len(frame) < SMALL_TABLE_ROWS:
        notes.append(
            f"The table has only {len(frame)} rows: {len(train)} train, {len(valid)} valid, {len(test)} test. "
            f"Metrics on so few rows change a lot with the seed; use {SMALL_TABLE_ROWS}+ rows, or compare "
            "several seeds (`tabcli batch --repeat`)."
        )
    return Splits(train=train, valid=valid, test=test, stratified=stratified, notes=notes)
