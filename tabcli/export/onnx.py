"""Export a trained Keras run as one ONNX file that takes the table's raw columns.

The model and its preprocessing are written as a SavedModel built from ONNX-compatible operations
(:class:`~tabcli.export.preprocessing_graph.GraphPreprocessing` with ``portable=True``) and
converted by tf2onnx (its saved-model path, which carries the category lookup tables over as
``ai.onnx.ml`` ``CategoryMapper`` nodes). One TensorFlow operation has no tf2onnx converter:
``Erfc``, in Keras' exact GELU, is written as ``1 - Erf``.
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
        with tf.device("/cpu:0"):
            model, _ = _convert_common(graph_def, name="tabcli", opset=OPSET, custom_op_handlers={"Erfc": (_erfc, [])},
                                       input_names=inputs, output_names=outputs, tensors_to_rename=renames,
                                       initialized_tables=tables)
    entry = model.metadata_props.add()
    entry.key, entry.value = "tabcli_export", json.dumps(metadata, default=str)
    onnx.save(model, str(path))
