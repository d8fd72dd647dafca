"""Input pipeline: preprocessed in-memory arrays -> a batched, prefetched ``tf.data.Dataset``.

Batches of shuffled row *indices*, gathered from tensors held in memory, with a ``None`` batch
dimension, so one traced graph serves every batch size; ``prefetch`` lets the next batch be
gathered while the current step runs (``tf.data`` guide, "Better performance with the tf.data API").

Against handing the arrays to ``model.fit`` (Keras' array adapter, itself a ``tf.data``
pipeline) it changes no training speed; it fixes the shuffling (one seeded index shuffle per
epoch) under which docs/benchmarks.md's figures were obtained.
"""

from __future__ import annotations

import numpy as np

__all__ = ["batches", "predict_function", "predict_in_batches"]


def batches(inputs: dict[str, np.ndarray], targets: np.ndarray | None, batch_size: int, shuffle: bool = False):
    """A ``tf.data.Dataset`` of ``batch_size``-row batches of ``inputs`` (and ``targets``).

    Args:
        inputs: Model inputs by name, each ``(rows, ...)``; all with the same number of rows.
        targets: ``(rows, ...)`` targets, or None for prediction (batches hold inputs only).
        batch_size: Rows per batch; the last batch holds the remainder (rows are never dropped).
        shuffle: Draw a new row order every epoch (seeded by the global seed that
            ``keras.utils.set_random_seed`` sets, so runs are reproducible).

    Returns:
        A dataset whose elements are ``inputs`` dicts of ``(≤ batch_size, ...)`` tensors, or
        ``(inputs, targets)`` pairs when ``targets`` is given.

    Raises:
        ValueError: If the arrays do not all have the same number of rows.
    """
    import tensorflow as tf

    rows = _row_count(inputs if targets is None else {**inputs, "targets": targets})
    tensors = {name: tf.constant(value) for name, value in inputs.items()}
    target_tensor = None if targets is None else tf.constant(targets)

    def gather(indices):
        x = {name: tf.gather(tensor, indices) for name, tensor in tensors.items()}
        return x if target_tensor is None else (x, tf.gather(target_tensor, indices))

    indices = tf.data.Dataset.range(rows)
    if shuffle:
        indices = indices.shuffle(rows, reshuffle_each_iteration=True)
    return indices.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def predict_in_batches(model, inputs: dict[str, np.ndarray], batch_size: int):
    """Outputs of ``model`` for ``inputs`` (arrays by input name, ``(rows, ...)`` each), computed
    ``batch_size`` rows at a time by :func:`predict_function` and concatenated along the rows: an
    array ``(rows, ...)``, or the model's structure of them (list, dict) for several outputs.

    Why not ``model.predict`` over :func:`batches`: on the CPU, ``model.predict`` over a
    ``tf.data`` iterator often adds a fixed wait per call, whatever the pipeline, that a plain
    ``tf.function`` does not (docs/benchmarks.md).

    Raises:
        ValueError: If the arrays do not all have the same number of rows.
    """
    import keras

    rows = _row_count(inputs)
    function = predict_function(model, inputs)
    parts = [function({name: value[start:start + batch_size] for name, value in inputs.items()})
             for start in range(0, max(rows, 1), batch_size)]
    return keras.tree.map_structure(lambda *arrays: np.concatenate([np.asarray(a) for a in arrays]), *parts)


def predict_function(model, inputs: dict[str, np.ndarray]):
    """``model(x, training=False)`` as a ``tf.function`` traced once for any number of rows: its
    input signature has a ``None`` batch dimension and the dtypes and other dimensions of
    ``inputs`` (arrays by input name, ``(rows, ...)``). Returns a callable from such a dict to the
    model's outputs (tensors).

    Keras' ``predict_on_batch`` traces for the first batch's shape and again, relaxed, for the
    next shape (the last, partial batch of almost every table): tracing the default retrieval
    model (about a thousand graph operations) costs as much as predicting thousands of rows,
    and it is paid by every ``tabcli predict``. The function is kept on the model and traced again
    only when the input names, dtypes or trailing shapes change, or a key index is attached to or
    detached from one of its layers (an index is searched through a different graph).
    """
    import tensorflow as tf

    from tabcli.models.candidates import retrieval_layers

    signature = {name: tf.TensorSpec((None, *np.shape(value)[1:]), tf.as_dtype(np.asarray(value).dtype))
                 for name, value in inputs.items()}
    key = (tuple(sorted((name, tuple(spec.shape[1:]), spec.dtype.name) for name, spec in signature.items())),
           tuple(id(layer.key_index) for layer in retrieval_layers(model)))
    cached = getattr(model, "_tabcli_predict", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    function = tf.function(lambda x: model(x, training=False), input_signature=[signature])
    object.__setattr__(model, "_tabcli_predict", (key, function))  # outside Keras' attribute tracking
    return function


def _row_count(arrays: dict) -> int:
    """The number of rows the arrays share; ValueError naming every length if they differ."""
    lengths = {name: len(value) for name, value in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"Every input must have the same number of rows; got {lengths}.")
    return next(iter(lengths.values()))
