"""``tabcli predict``: predictions of a trained run for an (unlabelled) file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabcli.data.io import read_table
from tabcli.data.schema import infinite_value_notes
from tabcli.errors import ConfigError, DataError
from tabcli.predictions import prediction_table
from tabcli.runs.loader import LoadedRun
from tabcli.runs.run_dir import write_atomic

__all__ = ["predict_file", "OUTPUT_FORMATS"]

OUTPUT_FORMATS = (".csv", ".parquet")


def predict_file(
    run_dir: str | Path, data: str | Path, output: str | Path, id_column: str | None = None, overwrite: bool = False,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """Predict every row of ``data`` with a trained run and write the predictions.

    The output has one row per input row, in input order: the ``id_column`` (if given),
    ``prediction`` (class label or value in the target's units) and, for classification, one
    ``proba_<class>`` column per class. The target column may be absent. Unseen categories
    and missing values are handled as in training.

    Args:
        run_dir: A completed run directory.
        data: CSV/TSV/Parquet file with the training feature columns.
        output: ``.csv`` or ``.parquet`` file to write.
        id_column: A column of ``data`` copied to the output (e.g. a customer id).
        overwrite: Replace ``output`` if it exists.
        notes: If given, remarks for the user are appended to it (e.g. infinite values read
            as missing).

    Returns:
        The predictions table.

    Raises:
        ConfigError: For an unsupported output extension, an existing output without
            ``overwrite``, or an output path equal to the input.
        DataError: For missing feature columns, a numerical column holding text, or an
            unknown ``id_column``.
    """
    output, data = Path(output), Path(data)
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"--output must end in {' or '.join(OUTPUT_FORMATS)}; received '{output}'.")
    if output.exists() and output.resolve() == data.resolve():
        raise ConfigError(f"--output '{output}' is the input file; choose another path so the data is not overwritten.")
    if output.exists() and not overwrite:
        raise ConfigError(f"'{output}' already exists; pass --overwrite to replace it, or choose another --output.")
    run = LoadedRun(run_dir)
    frame = read_table(data, run.config.data.na_values, role="input", sep=run.config.data.sep, encoding=run.config.data.encoding)
    if id_column is not None and id_column not in frame.columns:
        raise DataError(f"--id-column '{id_column}' is not a column of '{data}'. Available columns: {list(frame.columns)}.")
    if notes is not None:
        notes.extend(infinite_value_notes(frame, run.schema.numerical, f"'{data}'"))
    raw = run.predict_raw(frame, what=f"'{data}'")
    table = prediction_table(run.preprocessor, raw)
    if id_column is not None:
        table.insert(0, id_column, frame[id_column].to_numpy())
    if output.suffix.lower() == ".parquet":
        write_atomic(output, lambda tmp: table.to_parquet(tmp, index=False))
    else:
        write_atomic(output, lambda tmp: table.to_csv(tmp, index=False))
    return table
