"""The candidates' keys of RetrievalAttention, kept between prediction calls while the weights hold still."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tabcli.layers.nearest import ranking_table

__all__ = ["CANDIDATE_CACHE_MAX_BYTES", "CandidateCache"]

#: Largest candidate cache a layer keeps, in bytes (1 GiB: 1.28 million candidates of 8 numerical
#: columns at the default widths, 836 bytes each).
CANDIDATE_CACHE_MAX_BYTES = 2**30


class CandidateCache:
    """Mixin of :class:`~tabcli.layers.RetrievalAttention` that keeps, for calls with
    ``training=False``, what depends only on the stored candidates and the weights: the ranking
    table ``(N, w + 1)`` (:func:`~tabcli.layers.nearest.ranking_table`), every candidate's key
    ``(N, key_dim)`` and ``W1 k_i`` ``(N, hidden)`` (the first layer of ``T``).

    Why: without it every prediction batch embeds and projects all ``N`` candidates again and
    recomputes the keys of its distinct neighbours (``unique`` and gathers). With it a batch
    reads them. TabR's evaluation does the same: it encodes the candidates once per evaluation
    (``bin/tabr.py`` of yandex-research/tabular-dl-tabr).

    The cache is refreshed inside the call whenever it is stale, so no caller has to manage it.
    Before each inference call, the copies of the weights it was computed from are compared with
    the current ones: the key projection, the periodic key embedding, ``W1`` of ``T``,
    and the candidates' features. Comparing is a pass over ``N * (n_num + n_cat)`` values, not a
    version counter, because ``restore_best_weights``, ``set_weights``, ``load_weights`` and
    :meth:`set_candidates` all change weights without a training call. Training calls
    (``training=True``) never read the cache: their weights change at every step and their
    neighbours' keys need gradient. The cached values carry no gradient, so in a call with
    ``training=False`` gradients reach the weights through the rows' own keys only.

    The cache also serves calls that search an attached index: they read their neighbours' keys
    and ``W1 k_i`` from it instead of computing ``W1 k_i`` for each of the ``batch * k``
    neighbours.

    Memory, outside the model's weights and not saved: ``4 * N * (w + 1 + key_dim + hidden +
    n_num + n_cat)`` bytes (:meth:`candidate_cache_bytes`), with ``w`` the narrower of ``d_in``
    and ``key_dim``; bank marketing's 29,387 candidates at the defaults (``key_dim`` 64,
    ``hidden`` 128): 32 MB; 650,000 candidates of 8 numerical columns: 543 MB. It is allocated at
    the first call that reads it, not at ``build`` (a layer that only trains holds none of it),
    and only up to :data:`CANDIDATE_CACHE_MAX_BYTES`: above that, each exact call computes the
    values again and index calls compute the neighbours' keys and ``W1 k_i`` from their
    features, so memory stays bounded by the table instead of growing with it.

    The host layer provides ``key_kernel``, ``t_in_kernel``, ``candidate_numerical``, ``candidate_categorical``, ``features(numerical, categorical)`` and,
    with periodic keys, ``key_embedder``; it calls :meth:`_build_candidate_cache` at the end of
    ``build``.
    """

    def _build_candidate_cache(self) -> None:
        """Create the (empty) cache and the copies of its sources. They are set outside Keras'
        tracking (``object.__setattr__``): they are neither weights of the model nor saved in
        model.keras. Their first dimension is left open (``tf.Variable(shape=[None, ...])``) and
        they start with no rows, so that a layer holds the ``N``-sized cache only once a call
        fills it."""
        import tensorflow as tf  # variables whose row count is set by their first assignment

        d_in, key_dim = self.key_kernel.shape
        width = min(d_in, key_dim) + 1

        def variable(trailing, dtype="float32", name=None):
            return tf.Variable(np.zeros((0, *trailing), dtype), shape=tf.TensorShape([None, *trailing]),
                               trainable=False, name=name)
        object.__setattr__(self, "_cache", [variable((width,), name="cached_ranking_table"),
                                            variable((key_dim,), name="cached_keys"),
                                            variable((self.t_in_kernel.shape[1],), name="cached_hidden")])
        object.__setattr__(self, "_cache_copies", [variable(tuple(v.shape[1:]), v.dtype, name="cache_source")
                                                   for v in self._cache_sources()])
        object.__setattr__(self, "_cache_filled", keras.Variable(0, dtype="int32", trainable=False, name="cache_filled"))
        object.__setattr__(self, "_cache_enabled", True)

    def enable_cache(self, enabled: bool = True) -> None:
        """Keep the cache (default) or compute every candidate's ranking row, key and ``W1 k_i``
        in each call: a graph without variable assignments, as an exported model needs."""
        object.__setattr__(self, "_cache_enabled", bool(enabled))

    def candidate_cache_bytes(self) -> int:
        """Bytes the filled cache takes: ``4 * N * (w + 1 + key_dim + hidden + n_num + n_cat)``."""
        n, n_num = self.candidate_numerical.shape
        n_cat = self.candidate_categorical.shape[1]
        return 4 * int(n) * (sum(int(v.shape[1]) for v in self._cache) + int(n_num) + int(n_cat))

    @property
    def caches_candidates(self) -> bool:
        """Whether calls with ``training=False`` keep the cache (its size is within
        :data:`CANDIDATE_CACHE_MAX_BYTES`)."""
        return self._cache_enabled and self.candidate_cache_bytes() <= CANDIDATE_CACHE_MAX_BYTES

    def _cache_sources(self) -> list:
        sources = [self.key_kernel, self.t_in_kernel, self.candidate_numerical,
                   self.candidate_categorical]
        if getattr(self, "key_embedder", None) is not None:
            sources += list(self.key_embedder.weights)
        return sources

    def _cached_candidates(self):
        """``(table, keys, hidden)`` of every candidate ``((N, w + 1), (N, key_dim), (N, hidden))``
        for the current weights: read from the cache, or computed and stored when it is stale;
        computed and not stored when the cache would exceed :data:`CANDIDATE_CACHE_MAX_BYTES`."""
        if not self.caches_candidates:
            return self._candidate_values()

        def same_sources():
            fresh = ops.convert_to_tensor(True)
            for copy, source in zip(self._cache_copies, self._cache_sources()):
                fresh = ops.logical_and(fresh, ops.all(ops.equal(copy, source)))
            return fresh

        # The copies are compared only once filled: before, they have no rows.
        fresh = ops.cond(self._cache_filled > 0, same_sources, lambda: ops.convert_to_tensor(False))
        values = ops.cond(fresh, lambda: tuple(ops.convert_to_tensor(v) for v in self._cache), self._refresh_cache)
        n = int(self.candidate_numerical.shape[0])
        return tuple(ops.reshape(v, (n, int(c.shape[1]))) for v, c in zip(values, self._cache))

    def _candidate_values(self):
        features = self.features(self.candidate_numerical, self.candidate_categorical)  # (N, d_in)
        keys = ops.matmul(features, self.key_kernel)
        return ranking_table(features, self.key_kernel, keys), keys, ops.matmul(keys, self.t_in_kernel)

    def _refresh_cache(self):
        values = self._candidate_values()
        for variable, value in zip(self._cache, values):
            variable.assign(value)
        for copy, source in zip(self._cache_copies, self._cache_sources()):
            copy.assign(source)
        self._cache_filled.assign(1)
        return values
