"""The candidates' keys of RetrievalAttention, kept between prediction calls while the weights hold still."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tabcli.layers.nearest import ranking_table

__all__ = ["CandidateCache"]


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

    Memory, outside the model's weights and not saved: ``4 * N * (w + 1 + key_dim + hidden +
    n_num + n_cat)`` bytes, with ``w`` the narrower of ``d_in`` and ``key_dim``; bank marketing's
    29,387 candidates at the defaults (``key_dim`` 64, ``hidden`` 128): 32 MB.

    The host layer provides ``key_kernel``, ``t_in_kernel``, ``candidate_numerical``, ``candidate_categorical``, ``features(numerical, categorical)`` and,
    with periodic keys, ``key_embedder``; it calls :meth:`_build_candidate_cache` at the end of
    ``build``.
    """

    def _build_candidate_cache(self) -> None:
        """Create the cache and the copies of its sources. They are set outside Keras' tracking
        (``object.__setattr__``): they are neither weights of the model nor saved in model.keras."""
        n = int(self.candidate_numerical.shape[0])
        d_in, key_dim = self.key_kernel.shape
        width = min(d_in, key_dim) + 1

        def variable(shape, dtype="float32", name=None):
            return keras.Variable(np.zeros(shape, dtype), dtype=dtype, trainable=False, name=name)
        object.__setattr__(self, "_cache", [variable((n, width), name="cached_ranking_table"),
                                            variable((n, key_dim), name="cached_keys"),
                                            variable((n, self.t_in_kernel.shape[1]), name="cached_hidden")])
        object.__setattr__(self, "_cache_copies", [variable(tuple(v.shape), v.dtype, name="cache_source")
                                                   for v in self._cache_sources()])
        object.__setattr__(self, "_cache_filled", variable((), "int32", name="cache_filled"))

    def _cache_sources(self) -> list:
        sources = [self.key_kernel, self.t_in_kernel, self.candidate_numerical,
                   self.candidate_categorical]
        if getattr(self, "key_embedder", None) is not None:
            sources += list(self.key_embedder.weights)
        return sources

    def _cached_candidates(self):
        """``(table, keys, hidden)`` of every candidate ``((N, w + 1), (N, key_dim), (N, hidden))``
        for the current weights: read from the cache, or computed and stored when it is stale."""
        fresh = self._cache_filled > 0
        for copy, source in zip(self._cache_copies, self._cache_sources()):
            fresh = ops.logical_and(fresh, ops.all(ops.equal(copy, source)))
        return ops.cond(fresh, lambda: tuple(ops.convert_to_tensor(v) for v in self._cache), self._refresh_cache)

    def _refresh_cache(self):
        features = self.features(self.candidate_numerical, self.candidate_categorical)  # (N, d_in)
        keys = ops.matmul(features, self.key_kernel)
        table = ranking_table(features, self.key_kernel, keys)
        hidden = ops.matmul(keys, self.t_in_kernel)
        values = (table, keys, hidden)
        for variable, value in zip(self._cache, values):
            variable.assign(value)
        for copy, source in zip(self._cache_copies, self._cache_sources()):
            copy.assign(source)
        self._cache_filled.assign(1)
        return values
