"""InterpretableMultiHeadAttention: TFT maths, shapes, masks, dropout, scores in models, serialisation."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import tabcli  # noqa: F401  (registers the layers)
from tabcli.layers.interpretable_attention import InterpretableMultiHeadAttention


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize(
    "batch, tq, tk, d_q, d_kv, n_head, d_model",
    [(2, 3, 3, 4, 4, 2, 8), (1, 2, 5, 3, 6, 4, 8), (3, 6, 1, 5, 2, 1, 4)],
)
def test_shapes_and_scores(batch, tq, tk, d_q, d_kv, n_head, d_model):
    layer = InterpretableMultiHeadAttention(d_model, n_head, dropout_rate=0.0)
    query, key, value = _rand(batch, tq, d_q), _rand(batch, tk, d_kv, seed=1), _rand(batch, tk, d_kv, seed=2)
    out, scores = layer(query, key, value, return_attention_scores=True)
    assert out.shape == (batch, tq, d_model)
    assert scores.shape == (batch, n_head, tq, tk)
    np.testing.assert_allclose(np.asarray(scores).sum(-1), 1.0, atol=1e-5)
    assert isinstance(layer.attention_scores, np.ndarray)
    np.testing.assert_array_equal(layer.attention_scores, np.asarray(scores))
    assert layer(query, key, value).shape == (batch, tq, d_model)


def test_matches_the_tft_formula():
    """Per-head query/key projections, one shared value projection, heads averaged, then W_H."""
    layer = InterpretableMultiHeadAttention(d_model=6, n_head=3, dropout_rate=0.0)
    query, memory = _rand(2, 4, 5), _rand(2, 3, 7, seed=1)
    out, scores = layer(query, memory, return_attention_scores=True)  # value defaults to key
    assert layer.value_dense.kernel.shape == (7, 2)  # head_dim = 6 / 3, one projection for all heads
    assert layer.output_dense.kernel.shape == (2, 6)
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = (
        [np.asarray(w) for w in sub.weights]
        for sub in (layer.query_dense, layer.key_dense, layer.value_dense, layer.output_dense)
    )
    q = np.einsum("btd,dhk->bthk", query, wq) + bq
    k = np.einsum("btd,dhk->bthk", memory, wk) + bk
    v = memory @ wv + bv
    expected_scores = _softmax(np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(2.0))
    heads = np.einsum("bhqk,bkd->bhqd", expected_scores, v)  # every head uses the same v
    expected = heads.mean(axis=1) @ wo + bo
    np.testing.assert_allclose(np.asarray(scores), expected_scores, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)


def test_key_and_value_default_to_query():
    layer = InterpretableMultiHeadAttention(8, 2, dropout_rate=0.0)
    x = _rand(2, 4, 3)
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(layer(x, x, x)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer(x, x)), np.asarray(layer(x, x, x)), atol=1e-6)


def test_self_attention_is_permutation_equivariant():
    layer = InterpretableMultiHeadAttention(8, 4, dropout_rate=0.0)
    x = _rand(2, 5, 3)
    perm = np.array([3, 0, 4, 1, 2])
    out, scores = (np.asarray(t) for t in layer(x, return_attention_scores=True))
    out_p, scores_p = (np.asarray(t) for t in layer(x[:, perm], return_attention_scores=True))
    np.testing.assert_allclose(out_p, out[:, perm], atol=1e-5)
    np.testing.assert_allclose(scores_p, scores[:, :, perm][:, :, :, perm], atol=1e-5)


@pytest.mark.parametrize("full_mask", [False, True])
def test_masked_keys_get_zero_probability_and_no_influence(full_mask):
    layer = InterpretableMultiHeadAttention(8, 2, dropout_rate=0.0)
    query, key = _rand(2, 3, 4), _rand(2, 5, 4, seed=1)
    keep = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 0]], dtype=bool)  # (batch, Tk)
    mask = np.broadcast_to(keep[:, None, :], (2, 3, 5)).copy() if full_mask else keep
    out, scores = layer(query, key, attention_mask=mask, return_attention_scores=True)
    scores = np.asarray(scores)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    masked = np.broadcast_to(~keep[:, None, None, :], scores.shape)
    assert scores[masked].max() < 1e-6
    changed = key.copy()
    changed[~keep] += 10.0  # change only masked keys (which are also the values)
    out_changed = layer(query, changed, attention_mask=mask)
    np.testing.assert_allclose(np.asarray(out_changed), np.asarray(out), atol=1e-5)


def test_fully_masked_query_row_attends_uniformly_without_nan():
    layer = InterpretableMultiHeadAttention(4, 2, dropout_rate=0.0)
    mask = np.ones((1, 2, 3), dtype=bool)
    mask[0, 1] = False  # second query: no key allowed
    query, key = _rand(1, 2, 4), _rand(1, 3, 4, seed=1)
    out, scores = layer(query, key, attention_mask=mask, return_attention_scores=True)
    assert np.isfinite(np.asarray(out)).all()
    np.testing.assert_allclose(np.asarray(scores)[0, :, 1], 1.0 / 3.0, atol=1e-6)


def test_dropout_only_in_training():
    layer = InterpretableMultiHeadAttention(8, 2, dropout_rate=0.5)
    x = _rand(4, 6, 3)
    inference = [np.asarray(layer(x, training=False)) for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    np.testing.assert_array_equal(np.asarray(layer(x)), inference[0])  # default is inference
    out, scores = layer(x, training=True, return_attention_scores=True)
    assert np.abs(np.asarray(out) - inference[0]).max() > 1e-3
    np.testing.assert_allclose(np.asarray(scores).sum(-1), 1.0, atol=1e-5)  # scores are pre-dropout
    no_dropout = InterpretableMultiHeadAttention(8, 2, dropout_rate=0.0)
    np.testing.assert_array_equal(np.asarray(no_dropout(x, training=True)), np.asarray(no_dropout(x)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"d_model": 30, "n_head": 4}, r"divisible by n_head.*received d_model=30, n_head=4"),
        ({"d_model": 2, "n_head": 4}, "divisible by n_head"),  # d_model / n_head < 1
        ({"d_model": 0, "n_head": 1}, "d_model must be a positive integer"),
        ({"d_model": 8, "n_head": 0}, "n_head must be a positive integer"),
        ({"d_model": 8, "n_head": 2, "dropout_rate": 1.0}, r"dropout_rate must be in \[0, 1\)"),
        ({"d_model": 8, "n_head": 2, "dropout_rate": -0.1}, r"dropout_rate must be in \[0, 1\)"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InterpretableMultiHeadAttention(**kwargs)


def test_input_errors():
    with pytest.raises(ValueError, match=r"rank 3.*received query shape \(2, 3\)"):
        InterpretableMultiHeadAttention(4, 2)(_rand(2, 3))
    with pytest.raises(ValueError, match=r"key shape \(2, 4, 3\) and value shape \(2, 5, 3\)"):
        InterpretableMultiHeadAttention(4, 2)(_rand(2, 3, 3), _rand(2, 4, 3), _rand(2, 5, 3))
    query, key = _rand(2, 3, 3), _rand(2, 4, 3)
    with pytest.raises(ValueError, match=r"attention_mask must have shape .*received shape \(2, 1, 3, 4\)"):
        InterpretableMultiHeadAttention(4, 2)(query, key, attention_mask=np.ones((2, 1, 3, 4), bool))
    with pytest.raises(ValueError, match=r"received shape \(2, 5\) for Tq=3, Tk=4"):
        InterpretableMultiHeadAttention(4, 2)(query, key, attention_mask=np.ones((2, 5), bool))


def test_config_round_trip_with_initializer_objects():
    layer = InterpretableMultiHeadAttention(
        8, 2, dropout_rate=0.0, use_bias=False,
        kernel_initializer=keras.initializers.HeNormal(seed=1), bias_initializer=keras.initializers.Constant(0.5),
    )
    config = layer.get_config()
    json.dumps(config)
    clone = InterpretableMultiHeadAttention.from_config(config)
    assert clone.get_config() == config
    assert isinstance(clone.kernel_initializer, keras.initializers.HeNormal)
    assert clone.dropout_rate == 0.0 and clone.use_bias is False
    clone(_rand(1, 2, 3))
    assert all(w.name != "bias" for w in clone.weights)


def _model_with_scores(layer):
    inp = keras.Input((4, 3))
    mask = keras.Input((4,), dtype="bool")
    out, scores = layer(inp, attention_mask=mask, return_attention_scores=True)
    return keras.Model([inp, mask], [keras.layers.Dense(1)(out), scores])


def test_predicted_scores_equal_eager_scores_and_attribute_stays_concrete():
    layer = InterpretableMultiHeadAttention(8, 2, dropout_rate=0.1, name="imha")
    model = _model_with_scores(layer)
    assert layer.attention_scores is None  # symbolic call: nothing concrete to keep
    x = _rand(5, 4, 3)
    mask = np.ones((5, 4), bool)
    mask[:, 3] = False
    _, predicted = model.predict([x, mask], verbose=0)
    assert predicted.shape == (5, 2, 4, 4) and np.isfinite(predicted).all()
    layer(x, attention_mask=mask)  # eager call on the same data
    eager = layer.attention_scores
    np.testing.assert_allclose(predicted, eager, atol=1e-6)
    model.predict([x[:2], mask[:2]], verbose=0)  # traced call: keeps the last eager value
    _model_with_scores(layer)
    assert not isinstance(layer.attention_scores, keras.KerasTensor)
    np.testing.assert_array_equal(layer.attention_scores, eager)


def test_attention_score_names_match_returned_scores():
    layer = InterpretableMultiHeadAttention(4, 2)
    _, scores = layer(_rand(1, 2, 3), return_attention_scores=True)
    assert layer.attention_score_names() == ["attention"]
    assert len(keras.tree.flatten(scores)) == len(layer.attention_score_names())


def test_keras_round_trip_inside_a_model(tmp_path):
    model = _model_with_scores(
        InterpretableMultiHeadAttention(8, 2, kernel_initializer=keras.initializers.HeNormal(seed=1), name="imha")
    )
    data = [_rand(6, 4, 3, seed=3), np.random.default_rng(0).random((6, 4)) > 0.3]
    expected = model.predict(data, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.get_layer("imha"), InterpretableMultiHeadAttention)
    for got, want in zip(loaded.predict(data, verbose=0), expected):
        np.testing.assert_allclose(got, want, atol=1e-6)
