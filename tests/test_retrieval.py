"""Retrieval inter-sample attention: exact top-k, no self-retrieval in training, batch independence,
what is stored with the model, and runs made before retrieval existed."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from keras import ops
from typer.testing import CliRunner

from conftest import DATASETS, REPO
from tabcli.cli import app
from tabcli.layers import RetrievalAttention
from tabcli.layers.nearest import nearest_candidates, top_k_indices
from tabcli.models.registry import build_model
from tabcli.models.candidates import FreezeContexts, choose_candidates, with_candidate_index
from tabcli.models.spec import ModelSpec
from tabcli.models.tabular_attention.config import TabularAttentionConfig

runner = CliRunner()
SPEC = ModelSpec(task="binary", numerical_names=["a", "b", "c"], categorical_names=["d"], cardinalities=[4], num_classes=2)


def _rows(n, seed=0):
    rng = np.random.default_rng(seed)
    return {"numerical": rng.normal(size=(n, 3)).astype("float32"), "categorical": rng.integers(0, 4, (n, 1)).astype("int32")}


def _model(n=40, k=8, seed=0, **options):
    rows = _rows(n, seed)
    labels = (rows["numerical"][:, 0] > 0).astype("float32")
    candidates = choose_candidates(rows, labels, np.arange(100, 100 + n), "all", seed=0)
    config = TabularAttentionConfig(d_model=8, num_heads=2, num_feature_blocks=1, inter_sample="retrieval",
                                    retrieval={"k": k, **options})
    return build_model(config, SPEC, candidates=candidates), candidates


@pytest.mark.parametrize("num, k, chunk", [(500, 96, None), (1003, 7, None), (97, 96, None), (64, 5, 3), (10, 10, None),
                                           (20011, 96, None), (5000, 40, 7)])
@pytest.mark.parametrize("kind", ["distinct", "ties", "-inf"])
def test_top_k_indices_is_exact(num, k, chunk, kind):
    """Against a stable sort: distinct scores, scores with many ties (duplicate candidates; the
    lower index first, as ops.top_k) and rows where most scores are -inf (padding)."""
    rng = np.random.default_rng(num)
    scores = rng.normal(size=(6, num)).astype("float32")
    if kind == "ties":
        scores = np.round(scores, 1)
        scores[0] = 1.0  # one row all equal
    elif kind == "-inf":
        scores[rng.random(scores.shape) < 0.9] = -np.inf
        scores[:, :k] = np.maximum(scores[:, :k], -1e3)  # at least k finite per row
    got = np.asarray(top_k_indices(ops.convert_to_tensor(scores), k, chunk))
    np.testing.assert_array_equal(got, np.argsort(-scores, axis=1, kind="stable")[:, :k])


@pytest.mark.parametrize("num, d_in, key_dim", [(1009, 3, 8), (1009, 12, 4), (200, 5, 5)])
def test_nearest_candidates_is_exact_by_squared_distance(num, d_in, key_dim):
    """Brute force over the keys, for candidate counts that are not a multiple of the top-k chunk
    (padding candidates must never be retrieved) and both ways of computing the ranking."""
    rng = np.random.default_rng(num + d_in)
    candidates = rng.normal(size=(num, d_in)).astype("float32")
    kernel = rng.normal(size=(d_in, key_dim)).astype("float32")
    own = rng.integers(0, num, 9).astype("int32")
    query = candidates[own] + 0.01 * rng.normal(size=(9, d_in)).astype("float32")
    distance = ((query @ kernel)[:, None, :] - (candidates @ kernel)[None]) ** 2
    order = np.argsort(distance.sum(-1), axis=1, kind="stable")
    got = np.asarray(nearest_candidates(ops.convert_to_tensor(query), ops.convert_to_tensor(candidates), kernel, 20))
    np.testing.assert_array_equal(got, order[:, :20])
    assert (got[:, 0] == own).all()  # each query sits next to its own candidate ...
    got = np.asarray(nearest_candidates(ops.convert_to_tensor(query), ops.convert_to_tensor(candidates), kernel, 20,
                                        ops.convert_to_tensor(own)))
    np.testing.assert_array_equal(got, order[:, 1:21])  # ... which the index excludes


def _layer(rows, labels, **options):
    n = len(labels)
    layer = RetrievalAttention(num_candidates=n, d_model=8, num_numerical=rows["numerical"].shape[1],
                               cardinalities=[4], **options)
    layer(np.zeros((n, 8), "float32"), numerical=rows["numerical"], categorical=rows["categorical"])  # build
    layer.set_candidates(rows["numerical"], rows["categorical"], labels, np.arange(n) + 500)
    return layer


KEYS = pytest.mark.parametrize("key_embedding", ["linear", "periodic"])


def _reference_output(layer, x, rows, candidate_index):
    """RetrievalAttention's output written out plainly in NumPy (TabR's formula, no algebraic
    shortcuts): keys of every row and candidate, the count nearest by squared distance without the
    row itself, softmax per head, values E(y_i) + W2 relu(W1 (k - k_i) + b1), residual."""
    def features(numerical, categorical):
        if layer.key_embedding == "periodic":
            c, w, b = (np.asarray(v, "float64") for v in (layer.key_embedder.frequencies, layer.key_embedder.kernel,
                                                           layer.key_embedder.bias))
            angles = 2 * np.pi * numerical[..., None] * c
            embedded = np.maximum(np.einsum("rfk,fkd->rfd", np.concatenate([np.sin(angles), np.cos(angles)], -1), w) + b, 0)
            numerical = embedded.reshape(len(numerical), -1)
        return np.concatenate([numerical, np.eye(4)[categorical[:, 0]]], axis=1)

    kernel = np.asarray(layer.key_kernel, "float64")
    keys = features(rows["numerical"], rows["categorical"]) @ kernel
    stored = features(np.asarray(layer.candidate_numerical), np.asarray(layer.candidate_categorical)) @ kernel
    labels = np.asarray(layer.candidate_labels, "float64")
    w1, b1, w2 = (np.asarray(v, "float64") for v in (layer.t_in_kernel, layer.t_in_bias, layer.t_out_kernel))
    if layer.num_classes is None:  # a linear map of the standardised target
        kernel_e, bias_e = (np.asarray(v, "float64") for v in (layer.label_encoder.kernel, layer.label_encoder.bias))
        label_value = lambda y: y[:, None] * kernel_e[0] + bias_e  # noqa: E731
    else:  # a class embedding
        label_value = lambda y: np.asarray(layer.label_encoder.embeddings, "float64")[y.astype(int)]  # noqa: E731
    heads, width, key_width = layer.num_heads, layer.d_model // layer.num_heads, layer.key_dim // layer.num_heads
    out = np.array(x, "float64")
    for row in range(len(x)):
        distance = ((keys[row] - stored) ** 2).sum(-1)
        distance[candidate_index[row]] = np.inf
        near = np.argsort(distance)[: layer.k]
        difference = keys[row] - stored[near]  # (k, key_dim)
        values = label_value(labels[near]) + np.maximum(difference @ w1 + b1, 0) @ w2  # (k, d_model)
        for h in range(heads):
            similarity = -(difference[:, h * key_width:(h + 1) * key_width] ** 2).sum(-1)
            p = np.exp(similarity - similarity.max())
            out[row, h * width:(h + 1) * width] += (p / p.sum()) @ values[:, h * width:(h + 1) * width]
    return out


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("key_embedding, num_heads, num_classes", [
    ("linear", 1, 3), ("periodic", 1, 3), ("periodic", 2, 3), ("periodic", 2, None)])
def test_output_is_tabrs_formula(key_embedding, num_heads, num_classes, training):
    """Both ways a call finds its neighbours' keys: recomputed with gradient (training) and read
    from the candidate cache (inference); no dropout, so the two compute the same function."""
    rows = _rows(30, seed=3)
    labels = np.arange(30) % 3 if num_classes else np.random.default_rng(5).normal(size=30)
    layer = _layer(rows, labels, k=5, num_classes=num_classes, key_embedding=key_embedding, num_heads=num_heads,
                   sigma=1.0, key_embedding_dim=4, num_frequencies=3)
    # Non-zero biases, so a bias applied in the wrong place shows.
    layer.t_in_bias.assign(np.random.default_rng(2).normal(size=layer.t_in_bias.shape))
    x = np.random.default_rng(4).normal(size=(30, 8)).astype("float32")
    index = np.arange(30, dtype="int32")
    out = layer(x, numerical=rows["numerical"], categorical=rows["categorical"], candidate_index=index,
                training=training)
    np.testing.assert_allclose(np.asarray(out), _reference_output(layer, x, rows, index), atol=2e-4)


def _perturb(layer, name):
    rng = np.random.default_rng(len(name))
    variable = {"key_kernel": layer.key_kernel, "t_in_kernel": layer.t_in_kernel,
                "candidate_numerical": layer.candidate_numerical,
                "key_embedding": getattr(layer, "key_embedder", None) and layer.key_embedder.kernel}[name]
    variable.assign(np.asarray(variable) + rng.normal(size=variable.shape).astype("float32"))


@pytest.mark.parametrize("changed", ["key_kernel", "t_in_kernel", "candidate_numerical", "key_embedding"])
def test_the_candidate_cache_is_read_while_fresh_and_refreshed_when_a_weight_changes(changed):
    """Inference calls read every candidate's key from the cache while the weights it was computed
    from hold still (a corrupted cache shows in the output), and recompute it as soon as any of
    them changes (as restore_best_weights or set_candidates change them, without a training call)."""
    rows = _rows(30, seed=3)
    layer = _layer(rows, np.arange(30) % 3, k=5, num_classes=3, key_embedding="periodic", sigma=1.0,
                   key_embedding_dim=4, num_frequencies=3)
    x = np.random.default_rng(4).normal(size=(30, 8)).astype("float32")
    index = np.arange(30, dtype="int32")

    def call():
        out = layer(x, numerical=rows["numerical"], categorical=rows["categorical"], candidate_index=index)
        return np.asarray(out)

    np.testing.assert_allclose(call(), _reference_output(layer, x, rows, index), atol=2e-4)
    cached_keys = layer._cache[1]
    cached_keys.assign(np.asarray(cached_keys) + 1.0)  # read while fresh: the corruption shows
    assert np.abs(call() - _reference_output(layer, x, rows, index)).max() > 1e-2
    _perturb(layer, changed)  # any source changed: recomputed, the corruption is gone
    np.testing.assert_allclose(call(), _reference_output(layer, x, rows, index), atol=2e-4)


@KEYS
def test_training_rows_never_retrieve_themselves(key_embedding):
    rows = _rows(12, seed=1)
    layer = _layer(rows, np.arange(12) % 2, k=4, num_classes=2, key_embedding=key_embedding)
    x = np.random.default_rng(1).normal(size=(12, 8)).astype("float32")

    def retrieved(index, training):
        _, scores = layer(x, numerical=rows["numerical"], categorical=rows["categorical"],
                          candidate_index=None if index is None else np.asarray(index, "int32"),
                          training=training, return_attention_scores=True)
        return np.asarray(scores["ids"]), np.asarray(scores["weights"])

    own = np.arange(12) + 500
    assert (retrieved(None, False)[0][:, 0] == own).all()  # without an index: itself first (distance 0)
    for training in (True, False):  # excluded in training and when scoring the training rows
        ids, weights = retrieved(np.arange(12), training)
        assert ids.shape == (12, 4) and not (ids == own[:, None]).any()
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    # Rows that are not candidates (-1) retrieve from all of them, their twins included.
    assert (retrieved(np.full(12, -1), True)[0][:, 0] == own).all()


@pytest.mark.parametrize("exclude, freeze", [(True, None), (False, None), (True, 2)])
def test_self_exclusion_stops_a_label_leak(exclude, freeze):
    """Random labels on 512 rows: a model that can read each row's own label fits them at once
    (measured: loss 0.001 after 30 epochs); with the exclusion, it stays near chance (0.66).
    With the contexts frozen after 2 epochs the frozen neighbourhoods must exclude the row too."""
    rows = _rows(512, seed=2)
    labels = np.random.default_rng(3).integers(0, 2, 512).astype("float32")
    keras.utils.set_random_seed(0)
    numerical = keras.Input((3,), name="numerical")
    categorical = keras.Input((1,), name="categorical", dtype="int32")
    index = keras.Input((), name="candidate_index", dtype="int32")
    layer = RetrievalAttention(num_candidates=512, d_model=8, num_numerical=3, cardinalities=[4], k=4, num_classes=2)
    h = layer(keras.layers.Dense(8)(numerical), numerical=numerical, categorical=categorical, candidate_index=index)
    model = keras.Model([numerical, categorical, index], keras.layers.Dense(1, activation="sigmoid")(h))
    layer.set_candidates(rows["numerical"], rows["categorical"], labels, np.arange(512))
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss="binary_crossentropy")
    own = np.arange(512, dtype="int32") if exclude else np.full(512, -1, "int32")
    callbacks = [] if freeze is None else [FreezeContexts(freeze)]
    history = model.fit([rows["numerical"], rows["categorical"], own], labels, batch_size=64, epochs=30, verbose=0,
                        callbacks=callbacks)
    final = history.history["loss"][-1]
    if freeze is not None:
        assert callbacks[0].frozen_at == freeze and not layer.contexts_frozen  # undone at the end
    if exclude:
        assert final > 0.5  # chance is ln 2 = 0.69
    else:
        assert final < 0.1


@KEYS
def test_keys_are_trained_through_the_neighbours_too(key_embedding):
    """Both sides of -||k - k_i||^2 carry gradient: the loss depends on the candidates' keys as
    computed in the call (a scheme with cached candidate keys would give them none)."""
    import tensorflow as tf

    rows = _rows(20, seed=4)
    layer = _layer(rows, np.arange(20) % 2, k=5, num_classes=2, key_embedding=key_embedding)
    queries = _rows(6, seed=5)
    with tf.GradientTape() as tape:
        tape.watch(layer.candidate_numerical.value)
        output = layer(np.zeros((6, 8), "float32"), numerical=queries["numerical"], categorical=queries["categorical"])
        loss = tf.reduce_sum(output**2)
    gradient = tape.gradient(loss, layer.candidate_numerical.value)
    assert gradient is not None and np.abs(np.asarray(tf.convert_to_tensor(gradient))).max() > 1e-6
    if key_embedding == "periodic":  # the key embedding is trained, through rows and candidates
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(np.zeros((6, 8), "float32"), numerical=queries["numerical"],
                                       categorical=queries["categorical"]) ** 2)
        grads = tape.gradient(loss, layer.key_embedder.trainable_variables)
        assert all(g is not None and np.abs(np.asarray(tf.convert_to_tensor(g))).max() > 1e-6 for g in grads)


@KEYS
def test_frozen_contexts_are_each_rows_ranked_neighbours(key_embedding):
    """After freeze_contexts a training call reads the neighbours ranked at freeze time (without
    the row itself) from the table, even once the keys have moved; predictions still rank; the
    table is not part of the saved model."""
    rows = _rows(30, seed=6)
    layer = _layer(rows, np.arange(30) % 2, k=5, num_classes=2, key_embedding=key_embedding, dropout_rate=0.0)
    x = np.zeros((30, 8), "float32")
    own = np.arange(30, dtype="int32")

    def ids(training):
        _, scores = layer(x, numerical=rows["numerical"], categorical=rows["categorical"], candidate_index=own,
                          training=training, return_attention_scores=True)
        return np.asarray(scores["ids"])

    ranked = ids(False)
    layer.freeze_contexts(batch_size=7)  # in blocks, as for a large table
    assert layer.contexts_frozen
    np.testing.assert_array_equal(ids(True), ranked)
    np.testing.assert_array_equal(np.asarray(layer._frozen_contexts) + 500, ranked)
    assert not (ranked == (own + 500)[:, None]).any()
    layer.key_kernel.assign(np.random.default_rng(7).normal(size=layer.key_kernel.shape).astype("float32"))
    moved = ids(False)
    assert (moved != ranked).any()  # the keys changed what ranking retrieves ...
    np.testing.assert_array_equal(ids(True), ranked)  # ... but not the frozen training contexts
    layer.unfreeze_contexts()
    np.testing.assert_array_equal(ids(True), moved)
    saved = {v.path for v in layer.weights}
    assert not any("frozen" in path for path in saved)


@KEYS
def test_predictions_do_not_depend_on_the_batch(key_embedding):
    model, _ = _model(key_embedding=key_embedding)
    rows = _rows(30, seed=5)
    full = model.predict(with_candidate_index(model, rows), batch_size=30, verbose=0)
    singles = np.concatenate([model.predict(with_candidate_index(model, {k: v[i:i + 1] for k, v in rows.items()}), verbose=0)
                              for i in range(4)])
    np.testing.assert_allclose(singles, full[:4], atol=1e-5)
    perm = np.random.default_rng(0).permutation(30)
    shuffled = model.predict(with_candidate_index(model, {k: v[perm] for k, v in rows.items()}), batch_size=7, verbose=0)
    np.testing.assert_allclose(shuffled, full[perm], atol=1e-5)


@KEYS
def test_candidates_are_read_and_stored(tmp_path, key_embedding):
    model, candidates = _model(num_heads=2, key_embedding=key_embedding)
    layer = model.get_layer("retrieval")
    np.testing.assert_array_equal(np.asarray(layer.candidate_ids), candidates.ids)
    np.testing.assert_array_equal(np.asarray(layer.candidate_labels), candidates.labels)
    np.testing.assert_array_equal(np.asarray(layer.candidate_numerical), candidates.inputs["numerical"])
    rows = with_candidate_index(model, _rows(6, seed=3))
    before = model.predict(rows, verbose=0)
    features = (candidates.inputs["numerical"], candidates.inputs["categorical"])
    layer.set_candidates(*features, 1.0 - candidates.labels, candidates.ids)  # flip every stored label
    assert np.abs(model.predict(rows, verbose=0) - before).max() > 1e-4
    layer.set_candidates(*features, candidates.labels, candidates.ids)
    # The .keras file alone reproduces the predictions, also in a fresh process after `import tabcli`.
    model.save(tmp_path / "model.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "model.keras").predict(rows, verbose=0), before, atol=1e-6)
    np.savez(tmp_path / "rows.npz", **rows)
    script = (
        "import sys, numpy as np, keras, tabcli\n"
        "rows = dict(np.load(sys.argv[1] + '/rows.npz'))\n"
        "np.save(sys.argv[1] + '/out.npy', keras.saving.load_model(sys.argv[1] + '/model.keras').predict(rows, verbose=0))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, cwd=REPO, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), before, atol=1e-6)


def test_config_defaults_and_errors():
    from tabcli.config import validate_config
    from tabcli.errors import ConfigError

    config = validate_config({"data": {"train": "a.csv", "target": "y"}})
    assert config.model.inter_sample == "retrieval" and config.model.retrieval.k == 96
    assert config.model.retrieval.candidates == "all"
    with pytest.raises(ConfigError, match=r"model\.retrieval\.candidates"):
        validate_config({"data": {"train": "a.csv", "target": "y"}, "model": {"retrieval": {"candidates": 1}}})
    with pytest.raises(ConfigError, match=r"model\.inter_sample"):
        validate_config({"data": {"train": "a.csv", "target": "y"}, "model": {"inter_sample": "knn"}})
    with pytest.raises(ConfigError, match=r"model\.retrieval.*freeze_after_epochs \(4\) needs candidates: all"):
        validate_config({"data": {"train": "a.csv", "target": "y"},
                         "model": {"retrieval": {"candidates": 500, "freeze_after_epochs": 4}}})
    # auto (the default), resolved for the table's size before config.yaml is written: TabR's
    # freeze after 4 epochs where every training row is a candidate and ranked exactly, else off ...
    assert config.model.retrieval.resolve(1000).freeze_after_epochs == 4
    assert config.model.retrieval.search == "exact" and config.model.retrieval.step_candidates == "all"
    capped = validate_config({"data": {"train": "a.csv", "target": "y"}, "model": {"retrieval": {"candidates": 500}}})
    assert capped.model.retrieval.resolve(500).freeze_after_epochs is None
    ranked = validate_config({"data": {"train": "a.csv", "target": "y"},
                              "model": {"retrieval": {"freeze_after_epochs": None}}})
    assert ranked.model.retrieval.resolve(1000).freeze_after_epochs is None
    # ... and one inter-feature block before a retrieval (TabR has none), two before context attention.
    assert config.model.num_feature_blocks == 1
    assert TabularAttentionConfig(inter_sample="context").num_feature_blocks == 2
    assert TabularAttentionConfig(inter_sample="retrieval").num_feature_blocks == 1
    assert TabularAttentionConfig(inter_sample="retrieval", num_feature_blocks=3).num_feature_blocks == 3
    resolved = TabularAttentionConfig(inter_sample="retrieval")
    resolved.retrieval.resolve(1000)
    dumped = resolved.model_dump(mode="json")
    assert dumped["num_feature_blocks"] == 1 and dumped["retrieval"]["freeze_after_epochs"] == 4


def test_a_run_from_before_retrieval_still_predicts_and_explains(tmp_path):
    """A tabcli 0.1 run: context rows, and no inter_sample/retrieval keys in its config.yaml."""
    run_dir = tmp_path / "old"
    args = ["train", str(REPO / "configs/penguins/tabular_attention.yaml"), "--run-dir", str(run_dir), "--quiet",
            "--set", "model.inter_sample=context", "--set", "training.epochs=2", "--set", "model.d_model=16",
            "--set", "model.num_heads=2", "--set", "model.num_feature_blocks=1", "--set", "model.context_rows=8"]
    assert runner.invoke(app, args).exit_code == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    del saved["model"]["inter_sample"], saved["model"]["retrieval"]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved))

    out = tmp_path / "pred.csv"
    result = runner.invoke(app, ["predict", str(run_dir), "--data", str(DATASETS / "penguins.csv"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(DATASETS / "penguins.csv")
    test = pd.read_parquet(run_dir / "predictions/test.parquet")
    predicted = pd.read_csv(out).loc[test["row"]]
    np.testing.assert_allclose(predicted.filter(like="proba_").to_numpy(), test.filter(like="proba_").to_numpy(), atol=1e-5)
    assert len(predicted) == len(test) and len(table) == len(pd.read_csv(out))
    explained = runner.invoke(app, ["explain", str(run_dir), "--rows", "0"])
    assert explained.exit_code == 0, explained.output
    description = json.loads((run_dir / "explain/attention.json").read_text())
    assert "tabular_attention__inter_sample" in description
