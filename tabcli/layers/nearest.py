"""Exact nearest-neighbour search by squared L2 distance between keys, for RetrievalAttention."""

from __future__ import annotations

from keras import ops

__all__ = ["nearest_candidates", "nearest_in_table", "ranking_table", "top_k_chunk", "top_k_indices"]


def top_k_chunk(num: int, k: int) -> int:
    """Chunk size of :func:`top_k_indices` for ``num`` scores and ``k`` kept: ``sqrt(num / k)``,
    which minimises the ``num / chunk + k * chunk`` entries that go through ``top_k``."""
    return max(1, int(round((num / max(k, 1)) ** 0.5)))


def top_k_indices(scores, k: int, chunk: int | None = None):
    """Indices ``(batch, k)`` of the ``k`` largest of ``scores`` ``(batch, N)`` per row, largest first.

    Exact, in two rounds: the ``N`` scores are cut into chunks of ``chunk`` entries, the ``k``
    chunks with the largest maxima are kept, and the ``k`` largest of their ``k * chunk``
    entries are taken. Exact because each of the ``k`` largest entries lies in a chunk whose
    maximum is at least the ``k``-th largest entry, and at most ``k`` chunks have such a maximum.
    Why: ``ops.top_k`` over all ``N`` entries dominated a training step on the CPU (256 rows x
    29,387 scores, k = 96, one thread: 30-39 ms, against 9 ms for the score matmul); two rounds
    take 17-19 ms there (about ``N / chunk + k * chunk`` entries go through ``top_k``, with
    ``chunk = sqrt(N / k)``), and are no faster at 13,209 scores. ``N`` not a multiple of
    ``chunk`` costs a padded copy of ``scores``; :func:`nearest_candidates` avoids it by ranking
    against padding candidates that score ``-inf``.
    """
    num = scores.shape[-1]
    chunk = chunk or top_k_chunk(num, k)
    groups = -(-num // chunk)
    if groups <= k or chunk == 1:
        return ops.top_k(scores, k)[1]
    padding = groups * chunk - num
    if padding:
        scores = ops.pad(scores, [(0, 0), (0, padding)], constant_values=float("-inf"))
    # Group g holds the contiguous entries g * chunk ... (g + 1) * chunk - 1, so the second round
    # gathers whole rows of a (batch * groups, chunk) matrix: 4,096 x 97 groups of 17 took 21 ms
    # that way against 83 ms for a flat gather of the same entries strided across the ranking (one
    # thread); the max over the last axis costs the same as over a strided middle axis.
    blocks = ops.reshape(scores, (-1, chunk))  # (batch * groups, chunk)
    best_groups = ops.top_k(ops.reshape(ops.max(blocks, axis=-1), (-1, groups)), k)[1]  # (batch, k)
    rows = ops.expand_dims(ops.arange(ops.shape(scores)[0], dtype=best_groups.dtype) * groups, -1)
    gathered = ops.take(blocks, ops.reshape(rows + best_groups, (-1,)), axis=0)  # (batch * k, chunk)
    position = ops.top_k(ops.reshape(gathered, (-1, k * chunk)), k)[1]  # (batch, k) into k * chunk
    group = ops.take_along_axis(best_groups, position // chunk, axis=-1)
    return group * chunk + position % chunk


def ranking_table(candidates, kernel, keys=None):
    """The candidates' side of the ranking, ``(N, w + 1)``: ``[k_i, ||k_i||^2]`` with
    ``k_i = candidates[i] @ kernel`` (``w = key_dim``), or, when the features are fewer than the
    key channels (``d_in < key_dim``), ``[c_i, c_i^T G c_i]`` with ``G = W_K W_K^T`` (``w = d_in``):
    the narrower of the two. It depends only on the candidates and the kernel, so
    :class:`~tabcli.layers.candidate_cache.CandidateCache` keeps it across prediction calls.

    Args:
        candidates: ``(N, d_in)`` key features of the candidates.
        kernel: ``(d_in, key_dim)`` key projection ``W_K``.
        keys: Optional ``(N, key_dim)`` ``candidates @ kernel``, when the caller has them
            already (the cache keeps them too); not recomputed then.

    Returns:
        float ``(N, w + 1)``, without gradient.
    """
    kernel = ops.stop_gradient(ops.convert_to_tensor(kernel))
    candidates = ops.stop_gradient(candidates)
    if _through_metric(kernel):
        right = candidates
        norms = ops.sum(ops.matmul(candidates, ops.matmul(kernel, ops.transpose(kernel))) * candidates, axis=-1)
    else:
        right = ops.matmul(candidates, kernel) if keys is None else ops.stop_gradient(keys)
        norms = ops.sum(ops.square(right), axis=-1)
    return ops.concatenate([right, ops.expand_dims(norms, -1)], axis=-1)


def _through_metric(kernel) -> bool:
    return kernel.shape[0] < kernel.shape[1]


def nearest_in_table(query, table, kernel, count: int, candidate_index=None):
    """Positions ``(batch, count)`` of the candidates nearest to each row by ``||k - k_i||^2``,
    nearest first, where ``k = query @ kernel``, given the candidates' :func:`ranking_table`;
    without the row's own position ``candidate_index`` (if given).

    No gradient: the ranking only chooses. ``-||k - k_i||^2 = -||k||^2 + 2 k.k_i - ||k_i||^2``,
    and the first term does not change the ranking, so the whole ``(batch, N)`` ranking is one
    matmul, ``[2 k, -1] . [k_i, ||k_i||^2]`` (scaling and subtracting afterwards were two more
    passes over it, about a fifth of its cost). Through ``G = W_K W_K^T`` when ``d_in < key_dim``
    (``(batch, N, d_in)`` work instead of ``(batch, N, key_dim)``). The row itself is dropped
    from ``count + 1`` retrieved, as in TabR (cheaper than masking the ``(batch, N)`` ranking).

    Args:
        query: ``(batch, d_in)`` key features of the rows.
        table: ``(N, w + 1)`` from :func:`ranking_table` with the same ``kernel``.
        kernel: ``(d_in, key_dim)`` key projection ``W_K``.
        count: Neighbours per row (``<= N``, ``<= N - 1`` with ``candidate_index``).
        candidate_index: Optional int ``(batch,)``: each row's own position among the candidates
            (excluded), or ``-1``.

    Returns:
        int32 ``(batch, count)``.
    """
    kernel = ops.stop_gradient(ops.convert_to_tensor(kernel))
    query = ops.stop_gradient(query)
    num, width = table.shape[0], table.shape[1]
    retrieved = count if candidate_index is None else min(count + 1, num)
    # Padding candidates up to a multiple of top_k_indices' chunk, each scoring -inf (zero key,
    # infinite norm), spares top_k_indices a padded copy of the (batch, N) ranking (4 ms of a
    # training step at batch 256 and 29,387 candidates; 480 MB at a prediction batch of 4,096).
    chunk = top_k_chunk(num, retrieved)
    padding = -(-num // chunk) * chunk - num
    if padding:
        padded = ops.concatenate([ops.zeros((padding, width - 1), table.dtype),
                                  ops.full((padding, 1), float("inf"), table.dtype)], axis=-1)
        table = ops.concatenate([table, padded], axis=0)
    if _through_metric(kernel):
        left = ops.matmul(query, ops.matmul(kernel, ops.transpose(kernel)))
    else:
        left = ops.matmul(query, kernel)
    left = ops.concatenate([2.0 * left, -ops.ones((ops.shape(left)[0], 1), left.dtype)], axis=-1)
    ranking = ops.matmul(left, ops.transpose(table))  # (batch, N + padding)
    chosen = top_k_indices(ranking, retrieved, chunk)
    if candidate_index is None:
        return chosen
    own = ops.cast(chosen == ops.expand_dims(ops.cast(candidate_index, chosen.dtype), -1), "int32")
    # Stable order with the row itself (if retrieved) moved last, then cut to count.
    order = ops.argsort(own * retrieved + ops.arange(retrieved, dtype="int32"), axis=-1)[:, :count]
    return ops.take_along_axis(chosen, order, axis=-1)


def nearest_candidates(query, candidates, kernel, count: int, candidate_index=None):
    """Positions ``(batch, count)`` int32 of the candidates nearest to each row by
    ``||k - k_i||^2``: :func:`nearest_in_table` over ``ranking_table(candidates, kernel)``, with
    the same arguments except ``candidates``, the ``(N, d_in)`` key features of the candidates,
    in place of the table."""
    return nearest_in_table(query, ranking_table(candidates, kernel), kernel, count, candidate_index)
