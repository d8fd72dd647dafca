"""Explanations of the default model (retrieval) are faithful: planted features come first, blind
rankings fail the trust check, the retrieval attribution is an exact Shapley split, and a row's
explanation does not depend on the rows beside it."""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from typer.testing import CliRunner

from tabcli.cli import app

sys.path.insert(0, str(REPO / "benchmarks"))
from planted import PLANTED, planted_table  # noqa: E402

# One worker runs this file's tests (pytest-xdist), so the module's two trained runs are built once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("explain_faithful")]

runner = CliRunner()


@pytest.fixture(scope="module", params=["binary", "regression"])
def planted_run(request, tmp_path_factory):
    """The default model (no model section) trained on a planted table, then explained."""
    task = request.param
    folder = tmp_path_factory.mktemp(f"planted_{task}")
    planted_table(task, rows=1500, seed=1).to_csv(folder / "planted.csv", index=False)
    config = {"data": {"train": "planted.csv", "target": "target"}, "training": {"epochs": 20}}
    (folder / "planted.yaml").write_text(yaml.safe_dump(config))
    run_dir = folder / "run"
    result = runner.invoke(app, ["train", str(folder / "planted.yaml"), "--run-dir", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    explained = runner.invoke(app, ["explain", str(run_dir), "--rows", "0-19"])
    assert explained.exit_code == 0, explained.output
    return task, run_dir, explained.output


def test_default_model_ranks_the_planted_features_first(planted_run):
    task, run_dir, output = planted_run
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    # The model learned the interaction: ROC AUC far above chance, or RMSE far below the target's spread (~1).
    assert metrics["roc_auc"] > 0.95 if task == "binary" else metrics["rmse"] < 0.5, metrics
    importance = pd.read_csv(run_dir / "explain" / "importance.csv")
    assert set(importance["column"].head(2)) == set(PLANTED), importance
    assert importance["importance"].head(2).sum() > 0.6  # and by a margin, not by a hair
    trust = json.loads((run_dir / "explain" / "trust.json").read_text())
    assert trust["importance"]["passes"], trust["importance"]["verdict"]
    assert "trust check, importance" in output and "passes" in output


def test_each_rows_neighbours_are_explained_by_the_planted_columns(planted_run):
    import tabcli
    from tabcli.runs.run import LoadedRun

    _, run_dir, _ = planted_run
    run = tabcli.load_run(run_dir)
    rows = LoadedRun(run_dir).test_frame().head(20)
    explained = run.explain(rows, top_features=2)
    named = [{c["column"] for c in e["neighbour_columns"]} == set(PLANTED) for e in explained]
    assert np.mean(named) >= 0.8, [e["neighbour_columns"] for e in explained]
    assert all(len(e["neighbours"]) == 10 and e["top_features"] for e in explained)
    report = (run_dir / "explain" / "report.html").read_text()
    assert "made this row's neighbours its neighbours: <b>alpha" in report or "neighbours: <b>beta" in report


def test_blind_rankings_fail_the_trust_check(planted_run):
    """A ranking that ignores the model (uniform, or the model's own reversed) must fail."""
    from tabcli.explain.importance import permutation_importance, primary_metric
    from tabcli.explain.occlusion import reference_frame
    from tabcli.explain.trust import random_deletion, significant, trust_check
    from tabcli.runs.run import LoadedRun

    _, run_dir, _ = planted_run
    run = LoadedRun(run_dir)
    frame = run.test_frame()
    ranking = pd.read_csv(run_dir / "explain" / "importance.csv").set_index("column")["importance"].to_dict()
    permutation, std, _ = permutation_importance(run, frame, 3, 0)
    permutation = significant(permutation, std, 3)
    reference = reference_frame(run)
    metric, baseline = primary_metric(run, frame)
    random_drop = random_deletion(run, frame, reference, baseline)

    def check(values):
        return trust_check(run, frame, values, permutation, reference, baseline, random_drop, metric)

    assert check(ranking).passes
    uniform = check({column: 1.0 for column in ranking})
    reversed_ = check({column: -value for column, value in ranking.items()})
    assert not uniform.passes and uniform.correlation is None
    assert not reversed_.passes and reversed_.top_drop < random_drop
    assert "Not trustworthy" in reversed_.verdict()


def test_a_rows_explanation_does_not_depend_on_its_batch(planted_run):
    from tabcli.explain.ranking import model_ranking
    from tabcli.runs.run import LoadedRun

    _, run_dir, _ = planted_run
    run = LoadedRun(run_dir)
    inputs = run.inputs(run.test_frame().head(6))
    together = model_ranking(run, inputs)
    alone = model_ranking(run, {k: v[4:5] for k, v in inputs.items()})
    np.testing.assert_allclose(alone.per_row[0], together.per_row[4], atol=1e-5)
    np.testing.assert_allclose(alone.neighbour_columns[0], together.neighbour_columns[4], atol=1e-5)


def _shapley(value, players: int) -> np.ndarray:
    """Shapley values of a set function by enumerating every coalition."""
    from math import factorial

    result = np.zeros(players)
    for j in range(players):
        others = [p for p in range(players) if p != j]
        for size in range(players):
            for coalition in itertools.combinations(others, size):
                weight = factorial(size) * factorial(players - size - 1) / factorial(players)
                result[j] += weight * (value(set(coalition) | {j}) - value(set(coalition)))
    return result


def test_neighbour_gap_is_the_shapley_split_of_how_much_closer_the_neighbours_are():
    from tabcli.explain.retrieval_attribution import CandidateTerms, neighbour_gap

    rng = np.random.default_rng(0)
    rows, columns, heads, depth, candidates, k = 3, 4, 2, 3, 30, 5
    row_terms = rng.normal(size=(rows, columns, heads * depth))
    candidate_terms = rng.normal(size=(candidates, columns, heads * depth))
    neighbours = np.stack([rng.choice(candidates, k, replace=False) for _ in range(rows)])
    weights = rng.dirichlet(np.ones(k), size=(rows, heads))
    gap = neighbour_gap(row_terms.astype(np.float32), CandidateTerms.from_array(candidate_terms, heads), neighbours, weights)
    for r in range(rows):
        def value(coalition, r=r):  # the gap if only these columns' terms entered the keys
            keep = np.isin(np.arange(columns), list(coalition))[None, :, None]
            difference = ((row_terms[r][None] - candidate_terms) * keep).sum(axis=1).reshape(candidates, heads, depth)
            squared = (difference ** 2).sum(axis=-1)  # (candidates, heads)
            near = sum((weights[r, h] * squared[neighbours[r], h]).sum() for h in range(heads))
            return squared.mean(axis=0).sum() - near
        np.testing.assert_allclose(gap[r], _shapley(value, columns), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gap[r].sum(), value(set(range(columns))), rtol=1e-4)


@pytest.mark.parametrize("key_embedding", ["linear", "periodic"])
def test_key_terms_sum_to_the_keys(key_embedding):
    from keras import ops

    from tabcli.layers import RetrievalAttention

    rng = np.random.default_rng(0)
    layer = RetrievalAttention(num_candidates=10, d_model=8, num_numerical=3, cardinalities=[4, 2], k=3,
                               num_classes=2, key_embedding=key_embedding)
    layer.build((None, 8))
    numerical = rng.normal(size=(5, 3)).astype("float32")
    categorical = rng.integers(0, 2, size=(5, 2)).astype("int32")
    terms = ops.convert_to_numpy(layer.key_terms(numerical, categorical))
    keys = ops.convert_to_numpy(ops.matmul(layer.features(numerical, categorical), layer.key_kernel))
    assert terms.shape == (5, 5, 8)
    np.testing.assert_allclose(terms.sum(axis=1), keys, atol=1e-5)
