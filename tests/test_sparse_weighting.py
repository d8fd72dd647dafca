"""sparsemax and SparseAttentionWeighting: maths, shapes, exact zeros, scores in models, serialisation."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import tabcli  # noqa: F401  (registers the layers)
from tabcli.layers.sparse_weighting import SparseAttentionWeighting, sparsemax


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _sparsemax_reference(z):
    """Martins & Astudillo 2016, Algorithm 1, on the last axis, one row at a time."""
    out = np.empty_like(z)
    for index in np.ndindex(z.shape[:-1]):
        row = z[index]
        z_sorted = np.sort(row)[::-1]
        k = np.arange(1, row.size + 1)
        cumulative = np.cumsum(z_sorted)
        k_z = k[1 + k * z_sorted > cumulative].max()
        tau = (cumulative[k_z - 1] - 1) / k_z
        out[index] = np.maximum(row - tau, 0)
    return out


@pytest.mark.parametrize("shape, axis", [((7,), -1), ((4, 5), -1), ((3, 6, 2), 1), ((5, 3), 0)])
def test_sparsemax_matches_numpy_reference(shape, axis):
    z = _rand(*shape, seed=sum(shape)) * 2
    expected = np.moveaxis(_sparsemax_reference(np.moveaxis(z, axis, -1)), -1, axis)
    got = np.asarray(sparsemax(z, axis=axis))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis), 1.0, atol=1e-6)
    assert (got >= 0).all()


def test_sparsemax_known_values_and_exact_zeros():
    np.testing.assert_allclose(np.asarray(sparsemax(np.array([1.0, 0.0]))), [1.0, 0.0])
    np.testing.assert_allclose(np.asarray(sparsemax(np.array([0.2, 0.1]))), [0.55, 0.45], atol=1e-6)
    np.testing.assert_allclose(np.asarray(sparsemax([1, 0])), [1.0, 0.0])  # integer logits accepted
    np.testing.assert_allclose(np.asarray(sparsemax(np.full(4, 2.5, "float32"))), 0.25)  # ties: uniform
    out = np.asarray(sparsemax(np.array([[3.0, 0.0, -1.0], [1.0, 0.8, -1.0]], "float32")))
    np.testing.assert_array_equal(out[0], [1.0, 0.0, 0.0])  # exact zeros, unlike softmax
    np.testing.assert_allclose(out[1], [0.6, 0.4, 0.0], atol=1e-6)
    assert out[1, 2] == 0.0


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 3), (2, 3, 2, 4)])
@pytest.mark.parametrize("normalizer", ["softmax", "sparsemax"])
def test_shapes_and_uniform_initial_weights(shape, normalizer):
    layer = SparseAttentionWeighting(3, normalizer=normalizer)
    inputs = [_rand(*shape, seed=i) for i in range(3)]
    out, weights = layer(tuple(inputs), return_attention_scores=True)  # a tuple works like a list
    assert out.shape == shape
    assert weights.shape == (shape[0], 3)
    np.testing.assert_allclose(layer.logits.numpy(), 1.0)  # initialised to ones
    np.testing.assert_allclose(layer.module_weights, 1.0 / 3.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(weights), 1.0 / 3.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out), np.mean(inputs, axis=0), atol=1e-5)


def test_softmax_weights_follow_temperature():
    layer = SparseAttentionWeighting(3, temperature=0.5)
    x = [_rand(2, 4, seed=i) for i in range(3)]
    layer(x)
    layer.logits.assign([1.0, 0.0, -0.5])
    expected = np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum()
    np.testing.assert_allclose(layer.module_weights, expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer(x)), sum(w * xi for w, xi in zip(expected, x)), atol=1e-5)


def test_sparsemax_zeroed_module_does_not_influence_output():
    layer = SparseAttentionWeighting(3, normalizer="sparsemax")
    x = [_rand(4, 2, 3, seed=i) for i in range(3)]
    layer(x)
    layer.logits.assign([1.0, 0.8, -1.0])
    np.testing.assert_allclose(layer.module_weights, [0.6, 0.4, 0.0], atol=1e-6)
    assert layer.module_weights[2] == 0.0
    out = np.asarray(layer(x))
    np.testing.assert_allclose(out, 0.6 * x[0] + 0.4 * x[1], atol=1e-5)
    np.testing.assert_array_equal(np.asarray(layer([x[0], x[1], x[2] * 100 + 7])), out)


@pytest.mark.parametrize("normalizer", ["softmax", "sparsemax"])
def test_permuting_modules_with_their_logits_leaves_output_unchanged(normalizer):
    x = [_rand(3, 4, seed=i) for i in range(4)]
    logits = np.array([0.9, -0.2, 0.5, 0.7], "float32")
    perm = [2, 0, 3, 1]
    layer = SparseAttentionWeighting(4, normalizer=normalizer)
    permuted = SparseAttentionWeighting(4, normalizer=normalizer)
    layer(x), permuted(x)
    layer.logits.assign(logits)
    permuted.logits.assign(logits[perm])
    np.testing.assert_allclose(
        np.asarray(permuted([x[i] for i in perm])), np.asarray(layer(x)), atol=1e-6
    )
    np.testing.assert_allclose(permuted.module_weights, layer.module_weights[perm], atol=1e-6)


def test_single_module_is_identity():
    x = _rand(2, 3)
    np.testing.assert_allclose(np.asarray(SparseAttentionWeighting(1, normalizer="sparsemax")([x])), x)


def test_logits_are_trained_through_sparsemax():
    inputs = [keras.Input((2,)) for _ in range(3)]
    layer = SparseAttentionWeighting(3, normalizer="sparsemax", name="weighting")
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    x = [_rand(16, 2, seed=i) for i in range(3)]
    model.fit(x, x[0], epochs=3, batch_size=16, verbose=0)  # the target is module 0
    weights = layer.module_weights
    assert weights[0] > 1.0 / 3.0 + 0.05 and np.isclose(weights.sum(), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_modules": 0}, "num_modules must be a positive integer"),
        ({"num_modules": 2, "temperature": 0.0}, "temperature must be > 0"),
        ({"num_modules": 2, "temperature": -1.0}, "temperature must be > 0"),
        ({"num_modules": 2, "normalizer": "entmax"}, "normalizer must be one of"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SparseAttentionWeighting(**kwargs)


def test_input_errors():
    layer = SparseAttentionWeighting(3)
    with pytest.raises(ValueError, match=r"expected 3 inputs \(num_modules=3\), received 2"):
        layer([_rand(2, 4), _rand(2, 4)])
    with pytest.raises(ValueError, match=r"input 0 of shape \(2, 4\) and input 2 of shape \(2, 5\)"):
        layer([_rand(2, 4), _rand(2, 4), _rand(2, 5)])
    with pytest.raises(ValueError, match=r"rank >= 2.*received shape \(4,\)"):
        layer([_rand(4), _rand(4), _rand(4)])
    with pytest.raises(ValueError, match="list or tuple of 3 tensors"):
        layer(_rand(2, 4))
    layer([_rand(2, 4)] * 3)
    with pytest.raises(ValueError, match="received 4"):  # checked again once built
        layer([_rand(2, 4)] * 4)


def test_config_round_trip():
    layer = SparseAttentionWeighting(4, temperature=0.3, normalizer="sparsemax", name="w")
    config = layer.get_config()
    json.dumps(config)
    clone = SparseAttentionWeighting.from_config(config)
    assert clone.get_config() == config
    assert (clone.num_modules, clone.temperature, clone.normalizer) == (4, 0.3, "sparsemax")


def _model_with_weights(layer):
    inputs = [keras.Input((2, 3)) for _ in range(3)]
    out, weights = layer(inputs, return_attention_scores=True)
    return keras.Model(inputs, [keras.layers.Dense(1)(out), weights])


def test_predicted_weights_equal_eager_weights():
    layer = SparseAttentionWeighting(3, normalizer="sparsemax")
    model = _model_with_weights(layer)
    layer.logits.assign([0.5, 1.0, -2.0])
    x = [_rand(5, 2, 3, seed=i) for i in range(3)]
    _, predicted = model.predict(x, verbose=0)
    _, eager = layer(x, return_attention_scores=True)
    assert predicted.shape == (5, 3)
    np.testing.assert_allclose(predicted, np.asarray(eager), atol=1e-6)
    np.testing.assert_allclose(predicted, np.broadcast_to(layer.module_weights, (5, 3)), atol=1e-6)
    assert layer.attention_score_names() == ["module_weights"]


def test_keras_round_trip_inside_a_model(tmp_path):
    layer = SparseAttentionWeighting(3, temperature=0.5, normalizer="sparsemax", name="weighting")
    model = _model_with_weights(layer)
    layer.logits.assign([1.0, 0.2, 0.9])
    x = [_rand(4, 2, 3, seed=i) for i in range(3)]
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.get_layer("weighting").module_weights, layer.module_weights)
    for got, want in zip(loaded.predict(x, verbose=0), expected):
        np.testing.assert_allclose(got, want, atol=1e-6)
