"""Typed config of the ``tabular_attention`` family."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import Field, field_validator

from tabcli.models.base_config import AttentionOptions

__all__ = ["TabularAttentionConfig"]


class TabularAttentionConfig(AttentionOptions):
    """Feature tokenizer -> TabularAttention -> prediction head.

    Every row becomes ``F`` feature tokens (a periodic or linear embedding per numerical column,
    an embedding table per categorical column); TabularAttention runs inter-feature attention
    over them, then inter-sample attention between the row and ``context_rows`` training rows
    stored in the model (SAINT-style intersample attention; a row's prediction depends only on
    the row itself and those stored rows, never on the rest of its batch).

    In training, each step uses a random ``context_sample`` of the stored rows (with the
    sampled-softmax correction, see :class:`~tabcli.layers.TabularAttention`); predictions always
    use them all. The default, ``auto``, draws half as many rows as the training batch holds, so
    the context never costs more than half of the batch's own inter-feature work: at batch 256 all
    64 rows are used (bank marketing, California housing: every context row, as before), at batch 32
    16 of them (diabetes: 2.70x -> 1.21x, breast cancer 2.07x -> 1.90x the seconds per epoch of an
    FT-Transformer of the same width and depth, together with the joint stage-1 pass;
    docs/benchmarks.md).
    """

    type: Literal["tabular_attention"] = Field("tabular_attention", description="Model family.")
    num_feature_blocks: int = Field(2, ge=1, le=8, description="Stacked inter-feature attention blocks (stage 1).")
    pooling: Literal["mean", "cls"] = Field(
        "mean", description="How a row's feature tokens are pooled before inter-sample attention: mean, or a [CLS] token."
    )
    context_rows: int = Field(
        64, ge=0, le=4096,
        description="Training rows stored in the model as inter-sample attention context (0: a row attends only to itself).",
    )
    context_sample: Union[int, Literal["auto", "all"]] = Field(
        "auto",
        description="Context rows drawn at random for each training step (all are used for predictions): "
        "a number >= 1, 'all', or 'auto' (half the training batch size, at most context_rows).",
    )

    @field_validator("context_sample", mode="before")
    @classmethod
    def _number_auto_or_all(cls, value):
        # One message for every wrong value, rather than one per member of the union; and YAML's
        # true/false are not row counts.
        if value in ("auto", "all") or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError("context_sample must be a number of rows >= 1, 'auto' (half the training batch) or 'all'")

    def context_sample_for(self, batch_size: int | None) -> int | None:
        """The layer's ``context_sample`` for training batches of ``batch_size`` rows: a number of
        rows, or None for all of them (``"all"``; ``"auto"`` with an unknown batch size; a sample
        of at least ``context_rows``)."""
        if self.context_sample == "all" or (self.context_sample == "auto" and batch_size is None):
            return None
        size = max(1, batch_size // 2) if self.context_sample == "auto" else self.context_sample
        return None if size >= self.context_rows else size
