"""Rows given in memory are read by the training file's rules (tabcli.data.conform)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabcli.data.conform import check_known_columns, conform_frame, is_missing_text
from tabcli.data.schema import TableSchema
from tabcli.errors import DataError

SCHEMA = TableSchema(target="churn", task="binary", numerical=["tenure", "charges"], categorical=["contract"],
                     classes=["no", "yes"], dropped={"customer_id": "listed in data.drop"})


def test_blank_and_marker_cells_are_missing_and_numbers_as_text_are_kept():
    frame = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "tenure": [1, 2, 3, 4],
                          "charges": ["10.5", " ", "", "?"], "contract": ["month", "  ", "?", "year"],
                          "churn": ["no", "yes", "no", "no"]})
    read = conform_frame(frame, SCHEMA, na_values=["?"])
    assert read["charges"].tolist()[0] == "10.5" and read["charges"].isna().tolist() == [False, True, True, True]
    assert read["contract"].isna().tolist() == [False, True, True, False]
    assert frame["charges"].tolist() == ["10.5", " ", "", "?"]  # the caller's frame is left as it was
    numbers = frame.assign(charges=[1.0, 2.0, np.nan, 4.0], contract="month")
    assert conform_frame(numbers, SCHEMA, ["?"]) is numbers  # nothing to read differently: no copy
    assert is_missing_text("  ") and is_missing_text(" ? ", ["?"]) and not is_missing_text(0.0) and not is_missing_text("x")


def test_a_column_the_training_table_did_not_have_is_refused_by_name():
    frame = pd.DataFrame({"tenure": [1], "charges": [2.0], "contract": ["month"], "colour": ["blue"], "churn": ["no"]})
    with pytest.raises(DataError, match=r"The request has column\(s\) \['colour'\]") as error:
        conform_frame(frame, SCHEMA, what="the request")
    assert "customer_id" in str(error.value) and "'churn'" in str(error.value)
    check_known_columns(["tenure", "colour"], SCHEMA, "the file", extra=["colour"])  # an id column passed on purpose
    check_known_columns(["tenure", "__index_level_0__"], SCHEMA, "the file")  # the index pandas writes to Parquet
    conform_frame(frame.rename(columns={"colour": "customer_id"}), SCHEMA)  # the ignored column and the target


def test_a_table_reads_the_same_from_csv_and_parquet(tmp_path):
    """Blank and space-only cells and data.na_values are missing in either format, as the rows
    given in memory are read (conform_frame)."""
    from tabcli.data.io import read_table

    frame = pd.DataFrame({"charges": ["1.5", " ", "?", "2"], "contract": ["month", "", "  ", "year"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    csv, parquet = read_table(tmp_path / "t.csv", ["?"]), read_table(tmp_path / "t.parquet", ["?"])
    assert csv["charges"].isna().tolist() == parquet["charges"].isna().tolist() == [False, True, True, False]
    assert csv["contract"].isna().tolist() == parquet["contract"].isna().tolist() == [False, True, True, False]
