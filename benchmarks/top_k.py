"""Milliseconds of retrieval's exact top-k against a plain ``top_k``, on a real model's ranking.

Usage (from the repository root, ../shared/datasets beside it for the shared tables):

    TABCLI_NUM_THREADS=1 python benchmarks/top_k.py --dataset california_housing
    TABCLI_NUM_THREADS=1 python benchmarks/top_k.py --run runs/bank-1   # a trained retrieval run

Builds the default ``tabular_attention`` model (retrieval) for the table, or loads ``--run``,
computes the ranking of test rows against every stored candidate as a prediction does
(:func:`tabcli.layers.nearest.ranking_scores`), and times :func:`tabcli.layers.nearest.top_k_indices` and ``ops.top_k`` over it at batches
of 4,096, 256 (a training step) and 1 (a served row), interleaved, best of ``--rounds``. Checks
that both give a stable sort's first ``k`` (ties to the lower index). docs/benchmarks.md's
top-k figures (commit 96ad018) used trained runs (``--run``): an untrained model's keys rank differently.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import DATASETS, REPO  # noqa: E402


def _layer_and_rows(args):
    from tabcli.models.candidates import retrieval_layers

    if args.run:
        from tabcli.runs.run import LoadedRun

        run = LoadedRun(args.run)
        model, rows = run.model, run.inputs(run.test_frame())
    else:
        from tabcli.config import load_config
        from tabcli.data.prepare import prepare_data
        from tabcli.models.stored_rows import build_keras_model
        from tabcli.models.spec import ModelSpec

        table = DATASETS[args.dataset]
        base = [f"data.train={table.data}"] if table.data is not None else []
        config = load_config(REPO / table.config, overrides=[*base, "model={type: tabular_attention}"], cwd=REPO)
        data = prepare_data(config.data, seed=config.seed)
        model, _, _ = build_keras_model(config, data, ModelSpec.from_preprocessor(data.preprocessor, 256))
        rows = data.model_inputs("test")
    layers = retrieval_layers(model)
    if not layers:
        sys.exit("error: the model has no retrieval layer (model.inter_sample is not retrieval).")
    repeats = -(-4096 // len(next(iter(rows.values()))))
    return layers[0], {k: np.concatenate([v] * repeats)[:4096] for k, v in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="california_housing", choices=sorted(DATASETS))
    parser.add_argument("--run", help="A trained run directory with a retrieval model (instead of --dataset).")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from tabcli.models.backends.quiet import import_keras_quietly

    import_keras_quietly()
    import tensorflow as tf
    from keras import ops

    from tabcli.layers import nearest
    from tabcli.training.trainer import configure_threads

    configure_threads()
    layer, rows = _layer_and_rows(args)
    numerical, categorical = rows.get("numerical"), rows.get("categorical")
    layer(ops.zeros((1, layer.d_model)), numerical=None if numerical is None else numerical[:1],
          categorical=None if categorical is None else categorical[:1])  # fills the candidate cache
    table, _keys, _hidden = layer._cached_candidates()
    k, num = layer.k, table.shape[0]
    chunk = nearest.top_k_chunk(num, k)
    # As a prediction ranks: candidates padded to a multiple of the group size with -inf scores.
    ranking = nearest.ranking_scores(layer.features(numerical, categorical), table, layer.key_kernel, chunk)
    print(f"{num:,} candidates, k = {k}, groups of {chunk}")
    for batch, calls in ((4096, 3), (256, 20), (1, 300)):
        scores = ranking[:batch]
        exact = np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]
        functions = {"plain top_k": tf.function(lambda s=scores: ops.top_k(s, k)[1]),
                     "top_k_indices": tf.function(lambda s=scores: nearest.top_k_indices(s, k, chunk))}
        times = {name: [] for name in functions}
        same = {name: np.array_equal(np.asarray(f()), exact) for name, f in functions.items()}
        for _ in range(args.rounds):
            for name, function in functions.items():
                started = time.perf_counter()
                for _ in range(calls):
                    np.asarray(function())
                times[name].append((time.perf_counter() - started) / calls * 1000)
        print(f"batch {batch:5d}: " + "; ".join(
            f"{name} {min(values):7.2f} ms (exact: {same[name]})" for name, values in times.items()))


if __name__ == "__main__":
    main()
