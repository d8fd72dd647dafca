"""What an IVF index search costs per 4,096-query batch, by how the lists store their keys.

Usage (from the repository root):

    python benchmarks/faiss_scan.py --keys 650000 --nprobe 12 8

Keys: a seeded Gaussian mixture (2,000 centres, width 64), as many as the retrieval candidates of
a 1-million-row table; queries are 4,096 keys with a little noise. For float32 lists
(``IndexIVFFlat``, what tabcli stores), float16 and 8-bit scalar-quantized lists, at each
``nprobe``: seconds per batch (mean of 3 after a warm-up) and recall@96 against exact search.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=650_000)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[12, 8])
    parser.add_argument("--k", type=int, default=96)
    args = parser.parse_args()

    import faiss

    rng = np.random.default_rng(0)
    width = 64
    centres = rng.normal(size=(2000, width)).astype("float32") * 3
    keys = (centres[rng.integers(0, 2000, args.keys)] + rng.normal(size=(args.keys, width))).astype("float32")
    queries = keys[rng.choice(args.keys, 4096)] + 0.1 * rng.normal(size=(4096, width)).astype("float32")
    nlist = max(1, min(int(4 * np.sqrt(args.keys)), args.keys // 39))
    exact = faiss.knn(queries[:500], keys, args.k)[1]
    kinds = {
        "float32 (IVFFlat)": lambda q: faiss.IndexIVFFlat(q, width, nlist),
        "float16 (SQfp16)": lambda q: faiss.IndexIVFScalarQuantizer(q, width, nlist, faiss.ScalarQuantizer.QT_fp16),
        "8-bit (SQ8)": lambda q: faiss.IndexIVFScalarQuantizer(q, width, nlist, faiss.ScalarQuantizer.QT_8bit),
    }
    print(f"{args.keys:,} keys, {nlist} lists, {faiss.omp_get_max_threads()} threads")
    print("| lists store | nprobe | s per 4,096 queries | recall@%d |" % args.k)
    print("|---|---|---|---|")
    for name, make in kinds.items():
        index = make(faiss.IndexFlatL2(width))
        index.cp.niter = 10
        index.train(keys[rng.choice(args.keys, min(args.keys, 40 * nlist), replace=False)])
        index.add(keys)
        for nprobe in args.nprobe:
            index.nprobe = nprobe
            index.search(queries, args.k)
            started = time.perf_counter()
            for _ in range(3):
                index.search(queries, args.k)
            seconds = (time.perf_counter() - started) / 3
            found = index.search(queries[:500], args.k)[1]
            recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(found, exact)])
            print(f"| {name} | {nprobe} | {seconds:.3f} | {recall:.4f} |", flush=True)


if __name__ == "__main__":
    main()
