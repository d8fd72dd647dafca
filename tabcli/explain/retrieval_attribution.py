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
their column sums (accumulated once per layer, ``O(N)`` time, constant memory), so a row costs
``O(k * columns * key_dim)``, with no ranking.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CandidateTerms", "candidate_terms", "neighbour_gap"]


class CandidateTerms:
    """What the gap needs of the stored candidates' key terms, per retrieval head: their means
    over all ``N`` candidates, and the terms of any of them on demand.

    The means are accumulated in blocks, and only the retrieved candidates' terms are computed
    again when a row needs them, so memory does not grow with ``N`` (every candidate's terms would
    take ``4 N J key_dim`` bytes: 1.3 GB for 650,000 candidates of 8 columns).

    Args:
        terms_of: Callable from positions ``(m,)`` int to those candidates' per-column key terms
            ``(m, J, key_dim)``.
        num_candidates: ``N``.
        num_heads: ``H``; heads own contiguous key channels (``key_dim = H * D``).
        block: Candidates per block while averaging.

    Attributes:
        mean_terms: ``(J, H, D)``, ``mean_keys``: ``(H, D)``, ``mean_self``: ``(J, H)``: the means
            over all candidates of the terms, the keys and ``<c_{i,j}, k_i>``.
    """

    def __init__(self, terms_of, num_candidates: int, num_heads: int, block: int = 4096):
        self._terms_of = terms_of
        self.num_heads = int(num_heads)
        sums = None
        for start in range(0, num_candidates, block):
            terms, products = self.terms(np.arange(start, min(start + block, num_candidates)))
            part = (terms.sum(axis=0, dtype=np.float64), products.sum(axis=0, dtype=np.float64))
            sums = part if sums is None else (sums[0] + part[0], sums[1] + part[1])
        self.mean_terms = (sums[0] / num_candidates).astype(np.float32)
        self.mean_keys = self.mean_terms.sum(axis=0)
        self.mean_self = (sums[1] / num_candidates).astype(np.float32)

    @classmethod
    def from_array(cls, terms: np.ndarray, num_heads: int) -> "CandidateTerms":
        """From every candidate's terms ``(N, J, key_dim)`` held in memory."""
        terms = np.asarray(terms, dtype=np.float32)
        return cls(lambda positions: terms[positions], len(terms), num_heads)

    def terms(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The terms ``(*positions.shape, J, H, D)`` of the candidates at ``positions`` (any
        shape) and their ``<c_{i,j}, k_i>`` ``(*positions.shape, J, H)``."""
        positions = np.asarray(positions)
        flat = np.asarray(self._terms_of(positions.ravel()), dtype=np.float32)
        rows, columns, width = flat.shape
        flat = flat.reshape(rows, columns, self.num_heads, width // self.num_heads)
        products = np.einsum("njhd,nhd->njh", flat, flat.sum(axis=1))
        return flat.reshape(*positions.shape, *flat.shape[1:]), products.reshape(*positions.shape, *products.shape[1:])


def candidate_terms(layer, batch_size: int = 4096) -> CandidateTerms:
    """:class:`CandidateTerms` of a :class:`~tabcli.layers.RetrievalAttention` layer's stored
    candidates with its current weights (:meth:`~tabcli.layers.RetrievalAttention.key_terms`),
    averaged in blocks of ``batch_size`` candidates."""
    from keras import ops

    numerical = ops.convert_to_numpy(layer.candidate_numerical)
    categorical = ops.convert_to_numpy(layer.candidate_categorical)

    def terms_of(positions):
        return ops.convert_to_numpy(layer.key_terms(
            numerical[positions] if layer.num_numerical else None,
            categorical[positions] if layer.cardinalities else None,
        ))

    return CandidateTerms(terms_of, layer.num_candidates, layer.num_heads, batch_size)


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
    j, heads, depth = candidates.mean_terms.shape
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
        gathered, products = candidates.terms(chosen)  # (r, k, J, H, D), (r, k, J, H)
        near_terms = np.einsum("rhk,rkjhd->rjhd", p, gathered)
        near_keys = near_terms.sum(axis=1)  # (r, H, D)
        near_self = np.einsum("rhk,rkjh->rjh", p, products)
        # mean_i s_j - sum_i p_i s_j, s_j(i) = <c_j - c_{i,j}, k - k_i>; the <c_j, k> terms cancel.
        value = (np.einsum("rjhd,rhd->rjh", own, near_keys - candidates.mean_keys)
                 + np.einsum("rjhd,rhd->rjh", near_terms - candidates.mean_terms, keys)
                 + candidates.mean_self - near_self)
        gap[start:stop] = value.sum(axis=-1)
    return gap
