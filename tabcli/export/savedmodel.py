"""Export a trained Keras run as a TensorFlow SavedModel or an ONNX file that takes the table's raw columns."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from tabcli.errors import ConfigError
from tabcli.export.inputs import input_names

__all__ = ["export_run", "ExportResult", "FORMATS", "METADATA_FILE"]

#: Formats ``tabcli export`` writes: a SavedModel folder, or one ``.onnx`` file.
FORMATS = ("savedmodel", "onnx")
#: The export's description, in the SavedModel's ``assets`` folder.
METADATA_FILE = "tabcli_export.json"


@dataclass
class ExportResult:
    """What was exported.

    Attributes:
        path: The SavedModel folder or the ONNX file.
        metadata: The content of its ``assets/tabcli_export.json`` (SavedModel) or its
            ``tabcli_export`` metadata property (ONNX).
    """

    path: Path
    metadata: dict


def _metadata(run, fmt: str) -> dict:
    from tabcli._version import __version__

    schema = run.schema
    outputs = {"prediction": "the value in the target's units"} if schema.task == "regression" else {
        "probabilities": "one column per class, in the order of `classes`; rows sum to 1"}
    return {
        "tabcli_version": __version__,
        "model_type": run.config.model.type,
        "task": schema.task,
        "target": schema.target,
        "inputs": {**{c: "float64 (NaN for missing)" for c in schema.numerical},
                   **{c: ("string (empty or one of data.na_values for missing"
                          + (", exactly as written: surrounding spaces are kept)" if fmt == "onnx" else ")"))
                      for c in schema.categorical}},
        "input_names": input_names(schema.features),
        "classes": None if schema.task == "regression" else [str(c) for c in schema.classes],
        "outputs": outputs,
        "test_metrics": (run.metrics or {}).get("test"),
    }


def _module(run, names: dict[str, str], portable: bool = False, attention=None):
    """A ``tf.Module`` whose ``serve`` takes one tensor per column, named ``names[column]`` (the
    metadata's ``input_names``), and returns the outputs, with the attention scores of
    ``attention`` (an :class:`AttentionOutputs`) among them if given."""
    import keras
    import tensorflow as tf

    from tabcli.export.preprocessing_graph import GraphPreprocessing
    from tabcli.models.candidates import CANDIDATE_INDEX, retrieval_layers

    schema = run.schema
    model = run.model
    for layer in retrieval_layers(model):
        layer.attach_index(None)  # exact search: an index is searched outside the graph
        layer.enable_cache(False)  # no variable assignments in the exported graph
    signature = {names[c]: tf.TensorSpec([None], tf.float64, name=names[c]) for c in schema.numerical}
    signature.update({names[c]: tf.TensorSpec([None], tf.string, name=names[c]) for c in schema.categorical})
    classes = None if schema.task == "regression" else len(schema.classes)
    # New rows are not training rows: a retrieval model's ``candidate_index`` is -1 for every row.
    needs_index = CANDIDATE_INDEX in {tensor.name for tensor in keras.tree.flatten(model.inputs)}

    class Export(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model if attention is None else attention.model  # the latter holds the former's layers
            self.preprocessing = GraphPreprocessing(run.preprocessor, run.config.data.na_values, portable=portable)

        @tf.function(input_signature=[signature])
        def serve(self, columns):
            inputs = self.preprocessing({column: columns[name] for column, name in names.items()})
            if needs_index:
                rows = tf.shape(next(iter(columns.values())))[0]
                inputs[CANDIDATE_INDEX] = tf.fill([rows], tf.constant(-1, tf.int32))
            if attention is None:
                raw, scores = self.model(inputs, training=False), {}
            else:
                raw, scores = attention.outputs(inputs, self.preprocessing.decode_target)
            if classes is None:
                return {"prediction": self.preprocessing.decode_target(raw[:, 0]), **scores}
            if classes == 2 and raw.shape[-1] == 1:  # P(class 1)
                return {"probabilities": tf.concat([1.0 - raw, raw], axis=1), **scores}
            return {"probabilities": raw, **scores}

    return Export()


def export_run(run_dir: str | Path, output: str | Path, fmt: str = "savedmodel", overwrite: bool = False,
               attention: bool = False) -> ExportResult:
    """Write ``output``: a SavedModel whose ``serving_default`` signature (or an ONNX file whose
    graph) takes one named input per feature column (float64 numbers, NaN for missing; strings
    for categories) and returns ``probabilities`` ``(rows, classes)`` or ``prediction``
    ``(rows,)`` in the target's units.

    Args:
        run_dir: A completed run directory of a Keras family.
        output: The folder (SavedModel) or file (ONNX) to write; it must not exist unless ``overwrite``.
        fmt: ``"savedmodel"`` or ``"onnx"``.
        overwrite: Replace an existing ``output``.
        attention: Also output every attention score of the model, named ``<layer>__<score>``
            and shaped as in the run's ``attention/*.npz`` (``(rows, ...)``; described under
            ``attention_outputs`` in the metadata).

    Returns:
        :class:`ExportResult`.

    Raises:
        ConfigError: For an incomplete run, an unknown format, a family that cannot be exported
            (``gbdt``), ``attention`` for a model without attention layers, a table with date columns, an existing ``output`` without ``overwrite``, or
            ONNX without tf2onnx installed; nothing is written.
    """
    from tabcli.runs.run import LoadedRun

    if fmt not in FORMATS:
        raise ConfigError(f"Unknown export format '{fmt}'; tabcli exports {', '.join(FORMATS)}.")
    output = Path(output)
    if output.exists() and not overwrite:
        raise ConfigError(f"'{output}' already exists; pass --overwrite to replace it, or choose another --output.")
    run = LoadedRun(run_dir)
    if not run.backend.has_attention:
        raise ConfigError(f"Runs of the '{run.config.model.type}' family cannot be exported yet; export a Keras family's run.")
    if run.schema.date_columns:
        raise ConfigError(f"The run in '{run.path}' has date columns ({', '.join(run.schema.date_columns)}), which are "
                          "expanded by pandas and cannot be exported; convert them to numbers in the table and retrain.")
    import tensorflow as tf

    metadata = _metadata(run, fmt)
    scores = None
    if attention:
        from tabcli.export.attention_outputs import AttentionOutputs

        scores = AttentionOutputs(run)
        metadata["attention_outputs"] = scores.description
    module = _module(run, metadata["input_names"], portable=fmt == "onnx", attention=scores)
    if fmt == "onnx":
        from tabcli.export.onnx import write_onnx
        from tabcli.runs.run_dir import write_atomic

        write_atomic(output, lambda tmp: write_onnx(module, tmp, metadata))
        return ExportResult(output, metadata)
    staging = output.with_name(f".{output.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(staging), signatures={"serving_default": module.serve})
        (staging / "assets").mkdir(exist_ok=True)
        (staging / "assets" / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(output, metadata)
