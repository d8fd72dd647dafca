"""Neighbour search of RetrievalAttention through an approximate index, and sampled candidates."""

from __future__ import annotations

import numpy as np
from keras import ops

from tabcli.layers.key_index import KeyIndex, drop_own_rows, exact_neighbours_in_chunks
from tabcli.layers.nearest import drop_own, nearest_candidates

__all__ = ["IndexedSearch"]


class IndexedSearch:
    """Mixin of :class:`~tabcli.layers.RetrievalAttention` for tables too large to rank every
    candidate at every call.

    * Training calls with ``step_candidates`` set rank each batch against a fresh random sample
      of that many candidates, drawn without replacement (a stateless random permutation,
      ``tf.random.experimental.index_shuffle``), instead of all ``N``: a step's cost no longer
      grows with the table. ModernNCA (Ye et al., "Revisiting Nearest Neighbor for Tabular Data",
      ICLR 2025, §4) trains against a random share of the candidates per step.
    * Calls with ``training=False`` search a :class:`~tabcli.layers.key_index.KeyIndex` of the
      candidates' keys, when one is attached (:meth:`attach_index`), outside the TensorFlow
      graph (``tf.numpy_function``), instead of ranking all ``N`` candidates.

    An index holds keys computed with some weights; a call whose key weights differ from them
    (their :meth:`key_fingerprint`) raises instead of returning neighbours of stale keys. Whoever
    changes the weights rebuilds it (:meth:`build_index`): tabcli does before each validation and
    after training.

    The host layer provides ``num_candidates``, ``step_candidates``, ``key_kernel``,
    ``candidate_numerical``, ``candidate_categorical``, ``features(numerical, categorical)``
    and, with periodic keys, ``key_embedder``; it calls :meth:`_build_indexed_search` in
    ``build``.
    """

    def _build_indexed_search(self, seed: int | None = None) -> None:
        """Create the sampling seed and the (empty) index slot, outside Keras' tracking: neither is
        a weight of the model or saved in model.keras."""
        import keras

        object.__setattr__(self, "_key_index", None)
        object.__setattr__(self, "_sample_seed", keras.random.SeedGenerator(seed, name="candidate_sample_seed"))

    # ----------------------------------------------------------- training steps
    def _step_rank(self, query, candidate_index, count):
        """What a training step ranks: a random sample of ``step_candidates`` candidates, or all."""
        if self.step_candidates is not None:
            return self._sampled_rank(query, candidate_index, count)
        return self._rank(query, candidate_index, count)

    def _rank(self, query, candidate_index, count):
        """:func:`~tabcli.layers.nearest.nearest_candidates` over every stored candidate (no gradient)."""
        candidates = self.features(self.candidate_numerical, self.candidate_categorical)  # (N, d_in)
        return nearest_candidates(query, candidates, self.key_kernel, count, candidate_index)

    def _sampled_rank(self, query, candidate_index, count):
        """Positions ``(batch, count)`` of each row's nearest among ``step_candidates`` random
        candidates (without its own, given ``candidate_index``)."""
        import keras
        import tensorflow as tf  # the stateless permutation has no Keras op

        size = self.step_candidates
        seed = keras.random.randint((2,), 0, 2**31 - 1, seed=self._sample_seed, dtype="int64")
        sample = tf.random.experimental.index_shuffle(
            ops.arange(size, dtype="int64"), seed, self.num_candidates - 1)
        sample = ops.cast(sample, "int32")  # (size,) distinct positions
        candidates = self.features(ops.take(self.candidate_numerical, sample, axis=0),
                                   ops.take(self.candidate_categorical, sample, axis=0))
        retrieved = count if candidate_index is None else min(count + 1, size)
        chosen = ops.take(sample, nearest_candidates(query, candidates, self.key_kernel, retrieved), axis=0)
        return chosen if candidate_index is None else drop_own(chosen, candidate_index, count)

    # ------------------------------------------------------------------ index
    @property
    def key_index(self) -> KeyIndex | None:
        """The attached :class:`~tabcli.layers.key_index.KeyIndex`, or None (exact ranking)."""
        return self._key_index

    def attach_index(self, index: KeyIndex | None) -> None:
        """Search ``index`` in calls with ``training=False`` (None: rank every candidate).

        A function traced before the index was attached keeps ranking; Keras' ``predict``,
        ``evaluate`` and ``predict_on_batch`` trace on their first call.

        Raises:
            ValueError: If the index does not hold one key per candidate.
        """
        if index is not None and index.size != self.num_candidates:
            raise ValueError(f"The index holds {index.size} keys; this layer has {self.num_candidates} candidates.")
        object.__setattr__(self, "_key_index", index)

    def key_fingerprint(self):
        """float32 ``(2 m,)``: the sum and the sum of absolute values of each weight the keys
        come from (the key projection, the periodic key embedding), to tell an index built with
        other weights."""
        sources = [self.key_kernel] + (list(self.key_embedder.weights) if getattr(self, "key_embedder", None) else [])
        parts = []
        for weight in sources:
            value = ops.convert_to_tensor(weight)
            parts += [ops.sum(value), ops.sum(ops.abs(value))]
        return ops.stack(parts)

    def row_keys(self, numerical=None, categorical=None) -> np.ndarray:
        """The keys of rows with the current weights, as the index holds them: float32 ``(rows,
        key_dim)`` from the layer's numerical ``(rows, num_numerical)`` and categorical ``(rows,
        num_categorical)`` inputs (None where the layer has none)."""
        keys = ops.matmul(self.features(numerical, categorical), self.key_kernel)
        return ops.convert_to_numpy(keys).astype(np.float32, copy=False)

    def key_chunks(self, batch_size: int = 65_536):
        """Yields ``(start, keys)``: the float32 keys ``(rows, key_dim)`` of the candidates at
        positions ``start, start + 1, ...`` with the current weights, ``batch_size`` at a time."""
        for start in range(0, self.num_candidates, batch_size):
            stop = min(start + batch_size, self.num_candidates)
            yield start, self.row_keys(self.candidate_numerical[start:stop], self.candidate_categorical[start:stop])

    def candidate_keys(self, batch_size: int = 65_536) -> np.ndarray:
        """Every candidate's key with the current weights: float32 ``(N, key_dim)``, computed
        ``batch_size`` candidates at a time into one array (no N-sized copies beside it: at 6.5
        million candidates the array alone is 1.7 GB)."""
        keys = np.empty((self.num_candidates, self.key_kernel.shape[1]), np.float32)
        for start, chunk in self.key_chunks(batch_size):
            keys[start:start + len(chunk)] = chunk
        return keys

    def exact_candidate_neighbours(self, queries: np.ndarray, count: int, batch_size: int = 65_536) -> np.ndarray:
        """Positions ``(rows, count)`` int64 of the ``count`` candidates nearest to each query key
        ``(rows, key_dim)`` by exhaustive search, nearest first; the candidates' keys are computed
        and searched a chunk at a time, so no ``(N, key_dim)`` array is held."""
        return exact_neighbours_in_chunks(queries, self.key_chunks(batch_size), count)

    def build_index(self, seed: int = 0) -> KeyIndex:
        """Build a :class:`~tabcli.layers.key_index.KeyIndex` of the current candidate keys,
        attach it and return it. The index it replaces is let go first: at millions of
        candidates each holds gigabytes.

        The index stores the keys as float16 (a faster search of slightly rounded keys, half the
        memory): it only chooses the neighbours; their exact keys come from the candidate cache
        or, above its bound, from their stored features."""
        self.attach_index(None)
        index = KeyIndex.build(self.candidate_keys(), ops.convert_to_numpy(self.key_fingerprint()), self.k, seed=seed,
                               storage="float16")
        self.attach_index(index)
        return index

    def _index_contexts(self, count: int, batch_size: int = 65_536) -> np.ndarray | None:
        """Every candidate's ``count`` nearest other candidates ``(N, count)`` int32 through the
        attached index, when it holds the current keys; else None (the caller ranks exactly)."""
        index = self._key_index
        if index is None or not index.matches(ops.convert_to_numpy(self.key_fingerprint())):
            return None
        retrieved = min(count + 1, self.num_candidates)
        table = []
        for start, keys in self.key_chunks(batch_size):
            positions = np.arange(start, start + len(keys))
            found = index.search(keys, retrieved)
            table.append(np.take_along_axis(found, drop_own_rows(found, positions, count), axis=1))
        return np.concatenate(table).astype(np.int32)

    def _index_search(self, keys, candidate_index, count):
        """Each row's nearest candidates by the attached index, for query keys ``(batch,
        key_dim)`` (without the row's own position, given ``candidate_index``): positions
        ``(batch, count)`` int32 (no gradient)."""
        import tensorflow as tf  # tf.numpy_function: the index is searched outside the graph

        retrieved = count if candidate_index is None else min(count + 1, self.num_candidates)
        own = ops.full((ops.shape(keys)[0],), -1, "int32") if candidate_index is None else ops.cast(candidate_index, "int32")

        def search(queries, own, fingerprint):
            index = self._key_index
            if not index.matches(fingerprint):
                raise RuntimeError(
                    f"The retrieval index of layer '{self.name}' was built with other key weights; rebuild it "
                    "(layer.build_index()) after changing the weights.")
            found = index.search(queries, retrieved)
            return np.take_along_axis(found, drop_own_rows(found, own, count), axis=1)

        chosen = tf.numpy_function(search, [ops.stop_gradient(keys), own, self.key_fingerprint()], tf.int32,
                                   name="key_index_search")
        chosen.set_shape((None, count))
        return chosen
