"""Attention scores as extra outputs of an exported model, named and shaped as in a run's
``attention/*.npz`` (:func:`tabcli.runs.attention.collect_attention`)."""

from __future__ import annotations

from tabcli.errors import ConfigError

__all__ = ["AttentionOutputs"]


class AttentionOutputs:
    """The model's attention scores beside its prediction, for an export graph.

    Built from the run's model and its attention manifest: ``model`` returns
    ``[prediction, *scores]`` (:func:`tabcli.runs.attention.attention_model`), and
    :meth:`outputs` turns the scores into the arrays a run saves: weights float32, retrieved
    row ids int64, retrieved rows' labels in the target's units (float64) or as class names
    (strings), length-1 axes dropped. Each is ``(rows, ...)``; :attr:`description` gives its axes
    and their labels.

    Args:
        run: A :class:`~tabcli.runs.run.LoadedRun` of a Keras family.

    Raises:
        ConfigError: If the model has no attention layer (``mlp``).
    """

    def __init__(self, run):
        from tabcli.models.registry import attention_manifest
        from tabcli.runs.attention import attention_model, score_layout

        built = attention_model(run.model)
        if built is None:
            raise ConfigError(f"The '{run.config.model.type}' model has no attention layer, so there are no attention "
                              "scores to export; export it without --attention.")
        self.model, names = built
        manifest = attention_manifest(run.config.model, run.model_spec(), run.context_ids)
        self._scores = []
        for (layer, score), tensor in zip(names, self.model.outputs[1:]):
            layout = score_layout(layer, score, manifest, len(tensor.shape))
            shape = [None if i == 0 else size for i, size in enumerate(tensor.shape) if i not in layout.squeeze]
            self._scores.append(layout._replace(description={**layout.description, "shape": shape}))

    @property
    def description(self) -> dict:
        """``{name: {"layer", "score", "meaning"?, "axes", "labels"?, "shape"}}`` of every extra
        output; ``shape`` has ``None`` for the rows."""
        return {score.key: score.description for score in self._scores}

    def outputs(self, inputs: dict, decode_target) -> tuple:
        """``(prediction, {name: tensor})`` for the preprocessed ``inputs`` (graph tensors);
        ``decode_target`` turns stored labels into the target's units or class names
        (:meth:`~tabcli.export.preprocessing_graph.GraphPreprocessing.decode_target`)."""
        import tensorflow as tf

        raw, *values = self.model(inputs, training=False)
        named = {}
        for score, value in zip(self._scores, values):
            for position in score.squeeze:
                value = tf.squeeze(value, axis=position)
            if score.kind == "row_id":
                value = tf.cast(tf.round(value), tf.int64) if value.dtype.is_floating else tf.cast(value, tf.int64)
            elif score.kind == "target":
                value = decode_target(value)
            else:
                value = tf.cast(value, tf.float32)
            named[score.key] = value
        return raw, named
