"""Exact nearest-neighbour search by squared L2 distance between keys, for RetrievalAttention."""

from __future__ import annotations

from keras import ops

__all__ = ["drop_own", "nearest_candidates", "nearest_in_table", "ranking_scores", "ranking_table", "top_k_chunk", "top_k_indices"]


def top_k_chunk(num: int, k: int) -> int:
    """Group size of :func:`top_k_indices` for ``num`` scores and ``k`` kept: 32 entries, fewer
    when that would leave under ``4 * k`` groups, and 1 (a plain ``top_k``) when ``num < 8 * k``."""
    return max(1, min(_GROUP, num // (4 * max(k, 1))))


#: Largest group of :func:`top_k_indices` (``benchmarks/top_k.py`` compares sizes): larger
#: groups make the gathered entries of the threshold's groups grow (k * group).
_GROUP = 32
#: Halvings of the threshold's interval (4,096-fold): on trained models' rankings they leave about
#: ``k`` groups and ``1.1 k`` entries at or above the threshold (``benchmarks/top_k.py``); fewer
#: leave many more.
_BISECTIONS = 12


def top_k_indices(scores, k: int, chunk: int | None = None):
    """Indices ``(batch, k)`` of the ``k`` largest of ``scores`` ``(batch, N)`` per row, largest
    first; ties go to the lower index, as ``ops.top_k``.

    Exact, without a ``top_k`` over all ``N`` entries. The scores are cut into groups of ``chunk``
    consecutive entries and each group's maximum taken. A threshold ``t`` per row is found by
    bisection on those maxima such that at least ``k`` maxima are ``>= t``: then at least ``k``
    entries are ``>= t``, so every one of the ``k`` largest is ``>= t``, and each lies in a group
    whose maximum is ``>= t``. Those groups (about ``k``) are gathered, their entries ``>= t`` (about
    ``1.1 k``) packed to the left in column order, and one ``top_k`` runs over them.

    Why: TensorFlow's CPU ``top_k`` with ``k = 96`` has a large cost per row that grows with the
    entries, while the passes here are elementwise (``benchmarks/top_k.py`` times both on trained
    models' rankings; docs/benchmarks.md). Ties at the threshold (duplicate candidates) keep more
    entries; all entries equal is a plain ``top_k``.

    Args:
        scores: float ``(batch, N)``; ``-inf`` entries are never chosen unless fewer than ``k``
            are finite.
        k: Entries kept per row, ``<= N``.
        chunk: Group size (default :func:`top_k_chunk`); 1 means a plain ``ops.top_k``. ``N``
            not a multiple of it costs a padded copy of ``scores``; :func:`nearest_in_table`
            avoids that by ranking against padding candidates that score ``-inf``.

    Returns:
        int32 ``(batch, k)``.
    """
    num = scores.shape[-1]
    chunk = chunk or top_k_chunk(num, k)
    groups = -(-num // chunk)
    if groups < 2 * k or chunk == 1:
        return ops.top_k(scores, k)[1]
    padding = groups * chunk - num
    if padding:
        scores = ops.pad(scores, [(0, 0), (0, padding)], constant_values=float("-inf"))
    rows = ops.shape(scores)[0]
    blocks = ops.reshape(scores, (-1, chunk))  # (batch * groups, chunk): group g = entries g*chunk ...
    maxima = ops.reshape(ops.max(blocks, axis=-1), (-1, groups))
    low = ops.min(maxima, axis=-1, keepdims=True)  # all groups are >= low: at least k of them
    high = ops.max(maxima, axis=-1, keepdims=True)
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        enough = ops.sum(ops.cast(maxima >= middle, "int32"), axis=-1, keepdims=True) >= k
        low = ops.where(enough, middle, low)
        high = ops.where(enough, high, middle)
    group_max, group = _pack_left(maxima, maxima >= low)  # (batch, W1); padded slots: -inf
    first = ops.expand_dims(ops.arange(rows, dtype="int32") * groups, -1)
    entries = ops.reshape(ops.take(blocks, ops.reshape(first + group, (-1,)), axis=0), (rows, -1))  # (batch, W1*chunk)
    column = ops.reshape(ops.expand_dims(group * chunk, -1) + ops.arange(chunk, dtype="int32"), (rows, -1))
    real = ops.reshape(ops.repeat(ops.expand_dims(group_max >= low, -1), chunk, axis=-1), (rows, -1))
    kept, where = _pack_left(entries, ops.logical_and(real, entries >= low))  # (batch, W2 >= k)
    best = ops.top_k(kept, k)[1]
    return ops.take_along_axis(ops.take_along_axis(column, where, axis=-1), best, axis=-1)


def _pack_left(values, keep):
    """The entries of ``values`` ``(batch, L)`` where ``keep`` is true, per row, in order, moved to
    the left of a ``(batch, W)`` array (``W`` = the most kept in a row; the rest ``-inf``), and their
    positions in ``values`` (``(batch, W)`` int32; 0 where nothing was kept)."""
    rows, length = ops.shape(values)[0], ops.shape(values)[1]
    row, position = (ops.cast(i, "int32") for i in ops.nonzero(keep))  # row-major: in order per row
    counts = ops.sum(ops.cast(keep, "int32"), axis=-1)
    slot = ops.arange(ops.shape(row)[0], dtype="int32") - ops.take(ops.cumsum(counts) - counts, row)
    target = ops.stack([row, slot], axis=-1)
    width = ops.max(counts)
    packed = ops.scatter_update(ops.full((rows, width), float("-inf"), values.dtype), target,
                                ops.take(ops.reshape(values, (-1,)), row * length + position))
    return packed, ops.scatter_update(ops.zeros((rows, width), "int32"), target, position)


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
    num = table.shape[0]
    retrieved = count if candidate_index is None else min(count + 1, num)
    chunk = top_k_chunk(num, retrieved)
    chosen = top_k_indices(ranking_scores(query, table, kernel, chunk), retrieved, chunk)
    return chosen if candidate_index is None else drop_own(chosen, candidate_index, count)


def drop_own(chosen, candidate_index, count: int):
    """``chosen`` ``(batch, r)`` candidate positions (nearest first) without each row's own
    position ``candidate_index`` ``(batch,)`` (``-1``: none), cut to ``count <= r`` columns: the
    row itself, if retrieved, is moved last (the order is otherwise kept) before the cut."""
    retrieved = chosen.shape[-1]
    own = ops.cast(ops.equal(chosen, ops.expand_dims(ops.cast(candidate_index, chosen.dtype), -1)), "int32")
    order = ops.argsort(own * retrieved + ops.arange(retrieved, dtype="int32"), axis=-1)[:, :count]
    return ops.take_along_axis(chosen, order, axis=-1)


def ranking_scores(query, table, kernel, chunk: int = 1):
    """The ``(batch, N + padding)`` scores that rank the candidates for each row, higher nearer:
    ``2 k.k_i - ||k_i||^2`` (``-||k - k_i||^2`` without the row's own ``-||k||^2``), with
    ``k = query @ kernel``, given the candidates' :func:`ranking_table`. No gradient.

    The candidates are padded up to a multiple of ``chunk`` with candidates that score ``-inf``
    (zero key, infinite norm). That spares :func:`top_k_indices` with the same ``chunk`` a padded
    copy of the ``(batch, N)`` scores.

    Args:
        query: ``(batch, d_in)`` key features of the rows.
        table: ``(N, w + 1)`` from :func:`ranking_table` with the same ``kernel``.
        kernel: ``(d_in, key_dim)`` key projection ``W_K``.
        chunk: Group size of the top-k that will read the scores (1: no padding).

    Returns:
        float ``(batch, N + padding)``; the padding columns are ``-inf``.
    """
    kernel = ops.stop_gradient(ops.convert_to_tensor(kernel))
    query = ops.stop_gradient(query)
    num, width = table.shape[0], table.shape[1]
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
    return ops.matmul(left, ops.transpose(table))


def nearest_candidates(query, candidates, kernel, count: int, candidate_index=None):
    """Positions ``(batch, count)`` int32 of the candidates nearest to each row by
    ``||k - k_i||^2``: :func:`nearest_in_table` over ``ranking_table(candidates, kernel)``, with
    the same arguments except ``candidates``, the ``(N, d_in)`` key features of the candidates,
    in place of the table."""
    return nearest_in_table(query, ranking_table(candidates, kernel), kernel, count, candidate_index)
