"""Milliseconds per training step of each model, measured side by side in one process.

Usage (from the repository root, ../shared/datasets beside it for the shared tables):

    python benchmarks/step_time.py --dataset bank_marketing ft_transformer tabular_attention \
        "tabular_attention|model.context_rows=0" multi_resolution interpretable ensemble mlp
    python benchmarks/step_time.py --dataset california_housing --train cal-1000000.parquet \
        tabular_attention "tabular_attention|model.inter_sample=context"

Each model is a family name, ``ft_transformer`` (the reference), or a family with ``|``-separated
config overrides; a trailing ``|frozen`` on a retrieval model measures its steps after TabR's
context freeze (``model.retrieval.freeze_after_epochs``: neighbours read from a table instead of
ranked), e.g. ``"tabular_attention|model.inter_sample=retrieval|frozen"``. All models are built first and warmed up (5 steps, which trace the graphs);
then ``--rounds`` rounds, each running ``--steps`` ``train_on_batch`` calls on the same batch of
``--batch-size`` training rows per model, models interleaved so that load changes on a shared
machine hit every model alike. Prints the best round (least disturbed) and all rounds.

With ``--predict``, each round instead times ``predict_model`` (as ``tabcli predict`` runs the
model) over 4 batches of 4,096 test rows, preprocessed, and prints rows per second: the model's
share of prediction throughput, interleaved like the training steps.

These are the figures of docs/benchmarks.md's speed section: on a busy VM whole-epoch timings of
the same run varied by 1.6x, rounds of these interleaved step loops by up to about 10 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import DATASETS, FT_TRANSFORMER, REPO, THROUGHPUT_BATCH  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--dataset", default="bank_marketing", choices=sorted(DATASETS))
    parser.add_argument("--train", type=Path, help="another table for the dataset's config (e.g. scale.py's 1M-row one)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--predict", action="store_true", help="Time predictions (rows/s, batch 4096) instead of training steps.")
    args = parser.parse_args()

    from tabcli.models.backends.quiet import import_keras_quietly

    import_keras_quietly()
    from ft_transformer import build_ft_transformer

    from tabcli.config import load_config
    from tabcli.data.prepare import prepare_data
    from tabcli.models.stored_rows import build_keras_model, resolve_retrieval
    from tabcli.models.candidates import retrieval_layers, with_candidate_index
    from tabcli.models.spec import ModelSpec
    from tabcli.training.trainer import compile_model, configure_threads, fit_targets

    configure_threads()
    table = DATASETS[args.dataset]
    source = args.train.resolve() if args.train is not None else table.data
    base = [f"data.train={source}"] if source is not None else []
    data = None
    models = {}
    for name in args.models:
        family, *sets = name.split("|")
        frozen = "frozen" in sets
        sets = [item for item in sets if item != "frozen"]
        config = load_config(REPO / table.config, overrides=[*base, f"model={{type: {'mlp' if family == 'ft_transformer' else family}}}", *sets], cwd=REPO)
        if data is None:
            data = prepare_data(config.data, seed=config.seed)
            spec = ModelSpec.from_preprocessor(data.preprocessor, args.batch_size)
            x = {k: v[: args.batch_size] for k, v in data.model_inputs("train").items()}
            y = fit_targets(spec.task, data.targets["train"][: args.batch_size])
        if family == "ft_transformer":
            model, candidates = build_ft_transformer(spec, **FT_TRANSFORMER), None
        else:  # search, step_candidates and the freeze settled for the table, as tabcli train does
            resolve_retrieval(config.model, len(data.targets["train"]))
            model, _, candidates = build_keras_model(config, data, spec)
        compile_model(model, spec.task, config.training)
        inputs = x
        if candidates is not None:  # the batch's rows are candidates: they skip themselves
            inputs = with_candidate_index(model, x, candidates.training_index()[: args.batch_size])
        if frozen:
            for layer in retrieval_layers(model):
                layer.freeze_contexts()
        for _ in range(5):
            model.train_on_batch(inputs, y)
        models[name] = (model, inputs)

    if args.predict:
        _predict_rounds(models, data, args.rounds, args.dataset)
        return
    rounds = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, (model, inputs) in models.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(inputs, y)
            rounds[name].append((time.perf_counter() - started) / args.steps * 1000)
    print(f"{args.dataset}: batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds")
    for name, (model, _inputs) in models.items():
        print(f"{name:55s} {model.count_params():>9,d} parameters  {min(rounds[name]):6.1f} ms/step  "
              f"(rounds: {', '.join(f'{v:.1f}' for v in rounds[name])})")


def _predict_rounds(models: dict, data, rounds: int, dataset: str, batch: int = THROUGHPUT_BATCH) -> None:
    """Rows per second of ``predict_model`` over 4 batches of ``batch`` test rows (tiled as in
    ``worker.py``'s throughput figure), per round."""
    from worker import _tile

    from tabcli.training.trainer import predict_model

    tiled = {k: v[: 4 * batch] for k, v in _tile(data.model_inputs("test"), 4 * batch).items()}
    speeds = {name: [] for name in models}
    for name, (model, _inputs) in models.items():
        predict_model(model, {k: v[:batch] for k, v in tiled.items()}, batch)  # warm-up (tracing)
    for _ in range(rounds):
        for name, (model, _inputs) in models.items():
            started = time.perf_counter()
            predict_model(model, tiled, batch)
            speeds[name].append(4 * batch / (time.perf_counter() - started))
    print(f"{dataset}: predictions, batch {batch}, {4 * batch} rows x {rounds} rounds (preprocessed inputs)")
    for name, values in speeds.items():
        print(f"{name:55s} {max(values):9,.0f} rows/s  (rounds: {', '.join(f'{v:,.0f}' for v in values)})")


if __name__ == "__main__":
    main()
