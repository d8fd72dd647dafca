"""TabR's context freeze for RetrievalAttention: each training row's neighbours fixed after some epochs."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = ["FrozenContexts"]


class FrozenContexts:
    """Mixin of :class:`~tabcli.layers.RetrievalAttention` that holds the frozen contexts: an
    ``(N, k)`` table of each candidate's neighbours, read by training calls instead of ranking
    every candidate once :meth:`freeze_contexts` has run.

    The host layer provides ``num_candidates``, ``candidate_numerical``, ``candidate_categorical``,
    ``features(numerical, categorical)``, ``_count(excludes_itself)``,
    ``_rank(query, candidate_index, count)`` (every candidate), ``_step_rank`` (the same
    arguments; what a training step ranks) and ``_index_contexts(count)`` (the table through an
    attached, current index, or None), and calls :meth:`_build_frozen_contexts` in ``build``.
    """

    def _build_frozen_contexts(self, num_candidates: int, count: int) -> None:
        """Create the (empty) table ``(rows, count)`` and its on/off flag. They are set outside
        Keras' tracking (``object.__setattr__``) so that they are neither weights of the model nor
        saved in model.keras. The table's rows are left open (``tf.Variable(shape=[None,
        count])``) and it starts with none: the ``4 * N * k`` bytes of training state are
        allocated by :meth:`freeze_contexts`, not by every layer that is built or loaded (2.5 GB
        at 6.4 million candidates)."""
        import tensorflow as tf  # a variable whose row count is set by its first assignment

        object.__setattr__(self, "_frozen_contexts", tf.Variable(
            np.zeros((0, count), dtype="int32"), shape=tf.TensorShape([None, count]), trainable=False,
            name="frozen_contexts"))
        object.__setattr__(self, "_contexts_frozen", keras.Variable(0, dtype="int32", trainable=False, name="contexts_frozen"))

    def _choose(self, query, candidate_index, count):
        """Positions ``(batch, count)`` of the neighbours of each row in a training call: from the
        frozen contexts once :meth:`freeze_contexts` has run (for rows that are candidates), else by
        ranking every candidate. Calls with ``training=False`` rank through the host's candidate
        cache instead and never come here."""
        if candidate_index is None:
            return self._step_rank(query, candidate_index, count)
        frozen = self._frozen_contexts
        return ops.cond(
            self._contexts_frozen > 0,
            lambda: ops.take(frozen, ops.maximum(ops.cast(candidate_index, "int32"), 0), axis=0),
            lambda: self._step_rank(query, candidate_index, count),
        )

    def freeze_contexts(self, batch_size: int = 2048) -> None:
        """Fix every candidate's neighbours for the rest of training ("context freeze" of TabR:
        Gorishniy et al., ICLR 2024; ``freeze_contexts_after_n_epochs`` in tabular-dl-tabr
        ``bin/tabr.py``).

        Ranks all candidates against each other once with the current keys (each excluding itself)
        and stores the ``(N, k)`` positions; through the attached index when it was built with the
        current weights (``N`` searches instead of an ``N x N`` ranking). From then on, a training call (``training=True`` with
        ``candidate_index``) takes a row's neighbours from this table instead of ranking all ``N``
        candidates: no ``(batch, N)`` ranking, no top-k, no key of every candidate per step. The
        neighbours' keys, similarities and values are still computed with gradient, so the key
        space keeps learning; only *which* ``k`` rows are read is fixed. Predictions
        (``training=False``) always rank. Cost of the call: one ``(N, N)`` ranking in blocks of
        ``batch_size`` rows. The table (``4 * N * k`` bytes) is training state: it is not saved
        with the model.

        Valid only when every training row that calls the layer in training is a candidate (its
        ``candidate_index`` >= 0): a row with index ``-1`` would read candidate 0's neighbours.
        """
        count = self._count(True)
        table = self._index_contexts(count)
        if table is not None:
            self._frozen_contexts.assign(table)
            self._contexts_frozen.assign(1)
            return
        rank = self._freeze_ranker(count)
        table = []
        for start in range(0, self.num_candidates, batch_size):
            stop = min(start + batch_size, self.num_candidates)
            index = ops.arange(start, stop, dtype="int32")
            table.append(ops.convert_to_numpy(rank(
                ops.take(self.candidate_numerical, index, axis=0),
                ops.take(self.candidate_categorical, index, axis=0),
                index,
            )))
        self._frozen_contexts.assign(np.concatenate(table, axis=0).astype("int32"))
        self._contexts_frozen.assign(1)

    def unfreeze_contexts(self) -> None:
        """Rank every candidate again in training calls (undoes :meth:`freeze_contexts`)."""
        self._contexts_frozen.assign(0)

    @property
    def contexts_frozen(self) -> bool:
        """Whether training calls take neighbours from the frozen contexts."""
        return bool(ops.convert_to_numpy(self._contexts_frozen))

    def _freeze_ranker(self, count):
        import tensorflow as tf  # tabcli's Keras backend; a traced function, not op-by-op eager

        def rank(numerical, categorical, index):
            return self._rank(self.features(numerical, categorical), index, count)

        return tf.function(rank, reduce_retracing=True)
