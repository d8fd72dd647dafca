"""Prediction rate of the default model per kind of retrieval index, beside ``context``, in one process.

Usage (from the repository root):

    python benchmarks/scale.py ...   # or any table; e.g. write one with scale.write_table
    python benchmarks/index_predict.py --table cal-1000000.parquet --target MedHouseVal

Reads the table through tabcli's data path, builds the default model and the ``context`` model as
``tabcli train`` would, trains each for ``--steps`` steps (so the keys are not those of the
initial weights), then builds one index of the default model's candidate keys per variant
(``quantizer`` × ``storage`` of :class:`tabcli.layers.key_index.KeyIndex`) and times
``predict_model`` on ``--rows`` test rows at each batch size. The models and variants are timed
in alternating rounds, so that a slow spell of the machine falls on all of them; prints the
median and range of rows/s per batch size.

``--recall-probes 8 16 32 ...`` also prints, for the float16 index, recall@k against exhaustive
search on the keys of 500 test rows (new rows, as predictions see them) and the search time at
each number of lists probed: how hard the keys are to search. ``--rounds 0`` skips the timing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {"hnsw float32": ("hnsw", "float32"), "flat float32": ("flat", "float32"), "flat float16": ("flat", "float16")}


def _trained(path: Path, target: str, name: str, steps: int, data=None):
    """(model, prepared data): ``name`` ('default' or 'context') after ``steps`` training steps."""
    import numpy as np

    from scale import BATCH, MODELS
    from tabcli.config import validate_config
    from tabcli.config.loader import apply_overrides
    from tabcli.data.prepare import prepare_data
    from tabcli.models.candidates import with_candidate_index
    from tabcli.models.spec import ModelSpec
    from tabcli.models.stored_rows import build_keras_model, resolve_retrieval
    from tabcli.training.trainer import compile_model, fit_targets

    raw = {"data": {"train": str(path), "target": target}, "seed": 0, "model": dict(MODELS[name])}
    config = validate_config(apply_overrides(raw, []))
    data = data or prepare_data(config.data, seed=0)
    resolve_retrieval(config.model, len(data.targets["train"]))
    spec = ModelSpec.from_preprocessor(data.preprocessor, BATCH)
    model, _, candidates = build_keras_model(config, data, spec)
    compile_model(model, spec.task, config.training)
    inputs = data.model_inputs("train")
    if candidates is not None:
        inputs = with_candidate_index(model, inputs, candidates.training_index())
    targets = fit_targets(spec.task, data.targets["train"])
    rng = np.random.default_rng(0)
    for _ in range(steps):
        rows = rng.integers(0, len(targets), size=BATCH)
        model.train_on_batch({k: v[rows] for k, v in inputs.items()}, targets[rows])
    return model, data


def _recall_curve(layer, index, keys, test: dict, probes: list[int]) -> None:
    """Recall@k and search seconds of ``index`` on 500 test rows' keys, per number of lists probed."""
    from tabcli.layers.key_index import exact_neighbours, recall_at_k

    numerical, categorical = (test.get(name) for name in ("numerical", "categorical"))
    queries = layer.row_keys(None if numerical is None else numerical[:500], None if categorical is None else categorical[:500])
    exact = exact_neighbours(queries, keys, layer.k)
    print(f"\n| lists probed (of {index.nlist}) | recall@{layer.k} | s per {len(queries)} queries |\n|---|---|---|")
    calibrated = index.nprobe
    for nprobe in probes:
        index.index.nprobe = nprobe
        began = time.perf_counter()
        found = index.search(queries, layer.k)
        seconds = time.perf_counter() - began
        print(f"| {nprobe} | {recall_at_k(found, exact):.4f} | {seconds:.3f} |", flush=True)
    index.index.nprobe = calibrated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", type=int, default=16_384, help="test rows predicted per timing")
    parser.add_argument("--batches", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--recall-probes", type=int, nargs="*", default=[])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()

    from tabcli.models.backends.quiet import import_keras_quietly

    import_keras_quietly()
    from keras import ops

    from tabcli.layers.key_index import KeyIndex
    from tabcli.models.candidates import retrieval_layers
    from tabcli.training.trainer import configure_threads, predict_model, set_seeds

    configure_threads()
    set_seeds(0)
    default, data = _trained(args.table, args.target, "default", args.steps)
    context, _ = _trained(args.table, args.target, "context", args.steps, data)
    layer = retrieval_layers(default)[0]
    keys, fingerprint = layer.candidate_keys(), ops.convert_to_numpy(layer.key_fingerprint())
    indexes = {}
    for label in dict.fromkeys([*args.variants, *(["flat float16"] if args.recall_probes else [])]):
        quantizer, storage = VARIANTS[label]
        indexes[label] = KeyIndex.build(keys, fingerprint, layer.k, seed=0, quantizer=quantizer, storage=storage)
        print(label, indexes[label].describe(), flush=True)
    test = {k: v[:args.rows] for k, v in data.model_inputs("test").items()}
    rows = len(next(iter(test.values())))
    if args.recall_probes:
        _recall_curve(layer, indexes["flat float16"], keys, test, args.recall_probes)
    if args.rounds < 1:
        return
    print(f"\n| batch | model | rows/s (median of {args.rounds}) | range |\n|---|---|---|---|")
    for batch in args.batches:
        rates: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for label in ["context", *indexes]:
                model = context if label == "context" else default
                if label != "context":
                    layer.attach_index(indexes[label])
                predict_model(model, {k: v[:batch] for k, v in test.items()}, batch)
                began = time.perf_counter()
                predict_model(model, test, batch)
                rates.setdefault(label, []).append(rows / (time.perf_counter() - began))
        for label, values in rates.items():
            name = "context" if label == "context" else f"default, {label}"
            print(f"| {batch:,} | {name} | {statistics.median(values):,.0f} | {min(values):,.0f}–{max(values):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
