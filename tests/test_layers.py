"""TabularAttention and the tokenizer layers: shapes, scores, equivariance, dropout, serialisation."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import tabcli  # noqa: F401  (registers the layers)
from tabcli.layers import CategoricalEmbedding, ContextRows, NumericalEmbedding, TabularAttention


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize("batch, samples, features", [(2, 1, 3), (4, 5, 7), (1, 9, 2)])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_shapes_and_scores(batch, samples, features, pooling):
    layer = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0, num_feature_blocks=2, pooling=pooling)
    out, scores = layer(_rand(batch, samples, features), return_attention_scores=True)
    tokens = features + (pooling == "cls")
    assert out.shape == (batch, samples, 8)
    assert len(scores["inter_feature"]) == 2
    for block in scores["inter_feature"]:
        assert block.shape == (batch, samples, 2, tokens, tokens)
        np.testing.assert_allclose(np.asarray(block).sum(-1), 1.0, atol=1e-5)
    assert scores["inter_sample"].shape == (batch, 2, samples, samples)
    np.testing.assert_allclose(np.asarray(scores["inter_sample"]).sum(-1), 1.0, atol=1e-5)


def test_token_input_and_context():
    layer = TabularAttention(num_heads=4, d_model=16, dropout_rate=0.0)
    x, context = _rand(3, 2, 5, 12), _rand(6, 5, 12, seed=1)  # tokens of width 12 -> projected to 16
    out, scores = layer(x, context=context, return_attention_scores=True)
    assert out.shape == (3, 2, 16)
    assert scores["inter_sample"].shape == (3, 4, 2, 2 + 6)
    np.testing.assert_allclose(np.asarray(scores["inter_sample"]).sum(-1), 1.0, atol=1e-5)


def test_context_sample_is_drawn_in_training_only():
    layer = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0, context_sample=3, seed=0)
    reference = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0)
    x, context = _rand(4, 1, 5), _rand(8, 5, seed=1)
    out, scores = layer(x, context=context, training=True, return_attention_scores=True)
    assert scores["inter_sample"].shape == (4, 2, 1, 1 + 3)
    np.testing.assert_allclose(np.asarray(scores["inter_sample"]).sum(-1), 1.0, atol=1e-5)
    # each training call draws anew: over 20 calls the outputs are not all the same draw
    draws = {np.asarray(layer(x, context=context, training=True)).round(5).tobytes() for _ in range(20)}
    assert len(draws) > 1
    # predictions use every context row and are what a layer without sampling computes
    reference(x, context=context)
    reference.set_weights(layer.get_weights())
    out, scores = layer(x, context=context, training=False, return_attention_scores=True)
    assert scores["inter_sample"].shape == (4, 2, 1, 1 + 8)
    np.testing.assert_allclose(np.asarray(out), np.asarray(reference(x, context=context)), atol=1e-6)
    # a sample as large as the context is the whole context
    whole = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0, context_sample=8)
    assert whole(x, context=context, training=True, return_attention_scores=True)[1]["inter_sample"].shape[-1] == 9


def test_context_sample_keeps_the_full_context_softmax_weights():
    """log(M / K) on the sampled logits: with identical context rows, K of them then weigh
    exactly what all M weigh, so training output equals prediction output; without the
    correction the row itself would get a larger share."""
    layer = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0, context_sample=2, seed=0)
    x, row = _rand(4, 1, 5), _rand(1, 5, seed=1)
    context = np.repeat(row, 8, axis=0)
    sampled, scores = layer(x, context=context, training=True, return_attention_scores=True)
    full, full_scores = layer(x, context=context, training=False, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(sampled), np.asarray(full), atol=1e-5)
    np.testing.assert_allclose(np.asarray(scores["inter_sample"])[..., 0], np.asarray(full_scores["inter_sample"])[..., 0], atol=1e-6)
    # the check has teeth: the self weight is not already ~1 (which would hide a missing correction)
    assert np.asarray(full_scores["inter_sample"])[..., 0].max() < 0.5


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_masked_features_do_not_reach_the_output_with_context(pooling):
    layer = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0, pooling=pooling)
    x, context = _rand(3, 2, 4), _rand(5, 4, seed=1)
    feature_mask = np.ones((3, 2, 4), bool)
    feature_mask[:, :, 1] = False
    out, scores = layer(x, context=context, feature_mask=feature_mask, return_attention_scores=True)
    changed = x.copy()
    changed[:, :, 1] += 10.0
    np.testing.assert_allclose(np.asarray(layer(changed, context=context, feature_mask=feature_mask)), np.asarray(out), atol=1e-5)
    key = 1 + (pooling == "cls")
    assert np.abs(np.asarray(scores["inter_feature"][0])[..., key]).max() == 0.0
    # an all-True mask is no mask
    np.testing.assert_allclose(
        np.asarray(layer(x, context=context, feature_mask=np.ones_like(feature_mask))),
        np.asarray(layer(x, context=context)), atol=1e-6,
    )


def test_num_samples_is_not_fixed_at_first_call():
    layer = TabularAttention(num_heads=2, d_model=8)
    assert layer(_rand(2, 3, 4)).shape == (2, 3, 8)
    assert layer(_rand(2, 11, 4)).shape == (2, 11, 8)


def test_equivariant_to_permuting_samples_and_invariant_to_context_order():
    layer = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0)
    x, context = _rand(3, 6, 4), _rand(5, 4, seed=2)
    perm = np.random.default_rng(0).permutation(6)
    base = np.asarray(layer(x, context=context))
    permuted = np.asarray(layer(x[:, perm], context=context))
    np.testing.assert_allclose(permuted, base[:, perm], atol=1e-5)
    shuffled_context = np.asarray(layer(x, context=context[::-1].copy()))
    np.testing.assert_allclose(shuffled_context, base, atol=1e-5)


def test_feature_permutation_invariance_with_token_input():
    # With already-embedded tokens and mean pooling there is no position information.
    layer = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0)
    x = _rand(2, 3, 5, 8)
    perm = [4, 2, 0, 1, 3]
    np.testing.assert_allclose(np.asarray(layer(x[:, :, perm])), np.asarray(layer(x)), atol=1e-5)


def test_attention_is_real_between_samples():
    # Changing another sample changes a sample's output (stage 2 mixes samples) ...
    layer = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0)
    x = _rand(1, 3, 4)
    y = x.copy()
    y[0, 2] += 3.0
    a, b = np.asarray(layer(x)), np.asarray(layer(y))
    assert np.abs(a[0, 0] - b[0, 0]).max() > 1e-4
    # ... but only within its own batch element.
    pair = np.concatenate([x, _rand(1, 3, 4, seed=5)])
    np.testing.assert_allclose(np.asarray(layer(pair))[0], a[0], atol=1e-5)


def test_dropout_only_in_training():
    layer = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.5)
    x = _rand(4, 3, 6)
    inference = [np.asarray(layer(x, training=False)) for _ in range(2)]
    np.testing.assert_allclose(inference[0], inference[1])
    training = np.asarray(layer(x, training=True))
    assert np.abs(training - inference[0]).max() > 1e-3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_heads": 3, "d_model": 8}, "divisible by num_heads"),
        ({"num_heads": 0, "d_model": 8}, "num_heads"),
        ({"num_heads": 2, "d_model": 8, "dropout_rate": 1.0}, r"dropout_rate must be in \[0, 1\)"),
        ({"num_heads": 2, "d_model": 8, "pooling": "max"}, "pooling"),
        ({"num_heads": 2, "d_model": 8, "context_sample": 0}, "context_sample must be None"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TabularAttention(**kwargs)


def test_bad_input_rank():
    with pytest.raises(ValueError, match=r"\(batch, num_samples, num_features\)"):
        TabularAttention(num_heads=2, d_model=8)(_rand(2, 3))


def test_dropout_rate_zero_accepted_and_config_round_trip():
    layer = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0, pooling="cls", num_feature_blocks=3,
                             context_sample=5, seed=7)
    config = layer.get_config()
    assert config["context_sample"] == 5 and config["seed"] == 7
    json.dumps(config)
    clone = TabularAttention.from_config(config)
    assert clone.get_config() == config
    assert clone.dropout_rate == 0.0


def test_keras_round_trip_inside_a_model(tmp_path):
    numerical = keras.Input((3,), name="numerical")
    categorical = keras.Input((2,), name="categorical", dtype="int32")
    num_embed, cat_embed = NumericalEmbedding(8), CategoricalEmbedding([3, 5], 8)
    tokens = keras.layers.Concatenate(axis=-2)([num_embed(numerical), cat_embed(categorical)])
    context = keras.layers.Concatenate(axis=-2)([
        num_embed(ContextRows(4, 3, name="ctx_num")(numerical)),
        cat_embed(ContextRows(4, 2, name="ctx_cat")(numerical)),
    ])
    h, _ = TabularAttention(2, 8, 0.1, name="ta")(keras.ops.expand_dims(tokens, 1), context=context, return_attention_scores=True)
    model = keras.Model({"numerical": numerical, "categorical": categorical}, keras.layers.Dense(1)(keras.layers.Flatten()(h)))
    model.get_layer("ctx_num").set_rows(_rand(4, 3))
    model.get_layer("ctx_cat").set_rows(np.array([[1, 2], [0, 4], [2, 1], [1, 1]]))
    data = {"numerical": _rand(10, 3, seed=3), "categorical": np.random.default_rng(0).integers(0, 3, (10, 2))}
    expected = model.predict(data, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(data, verbose=0), expected, atol=1e-6)
    np.testing.assert_array_equal(loaded.get_layer("ctx_cat").rows.numpy(), [[1, 2], [0, 4], [2, 1], [1, 1]])


def test_embeddings():
    num = NumericalEmbedding(4)
    out = np.asarray(num(_rand(5, 3)))
    assert out.shape == (5, 3, 4)
    zero = np.asarray(num(np.zeros((1, 3), "float32")))[0]
    np.testing.assert_allclose(zero, num.bias.numpy(), atol=1e-6)  # x=0 gives the per-feature bias
    cat = CategoricalEmbedding([2, 4], 6)
    out = np.asarray(cat(np.array([[0, 3], [1, 3]])))
    assert out.shape == (2, 2, 6)
    np.testing.assert_allclose(out[0, 1], out[1, 1])  # same code, same column -> same token
    assert np.abs(out[0, 0] - out[1, 0]).max() > 0
    with pytest.raises(ValueError, match="cardinalities"):
        CategoricalEmbedding([], 4)
