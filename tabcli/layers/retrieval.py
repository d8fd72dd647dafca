"""RetrievalAttention: label-aware attention from a row to its k nearest training rows (TabR)."""

from __future__ import annotations

import keras
from keras import ops

from tabcli.layers.embeddings import PeriodicEmbedding
from tabcli.layers.frozen_contexts import FrozenContexts
from tabcli.layers.candidate_cache import CandidateCache
from tabcli.layers.indexed_search import IndexedSearch
from tabcli.layers.nearest import nearest_in_table

__all__ = ["RetrievalAttention"]


@keras.saving.register_keras_serializable(package="tabcli")
class RetrievalAttention(FrozenContexts, CandidateCache, IndexedSearch, keras.layers.Layer):
    """Inter-sample attention as retrieval: each row attends to its ``k`` nearest stored
    training rows ("candidates"), and what it reads from them carries their labels.

    This is the retrieval module of TabR (Gorishniy et al., "TabR: Tabular Deep Learning Meets
    Nearest Neighbors", ICLR 2024; reference code ``bin/tabr.py`` of yandex-research/
    tabular-dl-tabr, with its default ``encoder_n_blocks = 0``), added to a row representation
    ``x`` of width ``d_model``:

    * key ``k = W_K [x_num, onehot(x_cat)]``: one shared linear projection of the row's
      preprocessed features (TabR's light encoder: its ``Linear`` then ``K``, which compose to
      one linear map; no bias, as only key differences are used), the same for the row and for
      every candidate;
    * similarity to candidate ``i``: ``-||k - k_i||^2``; the ``k`` most similar candidates are
      retrieved exactly (:func:`~tabcli.layers.nearest.top_k_indices` over all of them);
    * weights ``p = dropout(softmax(similarity))`` over those ``k``, per head (the key and value
      channels are split into ``num_heads`` groups; ``num_heads=1`` is TabR's);
    * value of candidate ``i``: ``E(y_i) + T(k - k_i)``, ``E`` a class embedding (classification)
      or a linear map of the standardised target (regression), ``T`` = Dense(ReLU) -> Dense
      without bias. TabR drops out T's hidden units per neighbour; here dropout acts on their
      weighted sum (one mask per row instead of ``k``: the random numbers for ``batch * k *
      hidden`` units were a measurable share of a step);
    * output ``x + sum_i p_i value_i`` (residual).

    The keys come from the features, not from ``x``, so ranking all candidates needs no pass of
    the inter-feature blocks over the training table: a training call ranks the candidates
    without gradient, then recomputes the chosen neighbours' keys with gradient (once per
    distinct neighbour), as TabR does. :meth:`freeze_contexts` (TabR's context freeze) removes
    the ranking from later training steps; calls with ``training=False`` read keys, ``W1 k_i``
    and ranking rows from :class:`~tabcli.layers.candidate_cache.CandidateCache`. For large
    tables (:class:`~tabcli.layers.indexed_search.IndexedSearch`, docs/large_tables.md) a
    training call may rank a random sample of ``step_candidates``, and an attached key index is
    searched instead of ranking all ``N``.

    The candidates' features, labels and ids are non-trainable weights, so they are saved in the
    ``.keras`` file and a prediction needs nothing else. Memory: ``4 * (n_num + n_cat + 2)``
    bytes per candidate in the model (float32 numerical features, int32 category codes, float32
    label, int32 id): 40 bytes per row for California housing's 8 columns. A call holds the
    ``(N, d_in)`` float32 candidate features (categories one-hot) and a ``(batch, N)`` ranking:
    4 bytes per row and candidate (1,024 x 20,000 candidates: 82 MB).

    Args:
        num_candidates: Number of stored candidate rows ``N`` (>= 2).
        d_model: Width of the row representation ``x`` and of the output.
        num_numerical: Numerical feature columns ``n_num`` (the ``numerical`` call argument).
        cardinalities: Codes per categorical column (the ``categorical`` call argument; codes
            in ``[0, cardinality)``).
        k: Candidates retrieved per row (``min(k, N)``; ``min(k, N - 1)`` in a call with
            ``candidate_index``).
        num_classes: Number of classes of the label embedding; ``None`` for a regression target
            (a standardised value, mapped by a linear layer).
        key_dim: Width of the keys (default ``d_model``); must be divisible by ``num_heads``.
        num_heads: Retrieval heads (each weights the same ``k`` neighbours with its own share of
            the key channels). ``d_model`` must be divisible by it.
        dropout_rate: Dropout on the retrieval weights (TabR's "context dropout") and inside
            ``T``, in ``[0, 1)``; active only when ``training=True``.
        ffn_multiplier: Hidden width of ``T`` as a multiple of ``d_model``.
        key_embedding: ``"linear"`` (keys are a linear map of the numerical values, TabR-S) or
            ``"periodic"`` (each numerical value first goes through its own periodic embedding,
            :class:`~tabcli.layers.PeriodicEmbedding`, as TabR's best variants use numerical
            embeddings before the key projection; the distance can then follow fast-varying
            functions of a value, e.g. latitude). With ``"periodic"`` every call embeds every
            candidate (``N * n_num * 2 * num_frequencies * key_embedding_dim`` multiply-adds)
            and holds ``(N, n_num, 2 * num_frequencies)`` floats.
        key_embedding_dim: Channels per numerical column of the periodic key embedding.
        num_frequencies: Frequencies per column of the periodic key embedding.
        sigma: Initial frequency scale of the periodic key embedding.
        step_candidates: Candidates a training call ranks its rows against, a fresh random
            sample per call (``>= 2``; at least ``k + 1`` are drawn); None (default) or ``>= N``:
            all of them.
        seed: Seed of those samples.
        **kwargs: Standard layer keyword arguments.

    Call arguments:
        inputs: Row representations ``x`` ``(batch, d_model)``.
        numerical: float ``(batch, n_num)`` preprocessed numerical features, or None if
            ``n_num == 0``.
        categorical: int ``(batch, n_cat)`` category codes, or None if there are no
            categorical columns.
        candidate_index: Optional int ``(batch,)``: for a training row that is itself a
            candidate, its position among the candidates, else ``-1``. That candidate is
            excluded, so a row never retrieves its own label: in training (a leak that the model
            would learn to read) and when scoring the training split (leave-one-out metrics).
            Validation, test and new rows pass ``-1`` and retrieve from every candidate. Given
            at all, at most ``N - 1`` candidates are retrieved.
        training: Python boolean, whether dropout is active.
        return_attention_scores: If ``True``, also return what was retrieved.

    Returns:
        ``(batch, d_model)``; with ``return_attention_scores=True`` a tuple ``(output, scores)``,
        ``scores`` a dict with ``"weights"`` ``(batch, num_heads, k)`` (each head's weights sum
        to 1), ``"ids"`` ``(batch, k)`` int32 (the retrieved candidates' ids, in decreasing
        similarity) and ``"labels"`` ``(batch, k)`` float32 (their stored labels: class index,
        or standardised target).

    Raises:
        ValueError: On ``num_candidates < 2``, ``k < 1``, no feature columns, a cardinality
            below 1, a ``d_model`` or ``key_dim`` not divisible by ``num_heads``,
            ``dropout_rate`` outside ``[0, 1)``, an unknown ``key_embedding``, inputs not of rank 2, or candidate arrays of
            the wrong shape.
    """

    def __init__(self, num_candidates: int, d_model: int, num_numerical: int = 0, cardinalities=(),
                 k: int = 96, num_classes: int | None = None, key_dim: int | None = None, num_heads: int = 1,
                 dropout_rate: float = 0.0, ffn_multiplier: float = 2.0, key_embedding: str = "linear",
                 key_embedding_dim: int = 8, num_frequencies: int = 16, sigma: float = 0.1,
                 step_candidates: int | None = None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        key_dim = d_model if key_dim is None else key_dim
        cardinalities = [int(c) for c in cardinalities]
        if int(num_candidates) < 2:
            raise ValueError(f"num_candidates must be >= 2; received num_candidates={num_candidates}.")
        if int(k) < 1:
            raise ValueError(f"k must be >= 1; received k={k}.")
        if int(num_numerical) < 0 or any(c < 1 for c in cardinalities) or not (int(num_numerical) or cardinalities):
            raise ValueError(
                "RetrievalAttention needs at least one feature column (num_numerical >= 0, cardinalities >= 1); "
                f"received num_numerical={num_numerical}, cardinalities={cardinalities}."
            )
        if num_classes is not None and int(num_classes) < 2:
            raise ValueError(f"num_classes must be None (regression) or >= 2; received num_classes={num_classes}.")
        if int(num_heads) < 1 or int(d_model) % int(num_heads) or int(key_dim) % int(num_heads):
            raise ValueError("d_model and key_dim must be divisible by num_heads; received "
                             f"d_model={d_model}, key_dim={key_dim}, num_heads={num_heads}.")
        if not 0.0 <= float(dropout_rate) < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1); received dropout_rate={dropout_rate}.")
        if float(ffn_multiplier) <= 0:
            raise ValueError(f"ffn_multiplier must be > 0; received ffn_multiplier={ffn_multiplier}.")
        if key_embedding not in ("linear", "periodic"):
            raise ValueError(f"key_embedding must be 'linear' or 'periodic'; received key_embedding={key_embedding!r}.")
        if int(key_embedding_dim) < 1 or int(num_frequencies) < 1 or float(sigma) <= 0:
            raise ValueError("key_embedding_dim and num_frequencies must be >= 1 and sigma > 0; received "
                             f"key_embedding_dim={key_embedding_dim}, num_frequencies={num_frequencies}, sigma={sigma}.")
        if step_candidates is not None and int(step_candidates) < 2:
            raise ValueError(f"step_candidates must be None or >= 2; received step_candidates={step_candidates}.")
        self.num_candidates = int(num_candidates)
        # A sample must hold the k neighbours and the row itself.
        step = None if step_candidates is None else max(int(step_candidates), int(k) + 1)
        self.step_candidates = None if step is None or step >= int(num_candidates) else step
        self.seed = seed
        self.d_model = int(d_model)
        self.num_numerical = int(num_numerical)
        self.cardinalities = cardinalities
        self.k = int(k)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.key_dim = int(key_dim)
        self.num_heads = int(num_heads)
        self.dropout_rate = float(dropout_rate)
        self.ffn_multiplier = float(ffn_multiplier)
        self.key_embedding = key_embedding
        self.key_embedding_dim = int(key_embedding_dim)
        self.num_frequencies = int(num_frequencies)
        self.sigma = float(sigma)
        self._periodic = key_embedding == "periodic" and self.num_numerical > 0

    def build(self, inputs_shape, numerical_shape=None, categorical_shape=None, candidate_index_shape=None):
        input_shape = tuple(inputs_shape)
        if len(input_shape) != 2 or input_shape[-1] != self.d_model:
            raise ValueError(f"RetrievalAttention expects inputs of shape (batch, d_model={self.d_model}); received {input_shape}.")
        d, n = self.d_model, self.num_candidates
        numerical_width = self.num_numerical * (self.key_embedding_dim if self._periodic else 1)
        width = numerical_width + sum(self.cardinalities)
        if self._periodic:
            self.key_embedder = PeriodicEmbedding(
                self.key_embedding_dim, self.num_frequencies, self.sigma, name="key_embedding"
            )
            self.key_embedder.build((None, self.num_numerical))
        # One linear map of [numerical, one-hot categorical], TabR's default initialisation
        # (torch.nn.Linear: uniform +-1/sqrt(fan_in)). No bias: only key differences are used.
        bound = 1.0 / width**0.5
        init = keras.initializers.RandomUniform(-bound, bound)
        self.key_kernel = self.add_weight(name="key_kernel", shape=(width, self.key_dim), initializer=init)
        if self.num_classes is None:  # TabR's initialisation of both label encoders
            bound = 1.0 / 2.0**0.5
            init = keras.initializers.RandomUniform(-bound, bound)
            self.label_encoder = keras.layers.Dense(d, kernel_initializer=init, bias_initializer=init, name="label_encoder")
            self.label_encoder.build((None, None, 1))
        else:
            self.label_encoder = keras.layers.Embedding(
                self.num_classes, d, embeddings_initializer=keras.initializers.RandomUniform(-1.0, 1.0), name="label_encoder"
            )
            self.label_encoder.build((None, None))
        self.hidden_units = hidden = max(1, int(round(self.ffn_multiplier * d)))
        # T's weights are the layer's own: its first layer is applied to all candidate keys at
        # once, its second after the weighted sum (see ``call``).
        glorot = keras.initializers.GlorotUniform()
        self.t_in_kernel = self.add_weight(name="t_in_kernel", shape=(self.key_dim, hidden), initializer=glorot)
        self.t_in_bias = self.add_weight(name="t_in_bias", shape=(hidden,), initializer="zeros")
        self.t_out_kernel = self.add_weight(name="t_out_kernel", shape=(hidden, d), initializer=glorot)
        self.t_dropout = keras.layers.Dropout(self.dropout_rate, name="t_dropout")
        self.weight_dropout = keras.layers.Dropout(self.dropout_rate, name="weight_dropout")
        self.candidate_numerical = self.add_weight(
            name="candidate_numerical", shape=(n, self.num_numerical), initializer="zeros", trainable=False
        )
        self.candidate_categorical = self.add_weight(
            name="candidate_categorical", shape=(n, len(self.cardinalities)), initializer="zeros", trainable=False,
            dtype="int32",
        )
        self.candidate_labels = self.add_weight(name="candidate_labels", shape=(n,), initializer="zeros", trainable=False)
        self.candidate_ids = self.add_weight(name="candidate_ids", shape=(n,), initializer="zeros", trainable=False,
                                             dtype="int32")
        self._build_frozen_contexts(n, self._count(True))
        self._build_candidate_cache()
        self._build_indexed_search(self.seed)
        self.built = True

    # ------------------------------------------------------------ candidates
    def features(self, numerical=None, categorical=None):
        """Rows' key features ``(rows, d_in)``: numerical ``(rows, n_num)`` float (as they are, or
        through the periodic key embedding: ``n_num * key_embedding_dim`` channels) and one-hot
        category codes ``(rows, n_cat)`` int, concatenated (either None when the layer has no
        such column)."""
        parts = []
        if self._periodic:
            embedded = self.key_embedder(numerical)  # (rows, n_num, key_embedding_dim)
            parts.append(ops.reshape(embedded, (-1, self.num_numerical * self.key_embedding_dim)))
        elif self.num_numerical:
            parts.append(ops.cast(numerical, self.compute_dtype))
        for column, cardinality in enumerate(self.cardinalities):
            parts.append(ops.one_hot(ops.cast(categorical[..., column], "int32"), cardinality, dtype=self.compute_dtype))
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def key_terms(self, numerical=None, categorical=None):
        """Each input column's term of the rows' keys ``(rows, n_num + n_cat, key_dim)``.

        The key is one linear map of features that are per column (a column's periodic
        embedding or value, a categorical column's one-hot code), so it is a sum of per-column
        terms, ``k = sum_j W_j phi_j(x_j)``; term ``j`` is ``W_j phi_j(x_j)``, numerical columns
        first, in input order. Summed over the column axis the terms give the keys exactly.
        ``tabcli explain`` splits distances between keys into these terms.
        """
        features = self.features(numerical, categorical)  # (rows, d_in)
        widths = [self.key_embedding_dim if self._periodic else 1] * self.num_numerical + list(self.cardinalities)
        terms, start = [], 0
        for width in widths:
            terms.append(ops.matmul(features[:, start:start + width], self.key_kernel[start:start + width]))
            start += width
        return ops.stack(terms, axis=1)

    def set_candidates(self, numerical, categorical, labels, ids) -> None:
        """Store the candidates: numerical features ``(N, n_num)`` (or None if ``n_num == 0``),
        category codes ``(N, n_cat)`` (or None), labels ``(N,)`` (class index, or standardised
        target) and ids ``(N,)`` (integers; tabcli stores each row's index in the training table).

        Raises:
            ValueError: If an array does not have the shape above.
        """
        n = self.num_candidates
        if self.num_numerical:
            self._assign(self.candidate_numerical, numerical, "float32", "numerical features", (n, self.num_numerical))
        if self.cardinalities:
            self._assign(self.candidate_categorical, categorical, "int32", "category codes", (n, len(self.cardinalities)))
        self._assign(self.candidate_labels, labels, "float32", "labels")
        self._assign(self.candidate_ids, ids, "int32", "ids")

    def _assign(self, variable, values, dtype, what, shape=None):
        values = ops.convert_to_tensor(values, dtype=dtype)
        shape = shape or (self.num_candidates,)
        if tuple(values.shape) != shape:
            raise ValueError(f"Expected candidate {what} of shape {shape}; received {tuple(values.shape)}.")
        variable.assign(values)

    # ------------------------------------------------------------------ call
    def call(self, inputs, numerical=None, categorical=None, candidate_index=None, training=None,
             return_attention_scores=False):
        query = self.features(numerical, categorical)  # (batch, d_in)
        count = self._count(candidate_index is not None)
        keys = ops.matmul(query, self.key_kernel)  # (batch, key_dim)
        if training:
            chosen = self._choose(query, candidate_index, count)  # (batch, k), most similar first
            neighbour_keys, neighbour_hidden = self._neighbour_keys(chosen, count)
        elif self._key_index is not None and self.caches_candidates:  # searched; keys and W1 k_i from the cache
            chosen = self._index_search(keys, candidate_index, count)
            _, candidate_keys, candidate_hidden = self._cached_candidates()
            neighbour_keys = ops.take(candidate_keys, chosen, axis=0)  # (batch, k, key_dim)
            neighbour_hidden = ops.take(candidate_hidden, chosen, axis=0)  # (batch, k, hidden)
        elif self._key_index is not None:  # searched; no N-sized cache: the neighbours' keys from their features
            chosen = self._index_search(keys, candidate_index, count)
            neighbour_keys, neighbour_hidden = self._neighbour_keys(chosen, count)
        else:  # the weights hold still: every candidate's key and W1 k_i come from the cache
            table, candidate_keys, candidate_hidden = self._cached_candidates()
            chosen = nearest_in_table(query, table, self.key_kernel, count, candidate_index)
            neighbour_keys = ops.take(candidate_keys, chosen, axis=0)  # (batch, k, key_dim)
            neighbour_hidden = ops.take(candidate_hidden, chosen, axis=0)  # (batch, k, hidden)
        heads = self.num_heads
        difference = ops.expand_dims(keys, 1) - neighbour_keys  # (batch, k, key_dim)
        per_head = ops.reshape(difference, (-1, count, heads, self.key_dim // heads))
        similarity = -ops.sum(ops.square(per_head), axis=-1)  # (batch, k, heads)
        weights = ops.softmax(ops.transpose(similarity, (0, 2, 1)), axis=-1)  # (batch, heads, k)
        dropped = self.weight_dropout(weights, training=training)
        labels = ops.take(ops.convert_to_tensor(self.candidate_labels), chosen, axis=0)  # (batch, k)
        read = self._read_labels(dropped, labels)  # (batch, heads, d_model / heads)
        # T(k - k_i) = W2 relu(W1 (k - k_i) + b1), with W1 (k - k_i) + b1 = (W1 k + b1) - W1 k_i:
        # W1 and b1 are applied once per row and per distinct neighbour, so each of the batch * k
        # neighbours costs a subtraction and a ReLU instead of a product; W2 is linear, so it is
        # applied once to the weighted sum of the hidden vectors rather than to each neighbour
        # (a batched matmul: TensorFlow runs the einsum "bhk,bkj->bhj" with a per-neighbour bias slower).
        hidden = ops.expand_dims(ops.matmul(keys, self.t_in_kernel) + self.t_in_bias, 1) - neighbour_hidden
        hidden = ops.matmul(dropped, ops.relu(hidden))  # (batch, heads, hidden)
        hidden = self.t_dropout(hidden, training=training)
        t_out = ops.reshape(self.t_out_kernel, (self.hidden_units, heads, self.d_model // heads))
        read = read + ops.einsum("bhj,jhe->bhe", hidden, t_out)
        output = inputs + ops.reshape(read, (-1, self.d_model))
        if return_attention_scores:
            ids = ops.take(ops.convert_to_tensor(self.candidate_ids), chosen, axis=0)
            return output, {"weights": weights, "ids": ids, "labels": labels}
        return output

    def _neighbour_keys(self, chosen, count):
        """Keys ``(batch, k, key_dim)`` and ``W1 k_i`` ``(batch, k, hidden)`` of the candidates at
        positions ``chosen`` ``(batch, k)``, computed from their stored features once per distinct
        row (neighbourhoods of a batch overlap). In a training call they carry gradient (never
        stale, both sides of the distance trained, as in TabR); in an index search too large to
        cache, they are exact where the index holds rounded keys."""
        distinct, where = ops.unique(ops.reshape(chosen, (-1,)), sorted=False, return_inverse=True)
        distinct_keys = ops.matmul(
            self.features(ops.take(self.candidate_numerical, distinct, axis=0),
                          ops.take(self.candidate_categorical, distinct, axis=0)),
            self.key_kernel,
        )  # (distinct, key_dim)
        where = ops.reshape(where, (-1, count))
        neighbour_keys = ops.take(distinct_keys, where, axis=0)
        return neighbour_keys, ops.take(ops.matmul(distinct_keys, self.t_in_kernel), where, axis=0)

    def compute_output_spec(self, inputs, numerical=None, categorical=None, candidate_index=None, training=None,
                            return_attention_scores=False):
        """The shapes and dtypes of :meth:`call`'s results, without tracing it: Keras otherwise
        traces the whole ranking to learn them each time a model holding the layer is built or
        loaded."""
        output = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        batch, count = inputs.shape[0], self._count(candidate_index is not None)
        return output, {
            "weights": keras.KerasTensor((batch, self.num_heads, count), dtype=self.compute_dtype),
            "ids": keras.KerasTensor((batch, count), dtype="int32"),
            "labels": keras.KerasTensor((batch, count), dtype=self.candidate_labels.dtype),
        }

    def _count(self, excludes_itself: bool) -> int:
        """Neighbours per row: ``k``, at most ``N`` (``N - 1`` when the row is a candidate it skips)."""
        return min(self.k, self.num_candidates - (1 if excludes_itself else 0))

    def _read_labels(self, weights, labels):
        """``sum_i p_i E(y_i)`` per head ``(batch, heads, d_model / heads)`` for weights
        ``(batch, heads, k)`` and labels ``(batch, k)``. E is linear in the label's one-hot code
        (or in the value, for regression), so the weights are summed per class (or the labels
        weighted) first and E applied once per row, not to each of the k neighbours."""
        heads, width = self.num_heads, self.d_model // self.num_heads
        if self.num_classes is None:
            kernel = ops.reshape(self.label_encoder.kernel, (1, heads, width))
            bias = ops.reshape(self.label_encoder.bias, (1, heads, width))
            value = ops.sum(weights * ops.expand_dims(labels, 1), axis=-1, keepdims=True)  # (batch, heads, 1)
            return value * kernel + ops.sum(weights, axis=-1, keepdims=True) * bias
        classes = ops.one_hot(ops.cast(labels, "int32"), self.num_classes, dtype=weights.dtype)  # (batch, k, C)
        mass = ops.matmul(weights, classes)  # (batch, heads, C)
        table = ops.reshape(self.label_encoder.embeddings, (self.num_classes, heads, width))
        return ops.einsum("bhc,che->bhe", mass, table)

    def attention_score_names(self) -> list[str]:
        """Names of the score tensors, in the order ``keras.tree.flatten`` gives them after the output."""
        return keras.tree.flatten({"weights": "weights", "ids": "ids", "labels": "labels"})

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_candidates": self.num_candidates,
                "d_model": self.d_model,
                "num_numerical": self.num_numerical,
                "cardinalities": list(self.cardinalities),
                "k": self.k,
                "num_classes": self.num_classes,
                "key_dim": self.key_dim,
                "num_heads": self.num_heads,
                "dropout_rate": self.dropout_rate,
                "ffn_multiplier": self.ffn_multiplier,
                "key_embedding": self.key_embedding,
                "key_embedding_dim": self.key_embedding_dim,
                "num_frequencies": self.num_frequencies,
                "sigma": self.sigma,
                "step_candidates": self.step_candidates,
                "seed": self.seed,
            }
        )
        return config
