"""An approximate nearest-neighbour index of retrieval keys (faiss IVF), for large tables."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

__all__ = ["GRAPH_FILL_MIN_LISTS", "KeyIndex", "drop_own_rows", "exact_neighbours", "exact_neighbours_in_chunks", "recall_at_k"]

#: Lists probed are doubled from this until the sampled recall@k reaches the target.
_FIRST_NPROBE = 8
#: Queries (stored keys) that calibrate the number of lists probed.
_CALIBRATION_QUERIES = 256
#: Training points per list for the k-means of the coarse quantizer (faiss asks for at least 39).
_POINTS_PER_LIST = 40
#: k-means iterations of the coarse quantizer (faiss' default 25 costs 2.5x the time for
#: centroids the lists do not need to be exact).
_KMEANS_ITERATIONS = 10
#: Lists from which the keys are assigned to their lists through a graph (HNSW) of the centroids
#: while the index is filled, rather than by comparing each key with every centroid.
GRAPH_FILL_MIN_LISTS = 1024
#: How the lists store the keys: faiss' scalar quantizer codes.
_STORAGES = ("float32", "float16")
#: Neighbours per node of that graph (faiss' ``M``).
_HNSW_LINKS = 32


def _faiss():
    try:
        import faiss
    except ImportError as error:  # a core dependency; an environment without it is broken
        raise ImportError("search: index needs faiss-cpu (pip install faiss-cpu).") from error
    return faiss


def exact_neighbours(queries: np.ndarray, keys: np.ndarray, count: int) -> np.ndarray:
    """Positions ``(rows, count)`` int64 of the ``count`` keys nearest to each query by squared L2
    distance, nearest first, by exhaustive search (faiss ``knn``, blocked BLAS).

    Args:
        queries: float32 ``(rows, d)``.
        keys: float32 ``(N, d)``, ``count <= N``.
    """
    faiss = _faiss()
    _, found = faiss.knn(np.ascontiguousarray(queries, dtype=np.float32),
                         np.ascontiguousarray(keys, dtype=np.float32), int(count))
    return found


def exact_neighbours_in_chunks(queries: np.ndarray, chunks, count: int) -> np.ndarray:
    """:func:`exact_neighbours` over keys that arrive in chunks: ``chunks`` yields ``(start,
    keys)`` with keys float32 ``(rows_i, d)`` at positions ``start...``; a running top-``count``
    (faiss ``ResultHeap``) keeps the nearest seen so far. Returns ``(rows, count)`` int64 positions,
    nearest first.

    Raises:
        ValueError: when the chunks hold fewer than ``count`` keys in all.
    """
    faiss = _faiss()
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    heap = faiss.ResultHeap(len(queries), int(count))
    seen = 0
    for start, keys in chunks:
        keys = np.ascontiguousarray(keys, dtype=np.float32)
        distances, found = faiss.knn(queries, keys, min(int(count), len(keys)))
        heap.add_result(distances, found + start)
        seen += len(keys)
    if seen < count:
        raise ValueError(f"Expected at least count={count} keys to search, got {seen}.")
    heap.finalize()
    return heap.I


def drop_own_rows(found: np.ndarray, own: np.ndarray, count: int) -> np.ndarray:
    """Column positions ``(rows, count)`` that keep ``found`` ``(rows, r)`` (nearest first) without
    each row's own candidate ``own`` ``(rows,)`` (``-1``: none): the row itself, if found, moves
    last, the order is otherwise kept, then the cut to ``count <= r`` columns."""
    width = found.shape[1]
    itself = found == np.asarray(own)[:, None]
    if not itself.any():  # e.g. new rows (own -1): the first columns, without a sort
        return np.broadcast_to(np.arange(count), (len(found), count))
    return np.argsort(itself * width + np.arange(width), axis=1, kind="stable")[:, :count]


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row's exact ``k`` nearest that ``found`` holds: recall@k in ``[0, 1]``.

    Args:
        found: ``(rows, k)`` positions from the index.
        exact: ``(rows, k)`` positions from :func:`exact_neighbours`.
    """
    k = exact.shape[1]
    return float(np.mean([len(np.intersect1d(a, b, assume_unique=False)) / k for a, b in zip(found, exact)]))


class KeyIndex:
    """Squared-L2 nearest-neighbour search over ``N`` keys through an inverted-file index with
    distances computed inside the probed lists (faiss ``IndexIVFFlat`` or, with float16 storage,
    ``IndexIVFScalarQuantizer``: Jégou et al., "Product Quantization for Nearest Neighbor
    Search", TPAMI 2011, §IV; Johnson et al., "Billion-scale similarity search with GPUs", 2017).

    The keys are clustered into ``nlist = min(4 sqrt(N), N / 39)`` lists by k-means on a seeded
    sample of ``40 nlist`` keys; a query is compared with the keys of its ``nprobe`` nearest
    lists, which it finds by comparing itself with every centroid (for a batch of queries, one
    matrix product). Filling the lists assigns each of the ``N`` keys to its nearest centroid;
    from :data:`GRAPH_FILL_MIN_LISTS` lists on, that assignment goes through a graph of the
    centroids (HNSW: Malkov and Yashunin, "Efficient and robust approximate nearest neighbor
    search using Hierarchical Navigable Small World graphs", TPAMI 2018), which is then
    replaced by the plain list of centroids for searching: for the batches of thousands of
    rows tabcli predicts, scanning every centroid is faster than the graph (docs/benchmarks.md,
    "Large tables"). ``quantizer="hnsw"`` keeps the graph for searching instead.

    ``nprobe`` is chosen at build time: the fewest lists (doubled from 8, then bisected to
    within an eighth) for which recall@k against exhaustive search on 256 stored keys reaches
    ``target_recall``. A search then costs about ``nlist + nprobe N / nlist`` distances instead
    of ``N``.

    With ``storage="float16"`` the lists hold each key in 2 bytes per component instead of 4
    (faiss' ``QT_fp16`` scalar quantizer, by residual from the list's centroid): the search,
    bound by reading the lists, is faster and its distances rank keys rounded to about 3
    significant digits. The index only finds positions; callers read the neighbours' exact keys
    elsewhere (the retrieval layer computes them from the candidates' features).

    Memory: the keys (``4 d`` bytes each, ``2 d`` with float16 storage) plus an 8-byte id per
    key, and ``4 d nlist`` bytes of centroids.

    Args:
        index: A trained and filled ``faiss.IndexIVFFlat``.
        fingerprint: float ``(m,)``: the key weights' fingerprint the keys were computed with
            (:meth:`~tabcli.layers.RetrievalAttention.key_fingerprint`).
        recall: The calibration's recall@k.
        seconds: Build time in seconds.
    """

    def __init__(self, index, fingerprint, recall: float | None = None, seconds: float | None = None):
        self.index = index
        self.fingerprint = np.asarray(fingerprint, dtype=np.float64)
        self.recall = recall
        self.seconds = seconds

    @classmethod
    def build(cls, keys: np.ndarray, fingerprint, k: int, seed: int = 0, target_recall: float = 0.95,
              quantizer: str = "flat", storage: str = "float32") -> "KeyIndex":
        """Cluster, fill and calibrate an index of ``keys``.

        Args:
            keys: float32 ``(N, d)`` candidate keys, ``N >= 1``.
            fingerprint: See the class.
            k: Neighbours a search returns (calibrates ``nprobe``).
            seed: Seed of the k-means sample and initialisation and of the calibration queries.
            target_recall: Recall@k the calibration aims for, in ``(0, 1]``.
            quantizer: How a query's nearest lists are found: ``"flat"`` (every centroid) or
                ``"hnsw"`` (a graph of the centroids: faster for one query at a time over many
                lists, slower for large batches).
            storage: ``"float32"`` (exact keys) or ``"float16"`` (see the class).

        Raises:
            ValueError: If ``keys`` is not a non-empty 2-D array, or on an unknown ``quantizer``
                or ``storage``.
        """
        faiss = _faiss()
        keys = np.ascontiguousarray(keys, dtype=np.float32)
        if keys.ndim != 2 or not len(keys):
            raise ValueError(f"Expected keys of shape (N >= 1, d); received {keys.shape}.")
        started = time.perf_counter()
        n, width = keys.shape
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        if quantizer not in ("flat", "hnsw"):
            raise ValueError(f"quantizer must be 'flat' or 'hnsw'; received {quantizer!r}.")
        if storage not in _STORAGES:
            raise ValueError(f"storage must be one of {_STORAGES}; received {storage!r}.")
        graph = quantizer == "hnsw" or nlist >= GRAPH_FILL_MIN_LISTS
        coarse = faiss.IndexHNSWFlat(width, _HNSW_LINKS) if graph else faiss.IndexFlatL2(width)
        if storage == "float16":
            index = faiss.IndexIVFScalarQuantizer(coarse, width, nlist, faiss.ScalarQuantizer.QT_fp16)
        else:
            index = faiss.IndexIVFFlat(coarse, width, nlist)
        if graph:  # k-means assigns points by scanning every centroid; the graph is built once, after
            index.clustering_index = faiss.IndexFlatL2(width)
        index.cp.niter = _KMEANS_ITERATIONS
        index.cp.seed = int(seed)
        rng = np.random.default_rng(seed)
        sample = keys if n <= _POINTS_PER_LIST * nlist else keys[np.sort(rng.choice(n, _POINTS_PER_LIST * nlist, replace=False))]
        index.train(sample)
        index.add(keys)
        if graph and quantizer == "flat":  # the graph filled the lists; searches scan the centroids
            flat = faiss.IndexFlatL2(width)
            flat.add(coarse.reconstruct_n(0, nlist))
            index.quantizer = flat
            index.own_fields = True  # the index frees the flat quantizer; Python must not
            flat.this.disown()
        count = min(int(k), n)
        queries = keys[rng.choice(n, min(n, _CALIBRATION_QUERIES), replace=False)]
        exact = exact_neighbours(queries, keys, count)

        def recall_with(nprobe: int) -> float:
            index.nprobe = nprobe
            return recall_at_k(index.search(queries, count)[1], exact)

        # Doubling finds a number of lists that reaches the target; bisection then the fewest.
        low, high = 0, min(_FIRST_NPROBE, nlist)
        recall = recall_with(high)
        while recall < target_recall and high < nlist:
            low, high = high, min(2 * high, nlist)
            recall = recall_with(high)
        while high - low > max(1, high // 8):
            middle = (low + high) // 2
            found = recall_with(middle)
            if found >= target_recall:
                high, recall = middle, found
            else:
                low = middle
        index.nprobe = high
        return cls(index, fingerprint, recall=recall, seconds=time.perf_counter() - started)

    @property
    def size(self) -> int:
        """Keys in the index."""
        return int(self.index.ntotal)

    @property
    def nlist(self) -> int:
        """Inverted lists."""
        return int(self.index.nlist)

    @property
    def nprobe(self) -> int:
        """Lists probed per query."""
        return int(self.index.nprobe)

    def matches(self, fingerprint, tolerance: float = 1e-6) -> bool:
        """Whether ``fingerprint`` is (within ``tolerance``, relative) the one the keys were built with."""
        fingerprint = np.asarray(fingerprint, dtype=np.float64)
        return fingerprint.shape == self.fingerprint.shape and bool(
            np.all(np.abs(fingerprint - self.fingerprint) <= tolerance * (1.0 + np.abs(self.fingerprint))))

    def search(self, queries: np.ndarray, count: int) -> np.ndarray:
        """Positions ``(rows, count)`` int32 of the keys nearest to each query, nearest first.

        A row whose probed lists hold fewer than ``count`` keys is searched again over every
        list (exhaustively), so every position is a real key.

        Raises:
            ValueError: If ``count`` exceeds the keys in the index.
        """
        if count > self.size:
            raise ValueError(f"Cannot return {count} neighbours from an index of {self.size} keys.")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        found = self.index.search(queries, int(count))[1]
        short = np.flatnonzero((found < 0).any(axis=1))
        if short.size:
            nprobe = self.index.nprobe
            self.index.nprobe = self.nlist
            found[short] = self.index.search(queries[short], int(count))[1]
            self.index.nprobe = nprobe
        return found.astype(np.int32)

    def save(self, path: str | Path) -> None:
        """Write the index to ``path`` (faiss format) and its settings to ``path`` + ``.json``."""
        faiss, path = _faiss(), Path(path)
        faiss.write_index(self.index, str(path))
        Path(f"{path}.json").write_text(json.dumps(self.describe() | {"fingerprint": self.fingerprint.tolist()}),
                                        encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "KeyIndex":
        """Read an index written by :meth:`save`.

        Raises:
            OSError: If either file cannot be read.
        """
        faiss, path = _faiss(), Path(path)
        meta = json.loads(Path(f"{path}.json").read_text(encoding="utf-8"))
        index = faiss.read_index(str(path))
        index.nprobe = int(meta["nprobe"])
        return cls(index, meta["fingerprint"], recall=meta.get("calibration_recall"), seconds=meta.get("build_seconds"))

    def describe(self) -> dict:
        """The index's settings and build figures, for run.json."""
        graph = isinstance(_faiss().downcast_index(self.index.quantizer), _faiss().IndexHNSW)
        storage = "float16" if isinstance(_faiss().downcast_index(self.index), _faiss().IndexIVFScalarQuantizer) else "float32"
        return {"kind": "faiss IVF-Flat" if storage == "float32" else "faiss IVF-SQfp16", "quantizer": "hnsw" if graph else "flat",
                "storage": storage, "keys": self.size, "nlist": self.nlist, "nprobe": self.nprobe,
                "calibration_recall": None if self.recall is None else round(self.recall, 4),
                "build_seconds": None if self.seconds is None else round(self.seconds, 3)}
