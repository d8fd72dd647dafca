"""Column type inference, task inference and splitting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabcli.data.schema import infer_schema, infer_task
from tabcli.data.split import split_frame
from tabcli.errors import DataError


def test_type_inference_rules(mixed_frame):
    schema = infer_schema(mixed_frame, target="target")
    assert schema.task == "binary"
    assert schema.classes == ["no", "yes"]
    assert schema.numerical == ["x1", "x2"]
    assert schema.categorical == ["color", "flag", "level"]  # strings, booleans, low-cardinality ints


def test_overrides_and_drop(mixed_frame):
    schema = infer_schema(mixed_frame, target="target", numerical=["level"], categorical=["x1"], drop=["flag"])
    assert schema.numerical == ["x2", "level"]
    assert schema.categorical == ["x1", "color"]
    assert "flag" in schema.dropped


def test_integer_threshold_is_configurable(mixed_frame):
    schema = infer_schema(mixed_frame, target="target", integer_categorical_max_unique=2)
    assert "level" in schema.numerical


def test_all_missing_column_is_dropped_with_reason(mixed_frame):
    mixed_frame["empty"] = np.nan
    schema = infer_schema(mixed_frame, target="target")
    assert schema.dropped["empty"] == "every value is missing"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": "income"}, r"target column 'income'.*Available columns"),
        ({"target": "target", "drop": ["nope"]}, r"data.drop.*nope"),
        ({"target": "target", "numerical": ["color"]}, r"non-numeric values"),
        ({"target": "target", "numerical": ["x1"], "categorical": ["x1"]}, r"both"),
        ({"target": "target", "task": "regression"}, r"numeric target"),
    ],
)
def test_schema_errors_name_the_problem(mixed_frame, kwargs, match):
    with pytest.raises(DataError, match=match):
        infer_schema(mixed_frame, **kwargs)


def test_date_columns_are_recognised_and_time_spans_refused(mixed_frame):
    mixed_frame["when"] = pd.date_range("2020-01-01", periods=len(mixed_frame))  # a Parquet-style datetime dtype
    mixed_frame["text_when"] = mixed_frame["when"].dt.strftime("%d/%m/%Y")
    schema = infer_schema(mixed_frame, target="target")
    assert schema.dates == ["when", "text_when"] and "when" not in schema.categorical
    assert infer_schema(mixed_frame, target="target", categorical=["text_when"]).dates == ["when"]
    mixed_frame["took"] = pd.to_timedelta(mixed_frame["x1"].abs(), unit="s")
    with pytest.raises(DataError, match="time spans"):
        infer_schema(mixed_frame, target="target")


@pytest.mark.parametrize(
    "values, task",
    [
        ([0.5, 1.7, 2.2, 3.9, 4.1] * 3, "regression"),
        ([0, 1, 1, 0], "binary"),
        ([True, False, True], "binary"),
        (["a", "b", "c", "a"], "multiclass"),
        ([1, 2, 3, 4, 5, 1], "multiclass"),
        (list(range(50)), "regression"),
        ([1.0, 2.0, 3.0, 1.0], "multiclass"),
    ],
)
def test_task_inference(values, task):
    assert infer_task(pd.Series(values, name="t"))[0] == task


def test_single_class_target_is_an_error():
    with pytest.raises(DataError, match="at least 2"):
        infer_task(pd.Series(["a", "a"], name="t"))


def _frame(n=1000, positive=0.1, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": (rng.random(n) < positive).astype(int)})


def test_split_sizes_disjoint_and_seeded():
    frame = _frame()
    a = split_frame(frame, "y", "binary", valid_fraction=0.15, test_fraction=0.2, seed=3)
    b = split_frame(frame, "y", "binary", valid_fraction=0.15, test_fraction=0.2, seed=3)
    c = split_frame(frame, "y", "binary", valid_fraction=0.15, test_fraction=0.2, seed=4)
    assert (len(a.train), len(a.valid), len(a.test)) == (650, 150, 200)
    ids = [set(a.train.index), set(a.valid.index), set(a.test.index)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert set().union(*ids) == set(frame.index)
    assert list(a.test.index) == list(b.test.index)
    assert list(a.test.index) != list(c.test.index)


def test_split_is_stratified_for_classification():
    frame = _frame(n=2000, positive=0.1)
    splits = split_frame(frame, "y", "binary", valid_fraction=0.15, test_fraction=0.2, seed=0)
    assert splits.stratified
    overall = frame["y"].mean()
    for part in (splits.train, splits.valid, splits.test):
        assert abs(part["y"].mean() - overall) < 0.005


def test_given_test_file_is_used_as_is():
    frame, test = _frame(), _frame(n=50, seed=9)
    splits = split_frame(frame, "y", "binary", valid_fraction=0.15, test_fraction=0.2, seed=0, test=test)
    assert splits.test is test
    assert len(splits.valid) == 150 and len(splits.train) == 850
