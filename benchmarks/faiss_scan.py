"""What an IVF index search costs per 4,096-query batch, by how the lists store their keys.

Usage (from the repository root):

    python benchmarks/faiss_scan.py --keys 650000 --nprobe 12 8
    python benchmarks/faiss_scan.py --index RUN/retrieval_index/retrieval.faiss --target-recall 0.95

Keys: by default a seeded Gaussian mixture (2,000 centres, width 64), as many as the retrieval
candidates of a 1-million-row table, and 4,096 queries that are keys with a little noise. With
``--index``, the keys a trained run stored (its ``retrieval_index``), 4,096 of them held out as the
queries (new rows are not in the index either). For float32 lists (``IndexIVFFlat``, what tabcli
stores), float16 and 8-bit scalar-quantized lists, each with the centroids searched by a scan
(flat) or a graph (HNSW, what tabcli uses from 1,024 lists on): seconds per batch (mean of 3 after
a warm-up), the share of it spent finding the lists (faiss' ``indexIVF_stats``) and recall@96
against exact search, at each ``--nprobe``, or at the fewest lists probed that reach
``--target-recall`` (bisected as tabcli calibrates its index).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

QUERIES = 4096


def _keys(args, rng):
    """``(keys, queries)`` float32: the run's stored keys minus the held-out queries, or the mixture."""
    import faiss

    if args.index:
        stored = faiss.read_index(args.index)
        stored.make_direct_map()
        everything = stored.reconstruct_n(0, stored.ntotal)
        held = np.zeros(len(everything), bool)
        held[rng.choice(len(everything), QUERIES, replace=False)] = True
        return np.ascontiguousarray(everything[~held]), np.ascontiguousarray(everything[held])
    width = 64
    centres = rng.normal(size=(2000, width)).astype("float32") * 3
    keys = (centres[rng.integers(0, 2000, args.keys)] + rng.normal(size=(args.keys, width))).astype("float32")
    queries = keys[rng.choice(args.keys, QUERIES)] + 0.1 * rng.normal(size=(QUERIES, width)).astype("float32")
    return keys, queries


def _recall(found, exact) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(found, exact)]))


def _fewest_lists(index, queries, exact, k: int, target: float) -> int:
    """The fewest lists probed whose recall@k on ``queries`` reaches ``target`` (doubling from 8,
    then bisection to within an eighth)."""
    def recall_with(nprobe):
        index.nprobe = nprobe
        return _recall(index.search(queries, k)[1], exact)

    low, high = 0, min(8, index.nlist)
    while recall_with(high) < target and high < index.nlist:
        low, high = high, min(2 * high, index.nlist)
    while high - low > max(1, high // 8):
        middle = (low + high) // 2
        if recall_with(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=650_000, help="Synthetic keys (without --index).")
    parser.add_argument("--index", help="A run's retrieval_index/retrieval.faiss: search its own keys.")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[12, 8])
    parser.add_argument("--target-recall", type=float, help="Calibrate nprobe per index to this recall@k instead.")
    parser.add_argument("--quantizers", nargs="+", default=["flat", "hnsw"], choices=["flat", "hnsw"])
    parser.add_argument("--k", type=int, default=96)
    args = parser.parse_args()

    import faiss

    rng = np.random.default_rng(0)
    keys, queries = _keys(args, rng)
    n, width = keys.shape
    nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))
    exact = faiss.knn(queries[:500], keys, args.k)[1]
    calibration = faiss.knn(queries[-256:], keys, args.k)[1]
    kinds = {
        "float32 (IVFFlat)": lambda q: faiss.IndexIVFFlat(q, width, nlist),
        "float16 (SQfp16)": lambda q: faiss.IndexIVFScalarQuantizer(q, width, nlist, faiss.ScalarQuantizer.QT_fp16),
        "8-bit (SQ8)": lambda q: faiss.IndexIVFScalarQuantizer(q, width, nlist, faiss.ScalarQuantizer.QT_8bit),
    }
    print(f"{n:,} keys of width {width}, {nlist} lists, {faiss.omp_get_max_threads()} threads")
    print(f"| lists store | centroids | nprobe | s per {QUERIES:,} queries | of which finding lists | recall@{args.k} |")
    print("|---|---|---|---|---|---|")
    sample = keys[rng.choice(n, min(n, 40 * nlist), replace=False)]
    for name, make in kinds.items():
        for quantizer in args.quantizers:
            index = make(faiss.IndexHNSWFlat(width, 32) if quantizer == "hnsw" else faiss.IndexFlatL2(width))
            if quantizer == "hnsw":
                index.clustering_index = faiss.IndexFlatL2(width)
            index.cp.niter = 10
            index.train(sample)
            index.add(keys)
            probes = args.nprobe if args.target_recall is None else [
                _fewest_lists(index, queries[-256:], calibration, args.k, args.target_recall)]
            for nprobe in probes:
                index.nprobe = nprobe
                index.search(queries, args.k)
                stats = faiss.cvar.indexIVF_stats
                stats.reset()
                started = time.perf_counter()
                for _ in range(3):
                    index.search(queries, args.k)
                seconds = (time.perf_counter() - started) / 3
                finding = stats.quantization_time / 1000 / 3
                recall = _recall(index.search(queries[:500], args.k)[1], exact)
                print(f"| {name} | {quantizer} | {nprobe} | {seconds:.3f} | {finding:.3f} | {recall:.4f} |", flush=True)


if __name__ == "__main__":
    main()
