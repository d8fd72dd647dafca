"""Retrieval on large tables: sampled candidates per training step, search through an approximate
index (faiss IVF-Flat), the context freeze through it, and runs that store and reload it."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from keras import ops
from typer.testing import CliRunner

from conftest import REPO, TINY
from tabcli.cli import app
from tabcli.layers import RetrievalAttention
from tabcli.layers import candidate_cache
from tabcli.layers.key_index import KeyIndex, exact_neighbours
from tabcli.models.tabular_attention.config import EXACT_SEARCH_MAX_CANDIDATES, INDEX_STEP_CANDIDATES, RetrievalOptions

N, WIDTH, ROWS = 3000, 16, 48


def _layer(step_candidates=None, k=8):
    keras.utils.set_random_seed(0)  # the same weights whichever tests ran before in this process
    rng = np.random.default_rng(0)
    layer = RetrievalAttention(N, WIDTH, num_numerical=4, cardinalities=[3], k=k, num_classes=2,
                               key_embedding="periodic", step_candidates=step_candidates, seed=3)
    layer(np.zeros((2, WIDTH), "float32"), numerical=np.zeros((2, 4), "float32"), categorical=np.zeros((2, 1), "int32"))
    layer.set_candidates(rng.normal(size=(N, 4)).astype("float32"), rng.integers(0, 3, (N, 1)),
                         rng.integers(0, 2, N).astype("float32"), np.arange(N))
    return layer


def _inputs(seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(ROWS, WIDTH)).astype("float32"),
            {"numerical": rng.normal(size=(ROWS, 4)).astype("float32"), "categorical": rng.integers(0, 3, (ROWS, 1)).astype("int32")})


def _exact_index(layer, storage="float32"):
    """An index that probes every list: exhaustive, so (with float32 keys) its neighbours are the exact ones."""
    index = KeyIndex.build(layer.candidate_keys(), ops.convert_to_numpy(layer.key_fingerprint()), layer.k, storage=storage)
    index.index.nprobe = index.nlist
    return index


def _held_rows(variable) -> int:
    """Rows a variable whose first dimension is open holds now."""
    return ops.convert_to_numpy(variable).shape[0]


def _ids(layer, x, features, **kwargs):
    return ops.convert_to_numpy(layer(x, **features, return_attention_scores=True, **kwargs)[1]["ids"])


@pytest.mark.parametrize("cached", [True, False], ids=["keys-from-cache", "keys-from-features"])
def test_index_search_gives_the_exact_neighbours_and_outputs(cached, monkeypatch):
    """Both ways an index call gets its neighbours' keys and ``W1 k_i`` (the candidate cache, or
    computed from the neighbours' features when the cache would exceed its bound) give the exact
    path's neighbours and outputs; above the bound nothing ``N``-sized is kept. The index's
    float16 keys only choose the neighbours: the attention uses their exact keys."""
    if not cached:
        monkeypatch.setattr(candidate_cache, "CANDIDATE_CACHE_MAX_BYTES", 0)
    layer = _layer()
    x, features = _inputs()
    own = {"numerical": ops.convert_to_numpy(layer.candidate_numerical)[:ROWS],
           "categorical": ops.convert_to_numpy(layer.candidate_categorical)[:ROWS]}
    index_of = np.arange(ROWS, dtype="int32")
    exact_out, exact_scores = layer(x, **features, return_attention_scores=True)
    exact_own = _ids(layer, x, own, candidate_index=index_of)
    layer.attach_index(_exact_index(layer))
    out, scores = layer(x, **features, return_attention_scores=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(scores["ids"]), ops.convert_to_numpy(exact_scores["ids"]))
    np.testing.assert_allclose(ops.convert_to_numpy(out), ops.convert_to_numpy(exact_out), atol=1e-5)
    # A candidate's own row is skipped through the index as in the exact ranking.
    through_index = _ids(layer, x, own, candidate_index=index_of)
    np.testing.assert_array_equal(through_index, exact_own)
    assert not np.any(through_index == index_of[:, None])
    assert [_held_rows(v) for v in layer._cache] == ([N] * 3 if cached else [0] * 3)
    layer.attach_index(_exact_index(layer, storage="float16"))
    rounded_out, rounded_scores = layer(x, **features, return_attention_scores=True)
    same = np.all(ops.convert_to_numpy(rounded_scores["ids"]) == ops.convert_to_numpy(exact_scores["ids"]), axis=1)
    assert same.mean() > 0.9  # rounded keys may swap a near tie
    # The same neighbours' keys read back rounded from the float16 index move these outputs by up
    # to 5e-6; the keys computed from the features leave them as the exact path's.
    np.testing.assert_allclose(ops.convert_to_numpy(rounded_out)[same], ops.convert_to_numpy(exact_out)[same], atol=1e-6)


def test_a_built_layer_holds_no_candidate_sized_state_until_it_is_used():
    """The candidate cache and the frozen contexts are allocated by the calls that need them, not
    by build (or load): a layer that predicts through an index never holds them."""
    layer = RetrievalAttention(N, WIDTH, num_numerical=4, cardinalities=[3], k=8, num_classes=2, key_embedding="periodic")
    layer.build((None, WIDTH))
    assert _held_rows(layer._frozen_contexts) == 0 and [_held_rows(v) for v in layer._cache] == [0] * 3
    # ranking table (key_dim 16 < 35 key features: w = 16) + keys + W1 k_i (hidden 32) + 4 numbers + 1 code
    assert layer.candidate_cache_bytes() == 4 * N * ((WIDTH + 1) + WIDTH + 2 * WIDTH + 4 + 1)
    x, features = _inputs()
    layer(x, **features)  # an exact prediction fills the cache
    assert [_held_rows(v) for v in layer._cache] == [N] * 3 and _held_rows(layer._frozen_contexts) == 0
    layer.freeze_contexts()
    assert ops.convert_to_numpy(layer._frozen_contexts).shape == (N, layer._count(True))


def test_an_index_of_other_weights_is_refused():
    layer = _layer()
    x, features = _inputs()
    layer.attach_index(_exact_index(layer))
    layer.key_kernel.assign(ops.convert_to_numpy(layer.key_kernel) * 1.01)
    with pytest.raises(Exception, match="built with other key weights"):
        layer(x, **features)
    layer.build_index()
    layer(x, **features)  # rebuilt: searches again


def test_sampled_training_steps_draw_fresh_distinct_candidates():
    x, features = _inputs()
    index_of = np.arange(ROWS, dtype="int32")
    exact = _layer()
    first = _ids(exact, x, features, candidate_index=index_of, training=True)
    np.testing.assert_array_equal(first, _ids(exact, x, features, candidate_index=index_of, training=True))
    sampled = _layer(step_candidates=200)
    draws = [_ids(sampled, x, features, candidate_index=index_of, training=True) for _ in range(2)]
    assert not np.array_equal(draws[0], draws[1])  # a new sample per call
    for ids in draws:
        assert all(len(set(row)) == len(row) for row in ids)  # drawn without replacement
        assert not np.any(ids == index_of[:, None])  # never the row itself
    # The neighbours of a sample are nearer than random candidates, farther than the exact ones.
    keys = sampled.candidate_keys()
    query = ops.convert_to_numpy(ops.matmul(sampled.features(features["numerical"], features["categorical"]),
                                            sampled.key_kernel))

    def mean_distance(ids):
        return float(np.mean(np.sum((keys[ids] - query[:, None]) ** 2, axis=-1)))

    random_ids = np.random.default_rng(0).integers(0, N, size=draws[0].shape)
    exact_ids = exact_neighbours(query, keys, sampled.k)
    assert mean_distance(exact_ids) < mean_distance(draws[0]) < mean_distance(random_ids)
    # A predicting call ranks every candidate, sample or not: the k nearest, nearest first. Two
    # candidates at (nearly) the same distance may come in either order (float32 sums differ
    # between the layer's ranking and faiss), so the distances are compared, not the positions.
    def distances(ids):
        return np.sum((keys[ids] - query[:, None]) ** 2, axis=-1)

    np.testing.assert_allclose(distances(_ids(sampled, x, features)), distances(exact_ids), rtol=1e-5, atol=1e-5)


def test_context_freeze_through_the_index_equals_the_exact_freeze():
    layer = _layer()
    layer.freeze_contexts()
    exact = ops.convert_to_numpy(layer._frozen_contexts).copy()
    layer.attach_index(_exact_index(layer))
    keys = layer.candidate_keys()

    def distances(table):  # (N, k): a row's distances to its neighbours, nearest first
        return np.sum((keys[table] - keys[:, None]) ** 2, axis=-1)

    through_index = layer._index_contexts(layer._count(True))
    assert not np.any(through_index == np.arange(N)[:, None])
    # The same neighbours, up to the order of candidates at equal distance (float rounding of
    # faiss' and TensorFlow's distances may swap a near tie at the k-th place).
    assert np.mean(through_index == exact) > 0.999
    np.testing.assert_allclose(distances(through_index), distances(exact), rtol=1e-4, atol=1e-5)
    layer.freeze_contexts()
    np.testing.assert_array_equal(ops.convert_to_numpy(layer._frozen_contexts), through_index)


@pytest.mark.parametrize("quantizer,storage", [("flat", "float32"), ("hnsw", "float32"), ("flat", "float16")])
def test_key_index_round_trip_and_short_lists(tmp_path, quantizer, storage):
    rng = np.random.default_rng(0)
    keys = np.concatenate([rng.normal(size=(190, 4)), 50 + rng.normal(size=(10, 4))]).astype("float32")
    index = KeyIndex.build(keys, [1.0, 2.0], k=30, seed=0, quantizer=quantizer, storage=storage)
    assert (index.describe()["quantizer"], index.describe()["storage"]) == (quantizer, storage)
    index.index.nprobe = 1  # the small cluster's list holds 10 keys: fewer than asked for
    queries = keys[190:] + 0.01
    found = index.search(queries, 30)
    assert found.min() >= 0
    np.testing.assert_array_equal(np.sort(found, axis=1), np.sort(exact_neighbours(queries, keys, 30), axis=1))
    index.save(tmp_path / "layer.faiss")
    loaded = KeyIndex.load(tmp_path / "layer.faiss")
    assert loaded.describe() == index.describe()
    np.testing.assert_array_equal(loaded.search(keys[:20], 5), index.search(keys[:20], 5))
    np.testing.assert_array_equal(index.search(keys[:20], 1)[:, 0], np.arange(20))  # each key finds itself
    assert loaded.matches([1.0, 2.0]) and not loaded.matches([1.0, 2.1])
    with pytest.raises(ValueError, match="Cannot return 300 neighbours"):
        index.search(keys[:2], 300)
    with pytest.raises(ValueError, match="quantizer must be"):
        KeyIndex.build(keys, [1.0], k=3, quantizer="ivf")
    with pytest.raises(ValueError, match="storage must be"):
        KeyIndex.build(keys, [1.0], k=3, storage="int8")


def test_key_index_filled_through_a_graph_searches_a_flat_scan_of_the_same_centroids(monkeypatch):
    import tabcli.layers.key_index as key_index

    monkeypatch.setattr(key_index, "GRAPH_FILL_MIN_LISTS", 8)
    rng = np.random.default_rng(1)
    keys = rng.normal(size=(3000, 8)).astype("float32")
    index = KeyIndex.build(keys, [1.0], k=10, seed=0)
    faiss = key_index._faiss()
    quantizer = faiss.downcast_index(index.index.quantizer)
    assert isinstance(quantizer, faiss.IndexFlatL2) and quantizer.ntotal == index.nlist >= 8
    assert index.describe()["quantizer"] == "flat"
    # the graph put (nearly) every key in the list of its nearest centroid, and probing every
    # list is exhaustive search
    invlists = index.index.invlists
    in_list = np.empty(len(keys), np.int64)
    for position in range(index.nlist):
        size = invlists.list_size(position)
        in_list[faiss.rev_swig_ptr(invlists.get_ids(position), size).copy()] = position
    nearest_centroid = exact_neighbours(keys, quantizer.reconstruct_n(0, quantizer.ntotal), 1)[:, 0]
    assert np.mean(in_list == nearest_centroid) > 0.98
    queries = keys[:100] + 0.01
    index.index.nprobe = index.nlist
    np.testing.assert_array_equal(np.sort(index.search(queries, 10), axis=1), np.sort(exact_neighbours(queries, keys, 10), axis=1))


def test_search_auto_is_exact_on_small_tables_and_an_index_on_large_ones():
    small = RetrievalOptions().resolve(EXACT_SEARCH_MAX_CANDIDATES)
    assert (small.search, small.step_candidates, small.freeze_after_epochs) == ("exact", "all", 4)
    large = RetrievalOptions().resolve(EXACT_SEARCH_MAX_CANDIDATES + 1)
    assert (large.search, large.step_candidates, large.freeze_after_epochs) == ("index", INDEX_STEP_CANDIDATES, None)
    assert RetrievalOptions(search="index", step_candidates=500).resolve(400).step_candidates == "all"
    assert RetrievalOptions(search="index", freeze_after_epochs=2).resolve(10**6).freeze_after_epochs == 2


def test_a_run_with_index_search_stores_measures_and_reloads_it(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", str(REPO / "configs/penguins/tabular_attention.yaml"), "--run-dir", str(run_dir), "--quiet"]
    for item in [*TINY, "model.retrieval.search=index", "model.retrieval.step_candidates=60",
                 "model.retrieval.freeze_after_epochs=1"]:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["retrieval"]
    assert (saved["search"], saved["step_candidates"], saved["freeze_after_epochs"]) == ("index", 60, 1)
    report = json.loads((run_dir / "run.json").read_text())["retrieval_index"]["retrieval"]
    # the candidate cache holds the keys, so the index stores them as float16
    assert (report["kind"], report["storage"]) == ("faiss IVF-SQfp16", "float16")
    assert report["rows"] > 0 and report["recall_at_k"] >= 0.9
    assert (run_dir / "retrieval_index" / "retrieval.faiss").is_file()

    from tabcli.runs.run import LoadedRun

    expected = pd.read_parquet(run_dir / "predictions/test.parquet")
    columns = [c for c in expected.columns if c.startswith("proba_")]
    for remove in (False, True):  # a lost index file is built again, with the same neighbours
        if remove:
            shutil.rmtree(run_dir / "retrieval_index")
            (run_dir / "retrieval_index").mkdir()
        run = LoadedRun(run_dir)
        assert run.model.get_layer("retrieval").key_index is not None
        frame = run.test_frame()
        outputs = run.predict_raw(frame)
        np.testing.assert_allclose(outputs, expected[columns].to_numpy(), atol=1e-5)
    # Explanations of such a run re-rank through the index (occluded keys search it too).
    from tabcli.explain.explain import explain_run

    explained = explain_run(run_dir, rows="0,1")
    importance = pd.read_csv(explained.output / "importance.csv")
    assert importance["retrieval_path"].notna().all() and importance["importance"].sum() > 0


def test_predictions_trace_once_for_every_batch_size_and_again_when_an_index_is_attached():
    from tabcli.training.pipeline import predict_function, predict_in_batches

    layer = _layer()
    x_in = keras.Input((WIDTH,), name="x")
    numerical, categorical = keras.Input((4,), name="numerical"), keras.Input((1,), name="categorical", dtype="int32")
    model = keras.Model([x_in, numerical, categorical], layer(x_in, numerical=numerical, categorical=categorical))
    x, features = _inputs()
    inputs = {"x": x, **features}
    exact = predict_in_batches(model, inputs, 20)  # batches of 20, 20 and 8 rows
    function = predict_function(model, inputs)
    assert function.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(exact, ops.convert_to_numpy(layer(x, **features)), atol=1e-5)
    layer.attach_index(_exact_index(layer))
    through_index = predict_in_batches(model, inputs, 20)
    assert predict_function(model, inputs) is not function  # the index is searched by a new graph
    np.testing.assert_allclose(through_index, exact, atol=1e-5)


def test_the_output_spec_matches_a_call():
    layer = _layer()
    x, features = _inputs()
    for kwargs in ({}, {"candidate_index": np.full(ROWS, -1, "int32")}):
        spec = layer.compute_output_spec(keras.KerasTensor((None, WIDTH)), **features, return_attention_scores=True, **kwargs)
        out, scores = layer(x, **features, return_attention_scores=True, **kwargs)
        assert spec[0].shape == (None, WIDTH) and spec[0].dtype == out.dtype
        for name, value in scores.items():
            assert spec[1][name].shape[1:] == tuple(value.shape[1:]), name
            assert spec[1][name].dtype == keras.backend.standardize_dtype(value.dtype), name


def test_train_metrics_of_a_large_split_come_from_a_seeded_sample_predicted_leave_one_out(tmp_path, monkeypatch):
    import tabcli.training.train as train_module
    from tabcli.prediction.tables import frame_metrics

    monkeypatch.setattr(train_module, "TRAIN_METRIC_ROWS", 40)
    seen = {}
    original = train_module.split_metrics

    def split_metrics(data, predict, seed=0):
        result = original(data, predict, seed)
        seen.update(data=data, whole=predict(data.model_inputs("train"), "train", None), outputs=result[1])
        return result

    monkeypatch.setattr(train_module, "split_metrics", split_metrics)
    run_dir = tmp_path / "run"
    args = ["train", str(REPO / "configs/penguins/tabular_attention.yaml"), "--run-dir", str(run_dir), "--quiet"]
    for item in TINY:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "run.json").read_text())["metric_rows"] == {"train": 40}

    data, whole = seen["data"], seen["whole"]
    rows = train_module.metric_rows("train", len(data.targets["train"]), seed=42)  # the config's seed
    assert len(rows) == len(np.unique(rows)) == 40
    # The sampled rows get the outputs the whole split gets at their positions: each still
    # excludes itself from its neighbours.
    np.testing.assert_allclose(seen["outputs"]["train"], whole[rows], atol=1e-5)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    expected = frame_metrics(data.preprocessor, data.frame("train").iloc[rows], whole[rows], what="the train rows")
    assert metrics["train"]["accuracy"] == pytest.approx(expected["accuracy"])
    assert len(seen["outputs"]["test"]) == len(data.targets["test"])  # other splits whole


@pytest.mark.parametrize("chunk", [7, 64, 5000])
def test_exact_search_over_key_chunks_equals_one_exhaustive_search(chunk):
    from tabcli.layers.key_index import exact_neighbours_in_chunks

    layer = _layer()
    queries = np.random.default_rng(2).normal(size=(30, layer.key_kernel.shape[1])).astype("float32")
    expected = exact_neighbours(queries, layer.candidate_keys(), 20)
    np.testing.assert_array_equal(layer.exact_candidate_neighbours(queries, 20, batch_size=chunk), expected)
    with pytest.raises(ValueError, match="count=20"):
        exact_neighbours_in_chunks(queries, iter([(0, layer.candidate_keys()[:5])]), 20)
