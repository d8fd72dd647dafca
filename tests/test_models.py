"""Model families built from a ModelSpec: outputs, batch independence, context stored with the model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tabcli.models.ensemble.config import EnsembleConfig
from tabcli.models.mlp.config import MLPConfig
from tabcli.models.registry import build_model
from tabcli.models.spec import ModelSpec
from tabcli.models.tabular_attention.config import TabularAttentionConfig
from tabcli.runs.attention import attention_model


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return {"numerical": rng.normal(size=(n, 3)).astype("float32"), "categorical": rng.integers(0, 4, (n, 2)).astype("int32")}


SPEC = ModelSpec(task="multiclass", numerical_names=["a", "b", "c"], categorical_names=["d", "e"], cardinalities=[4, 4], num_classes=3)


@pytest.mark.parametrize(
    "config",
    [TabularAttentionConfig(d_model=16, num_heads=2, inter_sample="context", context_rows=10), TabularAttentionConfig(d_model=8, num_heads=2, inter_sample="none", pooling="cls"), MLPConfig(hidden_units=[16])],
)
def test_probabilities_and_batch_independence(config):
    model = build_model(config, SPEC, _data(50, seed=1))
    rows = _data(40)
    full = model.predict(rows, batch_size=40, verbose=0)
    assert full.shape == (40, 3)
    np.testing.assert_allclose(full.sum(axis=1), 1.0, atol=1e-5)
    # A row's prediction must not depend on the rows that share its batch.
    singles = np.concatenate([model.predict({k: v[i : i + 1] for k, v in rows.items()}, verbose=0) for i in range(5)])
    np.testing.assert_allclose(singles, full[:5], atol=1e-5)
    perm = np.random.default_rng(0).permutation(40)
    shuffled = model.predict({k: v[perm] for k, v in rows.items()}, batch_size=7, verbose=0)
    np.testing.assert_allclose(shuffled, full[perm], atol=1e-5)


def test_context_rows_are_stored_and_used():
    context = _data(10, seed=2)
    model = build_model(TabularAttentionConfig(d_model=16, num_heads=2, inter_sample="context", context_rows=10, dropout_rate=0.0), SPEC, context)
    np.testing.assert_array_equal(model.get_layer("context_numerical").rows.numpy(), context["numerical"])
    np.testing.assert_array_equal(model.get_layer("context_categorical").rows.numpy(), context["categorical"])
    rows = _data(5)
    before = model.predict(rows, verbose=0)
    model.get_layer("context_numerical").set_rows(context["numerical"] + 5.0)
    assert np.abs(model.predict(rows, verbose=0) - before).max() > 1e-6  # inter-sample attention reads the context


def test_scores_from_predict_match_eager_call():
    model = build_model(TabularAttentionConfig(d_model=16, num_heads=2, inter_sample="context", context_rows=6, num_feature_blocks=1), SPEC, _data(6, seed=3))
    scores_model, names = attention_model(model)
    assert names == [("tabular_attention", "inter_feature_0"), ("tabular_attention", "inter_sample")]
    rows = _data(4)
    outputs = scores_model.predict(rows, verbose=0)
    np.testing.assert_allclose(outputs[0], model.predict(rows, verbose=0), atol=1e-6)
    assert outputs[1].shape == (4, 1, 2, 5, 5)
    assert outputs[2].shape == (4, 2, 1, 1 + 6)
    eager = scores_model(rows, training=False)
    np.testing.assert_allclose(outputs[1], np.asarray(eager[1]), atol=1e-6)


def test_context_sample_follows_the_training_batch_size():
    def layer_sample(config, batch_size):
        spec = ModelSpec(task="multiclass", numerical_names=["a", "b", "c"], categorical_names=["d", "e"],
                         cardinalities=[4, 4], num_classes=3, batch_size=batch_size)
        model = build_model(config, spec, _data(64, seed=2))
        return next(l for l in model.layers if l.name.endswith("tabular_attention")).context_sample

    auto = TabularAttentionConfig(d_model=8, num_heads=2, inter_sample="context", context_rows=64)
    assert layer_sample(auto, 32) == 16  # half the batch
    assert layer_sample(auto, 256) is None  # half the batch would be >= the 64 rows: all of them
    assert layer_sample(auto, None) is None
    assert layer_sample(auto.model_copy(update={"context_sample": "all"}), 32) is None
    assert layer_sample(auto.model_copy(update={"context_sample": 8}), 256) == 8
    ensemble = EnsembleConfig(branches=[TabularAttentionConfig(d_model=8, num_heads=2, inter_sample="context"), MLPConfig(hidden_units=[8])])
    assert layer_sample(ensemble, 32) == 16


def test_single_column_kind_and_regression():
    spec = ModelSpec(task="regression", numerical_names=["a", "b"], categorical_names=[], cardinalities=[])
    model = build_model(TabularAttentionConfig(d_model=8, num_heads=2, inter_sample="context", context_rows=4), spec, {"numerical": np.zeros((4, 2), "float32")})
    assert model.predict({"numerical": np.ones((3, 2), "float32")}, verbose=0).shape == (3, 1)
    spec = ModelSpec(task="binary", numerical_names=[], categorical_names=["c"], cardinalities=[5])
    model = build_model(MLPConfig(hidden_units=[8]), spec)
    out = model.predict({"categorical": np.array([[1], [4]], "int32")}, verbose=0)
    assert out.shape == (2, 1) and ((out > 0) & (out < 1)).all()


@pytest.mark.parametrize(
    "config",
    [
        TabularAttentionConfig(d_model=8, num_heads=2, inter_sample="context", context_rows=5, numerical_embedding="periodic", periodic_frequencies=4),
        MLPConfig(hidden_units=[8]),
    ],
)
def test_saved_model_round_trip(config, tmp_path):
    model = build_model(config, SPEC, _data(5, seed=4))
    rows = _data(6)
    expected = model.predict(rows, verbose=0)
    model.save(tmp_path / "model.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "model.keras").predict(rows, verbose=0), expected, atol=1e-6)
