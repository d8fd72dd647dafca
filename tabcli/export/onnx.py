"""Export a trained Keras run as one ONNX file that takes the table's raw columns.

The model and its preprocessing are written as a SavedModel built from ONNX-compatible operations
(:class:`~tabcli.export.preprocessing_graph.GraphPreprocessing` with ``portable=True``) and
converted by tf2onnx (its saved-model path, which carries the category lookup tables over as
``ai.onnx.ml`` ``CategoryMapper`` nodes). One TensorFlow operation has no tf2onnx converter:
``Erfc``, in Keras' exact GELU, is written as ``1 - Erf``.

tf2onnx's graph optimizers run as it ships them but for one: its einsum rewrite (each ``Einsum``
as ``Transpose``/``MatMul``/``ReduceSum`` nodes) first times every order of the equation's letters
in a small ONNX runtime to pick the one with the cheapest transposes, a search that took 9 of the
24 s of a retrieval model's export and bought no ONNX Runtime throughput measurable above the
spread of repeated timings (docs/benchmarks.md, "Export"). Here each equation is decomposed as
written.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tabcli.errors import ConfigError

__all__ = ["write_onnx", "OPSET"]

#: The ONNX opset written (the newest tf2onnx 1.16-1.17 write).
OPSET = 18


def _erfc(ctx, node, name, args):
    """tf2onnx handler: ``Erfc(x)`` as ``1 - Erf(x)``."""
    import numpy as np
    from tf2onnx import utils

    node.type = "Erf"
    dtype = ctx.get_dtype(node.input[0])
    one = ctx.make_const(utils.make_name(node.name + "_one"), np.array(1, dtype=utils.map_onnx_to_numpy_type(dtype)))
    complement = ctx.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name(node.name + "_erfc"))
    ctx.replace_inputs(complement, [one.output[0], node.output[0]])
    ctx.set_dtype(complement.output[0], dtype)
    ctx.copy_shape(node.output[0], complement.output[0])


def _einsum_as_written():
    """tf2onnx's ``EinsumOptimizer`` without its search over letter orders: each ``Einsum`` node is
    replaced by the decomposition of its own equation (``decompose_einsum_equation``), as tf2onnx
    does after the search. An equation it cannot decompose raises, and tf2onnx's optimizer loop then
    keeps the graph as it was (the ``Einsum`` node stays; ONNX Runtime runs it)."""
    from tf2onnx.optimizer.einsum_optimizer import EinsumOptimizer, decompose_einsum_equation

    class EinsumAsWritten(EinsumOptimizer):
        def _optimize_einsum(self, node, graph):
            if graph.get_shape(node.input[0]) is None:  # the decomposition needs the rank
                return False
            equation = node.attr["equation"].s.decode("ascii")
            new_nodes = list(decompose_einsum_equation(equation).to_tf2onnx(graph, node))
            if not new_nodes:
                return False
            last = new_nodes[-1]
            graph.replace_all_inputs(node.output[0], last.output[0])
            graph.safe_remove_nodes([node])
            if node.output[0] in graph.outputs:
                graph.make_node("Identity", [last.output[0]], outputs=[node.output[0]], name=f"{node.name}_final")
            return True

    return EinsumAsWritten


def _optimizers():
    """tf2onnx's default graph optimizers, in its order, with :func:`_einsum_as_written` in place of
    its einsum rewrite."""
    from collections import OrderedDict

    from tf2onnx import optimizer

    einsum = _einsum_as_written()
    return OrderedDict((name, einsum if name == "einsum_optimizer" else factory)
                       for name, factory in optimizer._get_optimizers().items())


def write_onnx(module, path: Path, metadata: dict) -> None:
    """Convert ``module`` (a ``tf.Module`` whose ``serve`` is the export signature, built with
    portable preprocessing) to the ONNX file ``path``, with ``metadata`` as the model's
    ``tabcli_export`` metadata property (JSON).

    Raises:
        ConfigError: If tf2onnx or onnx is not installed.
    """
    try:
        import onnx
        from tf2onnx import tf_loader
        from tf2onnx.convert import _convert_common
    except ImportError:
        raise ConfigError("ONNX export needs tf2onnx and onnx: pip install 'tabcli[export]'.") from None
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="tabcli-export-") as folder:
        tf.saved_model.save(module, folder, signatures={"serving_default": module.serve})
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            folder, None, None, return_initialized_tables=True, return_tensors_to_rename=True)
        # tf2onnx names each input after its placeholder, which TensorFlow lower-cases
        # ("AveBedrms" -> "avebedrms"); the ONNX inputs take the signature's keys instead.
        # The loaded signature keeps the keys, and its specs the placeholders' names.
        _, keys = tf.saved_model.load(folder).signatures["serving_default"].structured_input_signature
        renames.update({f"{spec.name}:0": key for key, spec in keys.items()})
        with tf.device("/cpu:0"):
            model, _ = _convert_common(graph_def, name="tabcli", opset=OPSET, custom_op_handlers={"Erfc": (_erfc, [])},
                                       input_names=inputs, output_names=outputs, tensors_to_rename=renames,
                                       initialized_tables=tables, optimizers=_optimizers())
    entry = model.metadata_props.add()
    entry.key, entry.value = "tabcli_export", json.dumps(metadata, default=str)
    onnx.save(model, str(path))
