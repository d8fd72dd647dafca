"""MultiResolutionTabularAttention, AttentionPooling, PeriodicEmbedding and TabularAttention masks."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import tabcli  # noqa: F401  (registers the layers)
from tabcli.layers import AttentionPooling, MultiResolutionTabularAttention, PeriodicEmbedding, TabularAttention


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize("n_num, n_cat, samples", [(3, 2, 1), (5, 1, 4), (1, 6, 2)])
def test_multi_resolution_shapes_and_scores(n_num, n_cat, samples):
    layer = MultiResolutionTabularAttention(num_heads=2, d_model=8, dropout_rate=0.0)
    (num_out, cat_out), scores = layer([_rand(3, samples, n_num), _rand(3, samples, n_cat, 8, seed=1)], return_attention_scores=True)
    assert num_out.shape == (3, samples, 8) and cat_out.shape == (3, samples, 8)
    expected = {
        "numerical_self": (n_num, n_num),
        "categorical_self": (n_cat, n_cat),
        "numerical_to_categorical": (n_num, n_cat),  # numerical queries over categorical keys
        "categorical_to_numerical": (n_cat, n_num),
    }
    for name, (tq, tk) in expected.items():
        assert scores[name].shape == (3, samples, 2, tq, tk), name
        np.testing.assert_allclose(np.asarray(scores[name]).sum(-1), 1.0, atol=1e-5)


def test_multi_resolution_accepts_tuple_and_token_outputs():
    layer = MultiResolutionTabularAttention(num_heads=2, d_model=8, pooling="none")
    num_out, cat_out = layer((_rand(2, 1, 3), _rand(2, 1, 4)))
    assert num_out.shape == (2, 1, 3, 8) and cat_out.shape == (2, 1, 4, 8)
    with pytest.raises(ValueError, match=r"list or tuple \[numerical, categorical\]"):
        MultiResolutionTabularAttention(num_heads=2, d_model=8)(_rand(2, 1, 3))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MultiResolutionTabularAttention(num_heads=3, d_model=8)


def test_cross_attention_directions_are_not_inverted():
    # Changing only the categorical input changes the numerical stream through
    # numerical_to_categorical; with no categorical influence the numerical output stays put.
    layer = MultiResolutionTabularAttention(num_heads=2, d_model=8, dropout_rate=0.0)
    num, cat = _rand(1, 1, 3), _rand(1, 1, 2, seed=1)
    (n1, _), _ = layer([num, cat], return_attention_scores=True)
    (n2, _), _ = layer([num, cat + 2.0], return_attention_scores=True)
    assert np.abs(np.asarray(n1) - np.asarray(n2)).max() > 1e-4
    layer.numerical_to_categorical.set_weights([w * 0 for w in layer.numerical_to_categorical.get_weights()])
    (n1, _), _ = layer([num, cat], return_attention_scores=True)
    (n2, _), _ = layer([num, cat + 2.0], return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(n1), np.asarray(n2), atol=1e-5)


def test_multi_resolution_token_permutation_equivariance():
    layer = MultiResolutionTabularAttention(num_heads=2, d_model=8, dropout_rate=0.0, pooling="none")
    num, cat = _rand(2, 1, 4, 8), _rand(2, 1, 3, 8, seed=1)
    perm = [2, 0, 3, 1]
    base_num, base_cat = (np.asarray(t) for t in layer([num, cat]))
    num_out, cat_out = (np.asarray(t) for t in layer([num[:, :, perm], cat]))
    np.testing.assert_allclose(num_out, base_num[:, :, perm], atol=1e-5)
    np.testing.assert_allclose(cat_out, base_cat, atol=1e-5)


def test_multi_resolution_masks():
    layer = MultiResolutionTabularAttention(num_heads=2, d_model=8, dropout_rate=0.0)
    num, cat = _rand(1, 1, 3), _rand(1, 1, 3, seed=1)
    mask = np.array([[[True, True, False]]])
    _, scores = layer([num, cat], categorical_mask=mask, return_attention_scores=True)
    assert np.asarray(scores["numerical_to_categorical"])[..., 2].max() < 1e-6
    assert np.asarray(scores["categorical_self"])[..., 2].max() < 1e-6


def test_multi_resolution_dropout_and_round_trip(tmp_path):
    layer = MultiResolutionTabularAttention(num_heads=2, d_model=8, dropout_rate=0.5)
    inputs = [_rand(4, 2, 3), _rand(4, 2, 2, seed=1)]
    a = np.asarray(layer(inputs, training=False)[0])
    np.testing.assert_allclose(a, np.asarray(layer(inputs, training=False)[0]))
    assert np.abs(np.asarray(layer(inputs, training=True)[0]) - a).max() > 1e-4
    config = layer.get_config()
    json.dumps(config)
    assert MultiResolutionTabularAttention.from_config(config).get_config() == config
    num, cat = keras.Input((1, 3)), keras.Input((1, 2))
    (n, c), _ = MultiResolutionTabularAttention(2, 8, 0.0, name="mr")([num, cat], return_attention_scores=True)
    model = keras.Model([num, cat], keras.layers.Concatenate()([n, c]))
    data = [_rand(5, 1, 3), _rand(5, 1, 2, seed=2)]
    expected = model.predict(data, verbose=0)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "m.keras").predict(data, verbose=0), expected, atol=1e-6)


def test_tabular_attention_feature_and_sample_masks():
    layer = TabularAttention(num_heads=2, d_model=8, dropout_rate=0.0)
    x = _rand(1, 3, 4)
    feature_mask = np.array([[[True, False, True, True]] * 3])
    out, scores = layer(x, feature_mask=feature_mask, return_attention_scores=True)
    assert np.asarray(scores["inter_feature"][0])[..., 1].max() < 1e-6
    changed = x.copy()
    changed[..., 1] += 5.0  # a masked feature no longer influences anything
    np.testing.assert_allclose(np.asarray(layer(changed, feature_mask=feature_mask)), np.asarray(out), atol=1e-5)
    sample_mask = np.array([[True, True, False]])
    out, scores = layer(x, sample_mask=sample_mask, return_attention_scores=True)
    assert np.asarray(scores["inter_sample"])[..., 2].max() < 1e-6
    moved = x.copy()
    moved[0, 2] += 5.0
    np.testing.assert_allclose(np.asarray(layer(moved, sample_mask=sample_mask))[0, :2], np.asarray(out)[0, :2], atol=1e-5)


def test_attention_pooling():
    pool = AttentionPooling()
    tokens = _rand(3, 5, 8)
    pooled, scores = pool(tokens, return_attention_scores=True)
    assert pooled.shape == (3, 8) and scores.shape == (3, 5)
    scores = np.asarray(scores)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(pooled), np.einsum("bt,btd->bd", scores, tokens), atol=1e-5)
    perm = [4, 1, 3, 0, 2]  # pooling is invariant to token order, the scores follow the tokens
    pooled_p, scores_p = pool(tokens[:, perm], return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(pooled_p), np.asarray(pooled), atol=1e-5)
    np.testing.assert_allclose(np.asarray(scores_p), scores[:, perm], atol=1e-6)
    _, masked = pool(tokens, mask=np.array([[1, 0, 1, 1, 1]] * 3, bool), return_attention_scores=True)
    assert np.asarray(masked)[:, 1].max() == 0.0


def test_periodic_embedding():
    layer = PeriodicEmbedding(8, num_frequencies=4, sigma=0.5)
    out = np.asarray(layer(_rand(6, 3)))
    assert out.shape == (6, 3, 8) and (out >= 0).all()  # ReLU output
    same = np.asarray(layer(np.repeat(_rand(1, 3), 2, axis=0)))
    np.testing.assert_allclose(same[0], same[1])
    assert PeriodicEmbedding.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="sigma"):
        PeriodicEmbedding(8, sigma=0)


def test_periodic_embedding_values_match_the_formula():
    """Each value x of feature f becomes relu([sin(2 pi c_f x), cos(2 pi c_f x)] @ W_f + b_f)
    (Gorishniy et al. 2022), for any number of leading axes."""
    layer = PeriodicEmbedding(5, num_frequencies=3, sigma=1.0)
    x = _rand(2, 4, 3)
    out = np.asarray(layer(x))
    c, w, b = (np.asarray(v) for v in (layer.frequencies, layer.kernel, layer.bias))
    angles = 2 * np.pi * x[..., None] * c  # (2, 4, F, k)
    periodic = np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)
    expected = np.maximum(np.einsum("...fk,fkd->...fd", periodic, w) + b, 0.0)
    assert out.shape == (2, 4, 3, 5)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def _functional_scores(layer, inputs_spec, call):
    """A functional model returning a layer's flattened scores, and the layer's eager scores."""
    symbolic = [keras.Input(shape) for shape in inputs_spec]
    outputs = call(layer, symbolic)
    return keras.Model(symbolic, keras.tree.flatten(outputs[1]))


@pytest.mark.parametrize(
    "make, shapes, call",
    [
        (lambda: TabularAttention(2, 8, 0.3, num_feature_blocks=2), [(3, 4)],
         lambda layer, x: layer(x[0], return_attention_scores=True)),
        (lambda: MultiResolutionTabularAttention(2, 8, 0.3), [(1, 3), (1, 2)],
         lambda layer, x: layer([x[0], x[1]], return_attention_scores=True)),
        (lambda: AttentionPooling(0.3), [(5, 8)],
         lambda layer, x: layer(x[0], return_attention_scores=True)),
    ],
)
def test_scores_from_predict_equal_eager_scores(make, shapes, call):
    layer = make()
    model = _functional_scores(layer, shapes, call)
    data = [_rand(4, *shape, seed=i) for i, shape in enumerate(shapes)]
    predicted = model.predict(data, verbose=0)
    predicted = predicted if isinstance(predicted, list) else [predicted]
    eager = keras.tree.flatten(call(layer, data)[1])
    assert len(predicted) == len(eager) == len(layer.attention_score_names())
    for p, e in zip(predicted, eager):
        np.testing.assert_allclose(p, np.asarray(e), atol=1e-5)
