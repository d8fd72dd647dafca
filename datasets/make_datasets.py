"""Regenerate the example tables in ``datasets/`` from packages on PyPI.

Run from the repository root::

    python datasets/make_datasets.py                       # palmerpenguins installed
    python datasets/make_datasets.py --penguins-wheel W.whl  # or read the wheel directly

Outputs (written next to this script):

``penguins.csv``
    ``palmerpenguins/data/penguins.csv`` from the PyPI package ``palmerpenguins``
    (0.1.6), unchanged except that the ``NA`` markers become empty cells.  The
    package is only needed for its data file (it is never imported), so either
    ``pip install palmerpenguins==0.1.6`` or fetch the wheel without installing
    it (``pip download --no-deps palmerpenguins==0.1.6 -d /tmp``) and pass it
    with ``--penguins-wheel``.
``breast_cancer.parquet``
    ``sklearn.datasets.load_breast_cancer``: the 30 features with spaces in
    their names replaced by underscores, plus ``diagnosis`` ("malignant" /
    "benign", from ``target_names``).  Written with pyarrow, zstd level 19,
    no index.
``diabetes.tsv``
    ``sklearn.datasets.load_diabetes(scaled=False)``: the original, unscaled
    values; ``target`` renamed to ``progression``.  Columns whose values are
    all whole numbers (age, sex, s1, s6, progression) are written as integers,
    as in scikit-learn's raw file.  Tab-separated, no index.

The files are byte-identical when regenerated with the same versions of
palmerpenguins (0.1.6), scikit-learn (1.9.1), pandas (3.1.1) and pyarrow
(26.0.1); other versions may change the bytes (e.g. the Parquet "created_by"
field) but not the values.  Needs pandas, pyarrow and scikit-learn.
"""

import argparse
import csv
import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_breast_cancer, load_diabetes

OUT = Path(__file__).resolve().parent
PENGUINS_MEMBER = "palmerpenguins/data/penguins.csv"
PENGUINS_COLUMNS = ["species", "island", "bill_length_mm", "bill_depth_mm",
                    "flipper_length_mm", "body_mass_g", "sex", "year"]


def penguins_source(wheel):
    """Return the text of penguins.csv, from a wheel file or the installed package."""
    if wheel:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(PENGUINS_MEMBER).decode("utf-8"), Path(wheel).name
    if importlib.util.find_spec("palmerpenguins") is None:
        raise SystemExit("palmerpenguins is not installed: pip install palmerpenguins==0.1.6, "
                         "or pass --penguins-wheel (see the docstring)")
    data = importlib.resources.files("palmerpenguins").joinpath("data/penguins.csv")
    version = importlib.metadata.version("palmerpenguins")
    return data.read_text(encoding="utf-8"), f"palmerpenguins {version}"


def make_penguins(wheel):
    text, origin = penguins_source(wheel)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == PENGUINS_COLUMNS and len(rows) == 345, "unexpected penguins.csv"
    path = OUT / "penguins.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        # Only the "NA" missing-value markers change; every other cell is copied as is.
        csv.writer(f, lineterminator="\n").writerows(
            [["" if cell == "NA" else cell for cell in row] for row in rows])
    return path, origin


def make_breast_cancer():
    bunch = load_breast_cancer(as_frame=True)
    columns = {name.replace(" ", "_"): pa.array(bunch.data[name].to_numpy(), pa.float64())
               for name in bunch.data.columns}
    columns["diagnosis"] = pa.array(bunch.target_names[bunch.target.to_numpy()].tolist(),
                                    pa.string())
    path = OUT / "breast_cancer.parquet"
    # zstd 19 without dictionary encoding of the floats keeps the file under 100 KB.
    pq.write_table(pa.table(columns), path, compression="zstd", compression_level=19,
                   use_dictionary=["diagnosis"])
    return path


def make_diabetes():
    df = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    for col in ["age", "sex", "s1", "s6", "progression"]:
        assert np.all(df[col] % 1 == 0), col
        df[col] = df[col].astype("int64")
    path = OUT / "diabetes.tsv"
    df.to_csv(path, sep="\t", index=False, lineterminator="\n")
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--penguins-wheel", help="palmerpenguins wheel to read instead of "
                        "the installed package")
    args = parser.parse_args()
    penguins, origin = make_penguins(args.penguins_wheel)
    print(f"penguins from {origin}; scikit-learn {importlib.metadata.version('scikit-learn')}")
    for path in [penguins, make_breast_cancer(), make_diabetes()]:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{digest}  {path.name} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
