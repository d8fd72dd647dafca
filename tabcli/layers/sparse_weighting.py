"""SparseAttentionWeighting: a learned (optionally sparse) convex combination of module outputs."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["SparseAttentionWeighting", "sparsemax"]

_NORMALIZERS = ("softmax", "sparsemax")


def sparsemax(logits, axis=-1):
    """Sparsemax: the Euclidean projection of ``logits`` onto the probability simplex.

    From Martins & Astudillo 2016, "From Softmax to Sparsemax: A Sparse Model of Attention and
    Multi-Label Classification" (ICML). With ``z_(1) >= ... >= z_(n)`` the sorted logits, the
    support size is ``k(z) = max{k : 1 + k z_(k) > sum_{j<=k} z_(j)}``, the threshold is
    ``tau = (sum_{j<=k(z)} z_(j) - 1) / k(z)``, and ``sparsemax(z) = max(z - tau, 0)``. Unlike
    softmax it gives exact zeros to low logits; it is differentiable almost everywhere
    (gradients flow through the ``keras.ops`` below).

    Args:
        logits: Float tensor of any rank.
        axis: Axis along which the output sums to 1.

    Returns:
        Tensor of the shape of ``logits``: non-negative, summing to 1 along ``axis``.
    """
    logits = ops.convert_to_tensor(logits)
    if not keras.backend.is_float_dtype(logits.dtype):
        logits = ops.cast(logits, keras.config.floatx())
    z = ops.moveaxis(logits, axis, -1)
    # Sparsemax is unchanged by adding a constant; shifting by the max keeps the sums small.
    z = z - ops.max(z, axis=-1, keepdims=True)
    z_sorted = ops.flip(ops.sort(z, axis=-1), axis=-1)
    cumulative = ops.cumsum(z_sorted, axis=-1)
    k = ops.cumsum(ops.ones_like(z_sorted), axis=-1)  # 1, 2, ..., n, also for a dynamic n
    support_size = ops.max(ops.where(1.0 + k * z_sorted > cumulative, k, 0.0), axis=-1, keepdims=True)
    support_sum = ops.take_along_axis(cumulative, ops.cast(support_size, "int32") - 1, axis=-1)
    tau = (support_sum - 1.0) / support_size
    return ops.moveaxis(ops.maximum(z - tau, 0.0), -1, axis)


@keras.saving.register_keras_serializable(package="tabcli")
class SparseAttentionWeighting(keras.layers.Layer):
    """Weighted sum of ``num_modules`` same-shaped tensors, with learned module weights.

    The layer learns one logit per module, ``w`` of shape ``(num_modules,)``, initialised to
    ones (every module equally important at first). The module weights are
    ``normalizer(w / temperature)``: a lower temperature sharpens them. With
    ``normalizer="sparsemax"`` (Martins & Astudillo 2016, see :func:`sparsemax`) modules can
    get a weight of exactly 0 and then do not influence the output at all. The weights do not
    depend on the inputs: they are a global, learned choice among modules.

    Args:
        num_modules: Number of input tensors (>= 1; with 1 the layer is the identity).
        temperature: Divides the logits before normalisation; must be > 0.
        normalizer: ``"softmax"`` or ``"sparsemax"``.
        **kwargs: Standard layer keyword arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: A list or tuple of ``num_modules`` tensors of one identical shape
            ``(batch, ...)``, of any rank >= 2.
        return_attention_scores: If ``True``, also return the module weights.

    Returns:
        ``sum_i weight_i * inputs[i]``, of the inputs' shape; with
        ``return_attention_scores=True`` a tuple ``(output, weights)`` where ``weights`` is
        ``(batch, num_modules)``: the module weights repeated for every sample, so that
        ``model.predict`` can concatenate them along the batch axis.

    Attributes:
        logits: The learned logits ``w``, a variable of shape ``(num_modules,)``.
        module_weights: NumPy array ``(num_modules,)`` of the current normalised weights.

    Raises:
        ValueError: On ``num_modules < 1``, ``temperature <= 0``, an unknown ``normalizer``,
            inputs that are not a list/tuple of ``num_modules`` tensors, inputs of different
            shapes, inputs of rank < 2, or ``module_weights`` read before the layer is built.
    """

    def __init__(self, num_modules: int, temperature: float = 1.0, normalizer: str = "softmax", **kwargs):
        super().__init__(**kwargs)
        if int(num_modules) < 1:
            raise ValueError(f"num_modules must be a positive integer; received num_modules={num_modules}.")
        if float(temperature) <= 0:
            raise ValueError(f"temperature must be > 0; received temperature={temperature}.")
        if normalizer not in _NORMALIZERS:
            raise ValueError(f"normalizer must be one of {_NORMALIZERS}; received normalizer={normalizer!r}.")
        self.num_modules = int(num_modules)
        self.temperature = float(temperature)
        self.normalizer = normalizer

    def build(self, input_shape):
        self.logits = self.add_weight(name="logits", shape=(self.num_modules,), initializer="ones")
        super().build(input_shape)

    def _normalized_weights(self):
        scaled = self.logits / self.temperature
        return ops.softmax(scaled) if self.normalizer == "softmax" else sparsemax(scaled)

    @property
    def module_weights(self):
        """NumPy array ``(num_modules,)``: the current normalised module weights."""
        if not self.built:
            raise ValueError(f"Layer '{self.name}' has no weights yet: call it on inputs first.")
        return ops.convert_to_numpy(self._normalized_weights())

    def call(self, inputs, return_attention_scores=False):
        # Checked on every call, not only in build(): a built layer can get other inputs.
        self._check_inputs(inputs)
        weights = ops.cast(self._normalized_weights(), inputs[0].dtype)
        output = ops.tensordot(weights, ops.stack(inputs, axis=0), axes=1)
        if return_attention_scores:
            batch = ops.shape(inputs[0])[0]
            return output, ops.broadcast_to(weights[None, :], (batch, self.num_modules))
        return output

    def _check_inputs(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"SparseAttentionWeighting expects a list or tuple of {self.num_modules} tensors; "
                f"received a single tensor of shape {tuple(inputs.shape)}."
            )
        if len(inputs) != self.num_modules:
            raise ValueError(
                f"expected {self.num_modules} inputs (num_modules={self.num_modules}), "
                f"received {len(inputs)}."
            )
        first = tuple(inputs[0].shape)
        if len(first) < 2:
            raise ValueError(f"Inputs must have rank >= 2, (batch, ...); received shape {first}.")
        for i, x in enumerate(inputs[1:], start=1):
            shape = tuple(x.shape)
            # Unknown (None) axes, e.g. the batch axis of a symbolic input, match any size.
            if len(shape) != len(first) or any(
                a is not None and b is not None and a != b for a, b in zip(first, shape)
            ):
                raise ValueError(
                    "All inputs must have the same shape; received input 0 of shape "
                    f"{first} and input {i} of shape {shape}."
                )

    def attention_score_names(self) -> list[str]:
        """Names of the score tensors returned with ``return_attention_scores=True``."""
        return ["module_weights"]

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_modules": self.num_modules, "temperature": self.temperature, "normalizer": self.normalizer}
        )
        return config
