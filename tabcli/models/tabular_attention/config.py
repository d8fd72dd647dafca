"""Typed config of the ``tabular_attention`` family."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from tabcli.models.base_config import AttentionOptions, StrictModel

__all__ = ["EXACT_SEARCH_MAX_CANDIDATES", "INDEX_STEP_CANDIDATES", "TabularAttentionConfig", "RetrievalOptions"]

#: ``search: auto`` ranks every candidate exactly up to this many candidates and searches an index
#: above: past it an exact training step costs several times a ``context`` step and the context
#: freeze's N x N ranking takes minutes (benchmarks/scale.py, docs/benchmarks.md).
EXACT_SEARCH_MAX_CANDIDATES = 50_000
#: Candidates a training step ranks with ``search: index`` and ``step_candidates: auto``.
INDEX_STEP_CANDIDATES = 8192


class RetrievalOptions(StrictModel):
    """Retrieval inter-sample attention (``inter_sample: retrieval``), after TabR (Gorishniy et al.,
    ICLR 2024): every row attends to its ``k`` nearest training rows by the squared L2 distance
    between keys, and reads their labels. See :class:`~tabcli.layers.RetrievalAttention`."""

    k: int = Field(96, ge=1, le=1024, description="Training rows retrieved per row (TabR: 96).")
    candidates: Union[int, Literal["all"]] = Field(
        "all",
        description="Training rows stored in the model as retrieval candidates: 'all', or a number >= 2 "
        "(a seeded random sample). Each costs 4 bytes per feature column + 8 in model.keras (40 bytes for "
        "8 columns), and every call computes all their keys.",
    )
    num_heads: int = Field(1, ge=1, le=64, description="Retrieval heads; must divide d_model (TabR: 1).")
    dropout_rate: float = Field(
        0.4, ge=0.0, lt=1.0,
        description="Dropout on the retrieval weights and inside T(k - k_i) (TabR's context dropout; its default 0.39).",
    )

    key_embedding: Literal["linear", "periodic"] = Field(
        "periodic",
        description="Key encoder: 'linear' (one linear map of the preprocessed features, TabR-S) or 'periodic' "
        "(each numerical column through a periodic embedding first, with model.periodic_frequencies and "
        "model.periodic_sigma; every call then embeds every candidate).",
    )
    key_embedding_dim: int = Field(
        8, ge=1, le=64, description="(key_embedding: periodic) Channels per numerical column in the key encoder."
    )
    search: Literal["auto", "exact", "index"] = Field(
        "auto",
        description="How neighbours are found. 'exact': every call ranks every candidate (cost grows with the "
        "candidates). 'index': training steps rank a random sample of step_candidates candidates, and validation, "
        "predictions and explanations search an approximate index of the candidates' keys (faiss IVF, "
        "rebuilt before each validation and stored in the run directory; its recall@k against exact search is "
        "measured and written to run.json). 'auto' (default): exact up to 50,000 candidates, index above; the "
        "run's config.yaml records the choice.",
    )
    step_candidates: Union[Annotated[int, Field(ge=2)], Literal["auto", "all"]] = Field(
        "auto",
        description="Candidates each training step ranks its rows against: a number (a fresh random sample per "
        "step, as ModernNCA trains; cost per step bounded whatever the table's size), 'all', or 'auto' (default: "
        "all with search: exact, 8,192 with search: index).",
    )
    freeze_after_epochs: Union[Annotated[int, Field(ge=0, le=10_000)], Literal["auto"], None] = Field(
        "auto",
        description="Epochs after which each training row's k neighbours are fixed for the rest of training "
        "(TabR's context freeze; 4 in pytabkit's TabR 'freeze' presets): later training steps skip ranking, "
        "while keys, weights and values keep learning; predictions always search. With search: index the "
        "neighbours are found through the index (no N x N ranking). 'auto' (default): 4 with search: exact, "
        "candidates: all and step_candidates: all, else off; null: rank at every step. A number needs "
        "candidates: all (every training row's neighbours are fixed).",
    )

    @model_validator(mode="after")
    def _freeze_needs_every_row(self):
        # The frozen table is indexed by a training row's position among the candidates; a row
        # that is not a candidate would silently read another row's neighbours.
        if self.freeze_after_epochs not in (None, "auto") and self.candidates != "all":
            raise ValueError(
                f"freeze_after_epochs ({self.freeze_after_epochs}) needs candidates: all, as it fixes every "
                f"training row's neighbours, and candidates: {self.candidates} stores only some rows. Set "
                "model.retrieval.candidates to all, or model.retrieval.freeze_after_epochs to auto or null"
            )
        return self

    def resolve(self, num_candidates: int) -> "RetrievalOptions":
        """Settle ``search``, ``step_candidates`` and ``freeze_after_epochs`` for ``num_candidates``
        stored candidates (in place, and returned), so that the run's config.yaml records what was
        trained. Written to ``__dict__``: an assignment would re-run validation."""
        search = self.search
        if search == "auto":
            search = "exact" if num_candidates <= EXACT_SEARCH_MAX_CANDIDATES else "index"
        step = self.step_candidates
        if step == "auto":
            step = "all" if search == "exact" else INDEX_STEP_CANDIDATES
        if isinstance(step, int) and step >= num_candidates:
            step = "all"
        freeze = self.freeze_after_epochs
        if freeze == "auto":
            freeze = 4 if search == "exact" and self.candidates == "all" and step == "all" else None
        self.__dict__.update(search=search, step_candidates=step, freeze_after_epochs=freeze)
        return self

    @field_validator("candidates", mode="before")
    @classmethod
    def _number_or_all(cls, value):
        if value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 2):
            return value
        raise ValueError("candidates must be 'all' or a number of training rows >= 2")


class TabularAttentionConfig(AttentionOptions):
    """Feature tokenizer -> TabularAttention -> prediction head.

    Every row becomes ``F`` feature tokens (a periodic or linear embedding per numerical column,
    an embedding table per categorical column); TabularAttention runs inter-feature attention
    over them. With ``inter_sample: retrieval`` (the default) the row then reads the labels of its
    ``retrieval.k`` nearest training rows, nearest by a learned linear projection of the
    preprocessed features (:class:`~tabcli.layers.RetrievalAttention`; TabR, Gorishniy et al., ICLR
    2024), after one inter-feature block; with ``context`` it runs inter-sample attention between the row and ``context_rows`` training rows
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
    inter_sample: Literal["retrieval", "context", "none"] = Field(
        "retrieval",
        description="Stage 2: 'retrieval' (default: each row attends to its k nearest training rows by a learned "
        "distance over its features and reads their labels, after TabR; over 3 seeds California housing test RMSE 0.410 "
        "vs 0.469 for context and bank marketing ROC AUC 0.936 vs 0.933, at 1.2x the seconds per epoch but 0.4-0.55x the "
        "prediction rate, and model.keras holds every training row; docs/benchmarks.md), 'context' (attention to "
        "context_rows random training rows stored in the model, SAINT; the faster predictor) or "
        "'none' (no inter-sample step).",
    )
    retrieval: RetrievalOptions = Field(default_factory=RetrievalOptions, description="Retrieval settings (inter_sample: retrieval).")
    num_feature_blocks: Union[Annotated[int, Field(ge=1, le=8)], Literal["auto"]] = Field(
        "auto",
        description="Stacked inter-feature attention blocks (stage 1). 'auto' (default): 1 with inter_sample: retrieval "
        "(TabR has none before its retrieval; over 3 seeds one block scored as two at 0.74-0.82x their time per epoch, "
        "docs/benchmarks.md), 2 otherwise.",
    )
    pooling: Literal["mean", "cls"] = Field(
        "mean", description="How a row's feature tokens are pooled before inter-sample attention: mean, or a [CLS] token."
    )
    context_rows: int = Field(
        64, ge=0, le=4096,
        description="(inter_sample: context) Training rows stored in the model as inter-sample attention context "
        "(0: a row attends only to itself).",
    )
    context_sample: Union[int, Literal["auto", "all"]] = Field(
        "auto",
        description="(inter_sample: context) Context rows drawn at random for each training step (all are used for predictions): "
        "a number >= 1, 'all', or 'auto' (half the training batch size, at most context_rows).",
    )

    @model_validator(mode="after")
    def _resolve_feature_blocks(self):
        # auto: 1 before a retrieval, else 2; resolved here so that the saved config.yaml records
        # the number trained (written to __dict__: an assignment would re-run validation).
        if self.num_feature_blocks == "auto":
            self.__dict__["num_feature_blocks"] = 1 if self.inter_sample == "retrieval" else 2
        return self

    @model_validator(mode="after")
    def _retrieval_heads_divide_width(self):
        if self.d_model % self.retrieval.num_heads:
            raise ValueError(
                f"retrieval.num_heads ({self.retrieval.num_heads}) must divide d_model ({self.d_model})"
            )
        return self

    def search_space(self) -> dict[str, dict]:
        """The attention space, inter-feature blocks (FT-Transformer: 1-4; here 1-3), the
        inter-sample mode (``context`` or ``retrieval``; ``none`` too when the config has it) and,
        in trials that choose ``retrieval``, TabR's context dropout (0-0.6) and the number of
        retrieved rows (TabR fixes 96). The mode is searched because it is the largest single
        difference on large tables (California housing test RMSE 0.409 retrieval vs 0.467 context,
        docs/benchmarks.md), while retrieval costs 1.21-1.25x the seconds per epoch (frozen contexts, one
        block; 3 seeds) and predicts at 0.4-0.55x the rate (docs/benchmarks.md, one thread)."""
        modes = ["context", "retrieval"] + (["none"] if self.inter_sample == "none" else [])
        retrieval = {"model.inter_sample": "retrieval"}
        return {
            **super().search_space(),
            "model.num_feature_blocks": {"int": [1, 3]},
            "model.inter_sample": {"choice": modes},
            "model.retrieval.dropout_rate": {"float": [0.0, 0.6], "when": retrieval},
            "model.retrieval.k": {"choice": [32, 64, 96, 128], "when": retrieval},
        }

    @property
    def stored_context_rows(self) -> int:
        """Context rows the model stores (0 unless ``inter_sample`` is ``context``)."""
        return self.context_rows if self.inter_sample == "context" else 0

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
