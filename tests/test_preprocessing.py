"""Preprocessing: fitted on training rows only, codes for unseen/rare/missing categories, target encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabcli.data.preprocessing import TabularPreprocessor
from tabcli.data.schema import infer_schema
from tabcli.errors import DataError


def _fit(frame, **kwargs):
    schema = infer_schema(frame, target="target")
    return TabularPreprocessor(schema, **kwargs).fit(frame)


def test_output_layout(mixed_frame):
    prep = _fit(mixed_frame)
    out = prep.transform(mixed_frame)
    assert prep.numerical_names == ["x1", "x2", "x2 (missing)"]
    assert prep.categorical_names == ["color", "flag", "level"]
    assert out["numerical"].shape == (300, 3) and out["numerical"].dtype == np.float32
    assert out["categorical"].shape == (300, 3) and out["categorical"].dtype == np.int32
    # quantile-normal numerics: roughly standard normal on the training rows
    assert abs(out["numerical"][:, 0].mean()) < 0.1 and 0.8 < out["numerical"][:, 0].std() < 1.2
    # missing indicator is exactly the missingness of x2
    np.testing.assert_array_equal(out["numerical"][:, 2], mixed_frame["x2"].isna().to_numpy())
    assert not np.isnan(out["numerical"]).any()
    # code 0 is reserved for unseen categories, so fitted codes start at 1
    assert out["categorical"].min() >= 1
    for column, cardinality in enumerate(prep.cardinalities):
        assert out["categorical"][:, column].max() < cardinality


def test_no_leakage_from_rows_outside_training(mixed_frame):
    train, other = mixed_frame.iloc[:200], mixed_frame.iloc[200:].copy()
    prep_a = _fit(train)
    # Wildly different valid/test rows must not change what was fitted on train.
    other["x1"] = other["x1"] * 1000 + 50
    other["color"] = "purple"
    prep_b = _fit(train)
    np.testing.assert_array_equal(prep_a.transform(train)["numerical"], prep_b.transform(train)["numerical"])
    transformed = prep_a.transform(other)
    assert (transformed["categorical"][:, 0] == 0).all()  # 'purple' was never seen: the unseen code
    # Fitting on train + other would change the transform of the train rows.
    prep_c = _fit(pd.concat([train, other]))
    assert not np.allclose(prep_a.transform(train)["numerical"][:, 0], prep_c.transform(train)["numerical"][:, 0])


def test_missing_and_rare_categories_get_their_own_codes(mixed_frame):
    frame = mixed_frame.copy()
    frame.loc[frame.index[:3], "color"] = "violet"  # 3 < rare_min_count=5: rare
    prep = _fit(frame, rare_min_count=5)
    codes = prep.transform(frame)["categorical"][:, 0]
    missing_code = set(codes[frame["color"].isna().to_numpy()])
    rare_code = set(codes[:3])
    common_codes = set(codes[frame["color"].isin(["red", "green", "blue"]).to_numpy()])
    assert len(missing_code) == 1 and len(rare_code) == 1
    assert missing_code.isdisjoint(common_codes) and rare_code.isdisjoint(common_codes)
    assert missing_code != rare_code and 0 not in missing_code | rare_code
    assert prep.cardinalities[0] == 1 + 3 + 1 + 1  # unseen + red/green/blue + missing + rare


def test_integer_like_floats_match_integer_categories():
    train = pd.DataFrame({"year": [2007, 2008, 2009] * 10, "target": [0, 1] * 15})
    test = pd.DataFrame({"year": [2007.0, 2009.0, np.nan]})
    schema = infer_schema(train, target="target")
    prep = TabularPreprocessor(schema, rare_min_count=1).fit(train)
    a = prep.transform(train.iloc[[0, 2]])["categorical"][:, 0]
    b = prep.transform(test)["categorical"][:, 0]
    np.testing.assert_array_equal(a, b[:2])
    assert b[2] == 0  # missing never seen in training: treated as unseen


def test_regression_target_standardised_and_decoded():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=100), "target": rng.normal(loc=500, scale=80, size=100)})
    prep = _fit(frame)
    encoded = prep.encode_target(frame["target"])
    assert abs(encoded.mean()) < 1e-5 and abs(encoded.std() - 1) < 1e-3
    np.testing.assert_allclose(prep.decode_regression(encoded), frame["target"], rtol=1e-5)


def test_class_targets_and_unknown_class(mixed_frame):
    prep = _fit(mixed_frame)
    codes = prep.encode_target(mixed_frame["target"])
    np.testing.assert_array_equal(codes, (mixed_frame["target"] == "yes").astype(int))
    with pytest.raises(DataError, match="not seen among the training classes"):
        prep.encode_target(pd.Series(["maybe"]))


def test_missing_feature_column_and_text_in_numbers(mixed_frame):
    prep = _fit(mixed_frame)
    with pytest.raises(DataError, match=r"\['x1'\].*missing"):
        prep.transform(mixed_frame.drop(columns=["x1"]))
    bad = mixed_frame.copy()
    bad["x2"] = bad["x2"].astype(object)
    bad.loc[bad.index[0], "x2"] = "?"
    with pytest.raises(DataError, match="na_values"):
        prep.transform(bad)


def _records(frame: pd.DataFrame, columns) -> list[dict]:
    return [{c: (None if isinstance(v, float) and np.isnan(v) else v) for c, v in row.items()}
            for row in frame[columns].to_dict("records")]


def _hard_cases(mixed_frame):
    """A training table with a rare category and a run of equal values (repeated quantiles), and
    rows with infinite, far out-of-range, missing, unseen and rare values."""
    frame = mixed_frame.copy()
    frame.loc[frame.index[:3], "color"] = "violet"  # rare when rare_min_count=5
    frame.loc[frame.index[3:60], "x1"] = 0.25  # a run of equal values: repeated quantiles
    odd = pd.DataFrame({
        "x1": [np.inf, -np.inf, 1e12, -1e12, 0.25, frame["x1"].min(), frame["x1"].max(), np.nan],
        "x2": [np.nan, 0.0, 5.0, 1e9, -3.0, np.inf, 2.5, 7.0],
        "color": ["purple", None, "violet", "red", "blue", "green", np.nan, "red"],
        "flag": [True, False, None, True, False, True, False, True],
        "level": [1, 2.0, 3, 99, None, 1, 2, 3],
    })
    return frame, odd


@pytest.mark.parametrize("rare_min_count", [1, 5])
def test_record_encoder_gives_the_arrays_of_transform(mixed_frame, rare_min_count):
    from tabcli.data.record_encoder import RecordEncoder

    frame, odd = _hard_cases(mixed_frame)
    prep = _fit(frame, rare_min_count=rare_min_count, n_quantiles=50)
    encoder = RecordEncoder(prep)
    features = prep.schema.features
    for table in (frame, odd):
        expected = prep.transform(table)
        got = encoder.encode(_records(table, features))
        assert set(got) == set(expected)
        np.testing.assert_allclose(got["numerical"], expected["numerical"], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(got["categorical"], expected["categorical"])
        assert got["numerical"].dtype == np.float32 and got["categorical"].dtype == np.int32
    # the odd rows reach every code path: unseen (0), missing, rare, clipped tails, inf as missing
    codes = encoder.encode(_records(odd, features))["categorical"]
    assert codes[0, 0] == 0 and codes[3, 2] == 0 and codes[1, 0] == codes[6, 0] != 0
    numerical = encoder.encode(_records(odd, features))["numerical"]
    assert numerical[2, 0] > 5 and numerical[3, 0] < -5 and numerical[5, 1] == numerical[0, 1]


def test_record_encoder_refuses_date_columns():
    from tabcli.data.record_encoder import RecordEncoder

    frame = pd.DataFrame({"when": pd.date_range("2020-01-01", periods=40).astype(str), "x": np.arange(40.0),
                          "target": [0, 1] * 20})
    prep = TabularPreprocessor(infer_schema(frame, target="target", dates=["when"])).fit(frame)
    assert not RecordEncoder.supports(prep)
    with pytest.raises(ValueError, match="date columns"):
        RecordEncoder(prep)


def test_a_large_training_table_fits_the_preprocessing_on_a_seeded_sample():
    from conftest import DATASETS
    from tabcli.config.experiment import DataConfig
    from tabcli.data.prepare import fitting_rows, prepare_data

    def fitted(prepared):
        steps = prepared.preprocessor.transformer_.named_transformers_["numerical"].named_steps
        return steps["quantile"].quantiles_, steps["impute"].statistics_

    config = DataConfig(train=DATASETS / "penguins.csv", target="species", preprocessing_sample_rows=50)
    sampled, again = prepare_data(config, seed=7), prepare_data(config, seed=7)
    full = prepare_data(config.model_copy(update={"preprocessing_sample_rows": None}), seed=7)
    train = sampled.splits.train
    assert any("random sample of 50 of the 223 training rows" in note for note in sampled.schema.notes)
    sample = fitting_rows(train, 50, seed=7)
    assert len(sample) == 50 and sample.index.isin(train.index).all() and sample.index.is_unique
    numerical = sampled.preprocessor.schema.numerical
    np.testing.assert_allclose(fitted(sampled)[1], sample[numerical].median())  # medians of the sample ...
    assert not np.allclose(fitted(sampled)[1], fitted(full)[1])  # ... not of every training row
    assert fitted(sampled)[0].shape[0] == 50 and fitted(full)[0].shape[0] == 223
    for mine, theirs in zip(fitted(sampled), fitted(again)):
        np.testing.assert_array_equal(mine, theirs)
    assert sampled.preprocessor.cardinalities == again.preprocessor.cardinalities
    assert sampled.inputs["train"]["numerical"].shape[0] == len(train)  # applied to every row
    assert not any("random sample" in note for note in full.schema.notes)


@pytest.mark.parametrize("portable", [False, True])
def test_graph_preprocessing_gives_the_arrays_of_transform(mixed_frame, portable):
    """The preprocessing inside exported models (TensorFlow operations, and the ONNX-compatible
    ones) equals ``transform`` on missing, infinite, unseen, rare and out-of-range values."""
    import tensorflow as tf

    from tabcli.data.preprocessing import _category_string
    from tabcli.export.preprocessing_graph import GraphPreprocessing

    frame, odd = _hard_cases(mixed_frame)
    odd.loc[odd.index[-1], "color"] = "?"  # one of data.na_values: missing
    prep = _fit(frame, rare_min_count=5, n_quantiles=50)
    graph = GraphPreprocessing(prep, na_values=["?"], portable=portable)
    for table in (frame, odd):
        columns = {c: tf.constant(pd.to_numeric(table[c]).to_numpy(np.float64)) for c in prep.schema.numerical}
        columns.update({c: tf.constant(["" if (v := _category_string(x)) is np.nan else v for x in table[c]])
                        for c in prep.schema.categorical})
        got = {k: v.numpy() for k, v in graph(columns).items()}
        expected = prep.transform(table.replace({"color": {"?": np.nan}}))
        np.testing.assert_allclose(got["numerical"], expected["numerical"], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(got["categorical"], expected["categorical"])


def test_ndtri_from_elementary_operations_matches_scipy():
    import tensorflow as tf
    from scipy.special import ndtri as scipy_ndtri

    from tabcli.export.normal import ndtri

    p = np.concatenate([np.linspace(0, 1, 20001), [1e-300, 1e-20, 1e-7, 1 - 1e-7, 0.075, 0.925]])
    got, want = ndtri(tf.constant(p, tf.float64)).numpy(), scipy_ndtri(p)
    finite = np.isfinite(want)
    assert np.max(np.abs(got[finite] - want[finite])) < 1e-13
    np.testing.assert_array_equal(got[~finite], want[~finite])  # -inf at 0, inf at 1
