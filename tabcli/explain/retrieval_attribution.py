"""Which columns make a row's neighbours its neighbours: the retrieval step split into columns.

A retrieval model (:class:`~tabcli.layers.RetrievalAttention`) weights a training row ``i`` by
``softmax(-||k - k_i||^2)`` over the row's nearest candidates, and its key is a sum of
per-column terms, ``k = sum_j c_j`` with ``c_j = W_j phi_j(x_j)``
(:meth:`~tabcli.layers.RetrievalAttention.key_terms`). So the squared distance to a candidate,
``||sum_j delta_j||^2`` with ``delta_j = c_j - c_{i,j}``, is a quadratic form of the column
differences, and its Shapley values (Shapley 1953) have a closed form: column ``j`` receives
``<delta_j, delta>`` (its own square plus half of every cross term ``2 <delta_j, delta_l>``);
they sum to the distance exactly, so the cross terms are accounted for, not dropped.

What makes a row's neighbours its neighbours is how much *closer* they are than a random
training row: the gap ``E_i ||k - k_i||^2 - sum_i p_i ||k - k_i||^2`` (mean over every stored
candidate, minus the retrieval-weighted mean over the retrieved ones). Shapley values are
linear, so column ``j``'s share of the gap is the difference of its shares of the two means.
A column the key ignores (``W_j ~ 0``) gets nothing; a column on which the neighbours agree with
the row while random rows do not gets most of it. The means over all candidates need only
their column sums, so the cost is ``O(rows * k * columns * key_dim)``, with no ranking.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CandidateTerms", "candidate_terms", "neighbour_gap"]


class CandidateTerms:
    """The stored candidates' key terms and what the gap needs of them, per retrieval head.

    Attributes:
        terms: ``(N, J, H, D)`` float32: every candidate's per-column key terms, split into
            ``H`` heads of ``D`` channels (heads own contiguous key channels).
        self_products: ``(N, J, H)``: ``<c_{i,j}, k_i>`` per head.
        mean_terms: ``(J, H, D)``, ``mean_keys``: ``(H, D)``, ``mean_self``: ``(J, H)``: the
            means over all candidates.
    """

    def __init__(self, terms: np.ndarray, num_heads: int):
        rows, columns, width = terms.shape
        self.terms = np.asarray(terms, dtype=np.float32).reshape(rows, columns, num_heads, width // num_heads)
        keys = self.terms.sum(axis=1)  # (N, H, D)
        self.self_products = np.einsum("njhd,nhd->njh", self.terms, keys)
        self.mean_terms = self.terms.mean(axis=0)
        self.mean_keys = keys.mean(axis=0)
        self.mean_self = self.self_products.mean(axis=0)


def candidate_terms(layer, batch_size: int = 4096) -> CandidateTerms:
    """:class:`CandidateTerms` of a :class:`~tabcli.layers.RetrievalAttention` layer's stored
    candidates, computed with its current weights in blocks of ``batch_size`` rows.

    Memory: ``4 * N * J * key_dim`` bytes (29,387 bank marketing candidates, 16 columns, 64
    channels: 120 MB).
    """
    from keras import ops

    numerical = ops.convert_to_numpy(layer.candidate_numerical)
    categorical = ops.convert_to_numpy(layer.candidate_categorical)
    blocks = []
    for start in range(0, layer.num_candidates, batch_size):
        stop = start + batch_size
        blocks.append(ops.convert_to_numpy(layer.key_terms(
            numerical[start:stop] if layer.num_numerical else None,
            categorical[start:stop] if layer.cardinalities else None,
        )))
    return CandidateTerms(np.concatenate(blocks, axis=0), layer.num_heads)


def neighbour_gap(row_terms: np.ndarray, candidates: CandidateTerms, neighbours: np.ndarray,
                  weights: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Each column's Shapley share of how much closer a row's retrieved neighbours are than a
    random stored candidate (see the module docstring), summed over heads.

    Args:
        row_terms: ``(rows, J, key_dim)`` the rows' key terms
            (:meth:`~tabcli.layers.RetrievalAttention.key_terms`).
        candidates: :class:`CandidateTerms` of the layer's candidates.
        neighbours: ``(rows, k)`` int, positions of the retrieved candidates.
        weights: ``(rows, H, k)`` retrieval weights (each head's sum to 1).
        chunk: Rows processed at a time (memory ``4 * chunk * k * J * key_dim`` bytes).

    Returns:
        ``(rows, J)`` float64 in squared key-distance units; each row sums to
        ``sum_h (mean_i ||k - k_i||_h^2 - sum_i p_{h,i} ||k - k_i||_h^2)``. Entries can be
        negative (a column on which the neighbours are farther than a random row).

    Raises:
        ValueError: If the shapes disagree.
    """
    rows, columns, width = row_terms.shape
    _, j, heads, depth = candidates.terms.shape
    if (columns, width) != (j, heads * depth) or neighbours.shape[0] != rows or weights.shape != (rows, heads, neighbours.shape[1]):
        raise ValueError(
            f"Expected row terms (rows, {j}, {heads * depth}), neighbours (rows, k) and weights (rows, {heads}, k); "
            f"received {row_terms.shape}, {neighbours.shape} and {weights.shape}."
        )
    terms = np.asarray(row_terms, dtype=np.float32).reshape(rows, columns, heads, depth)
    gap = np.empty((rows, columns))
    for start in range(0, rows, chunk):
        stop = min(start + chunk, rows)
        own = terms[start:stop]  # (r, J, H, D)
        keys = own.sum(axis=1)  # (r, H, D)
        p = np.asarray(weights[start:stop], dtype=np.float32)  # (r, H, k)
        chosen = neighbours[start:stop]
        gathered = candidates.terms[chosen]  # (r, k, J, H, D)
        near_terms = np.einsum("rhk,rkjhd->rjhd", p, gathered)
        near_keys = near_terms.sum(axis=1)  # (r, H, D)
        near_self = np.einsum("rhk,rkjh->rjh", p, candidates.self_products[chosen])
        # mean_i s_j - sum_i p_i s_j, s_j(i) = <c_j - c_{i,j}, k - k_i>; the <c_j, k> terms cancel.
        value = (np.einsum("rjhd,rhd->rjh", own, near_keys - candidates.mean_keys)
                 + np.einsum("rjhd,rhd->rjh", near_terms - candidates.mean_terms, keys)
                 + candidates.mean_self - near_self)
        gap[start:stop] = value.sum(axis=-1)
    return gap
