"""What the benchmark runs: tables, models, seeds and training profiles.

Every table has a base config in ``configs/benchmarks/`` (data section, and for the small
bundled tables a smaller batch); each model then runs with its family's defaults
(``model={type: FAMILY}``), so the table measures what a user gets without tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"


@dataclass(frozen=True)
class Dataset:
    """One benchmark table.

    Attributes:
        name: Short name used in result files.
        config: Base config (relative to the repository root).
        data: The table's path (None: the config's own ``data.train``, for bundled tables).
        skip: Models that cannot run on this table (``multi_resolution`` needs numerical *and*
            categorical columns).
        cost: Relative cost, used to start the expensive runs first so parallel slots even out.
    """

    name: str
    config: str
    data: Path | None
    skip: tuple[str, ...] = ()
    cost: float = 1.0

    @property
    def available(self) -> bool:
        """Whether the table's file is on this machine (the shared tables are not in the repo)."""
        return self.data is None or self.data.is_file()


DATASETS = {
    d.name: d
    for d in (
        Dataset("california_housing", "configs/benchmarks/california_housing.yaml", SHARED / "california_housing.parquet",
                skip=("multi_resolution",), cost=5),
        Dataset("california_housing_raw", "configs/benchmarks/california_housing_raw.yaml",
                SHARED / "california_housing_raw.csv", cost=5),
        Dataset("bank_marketing", "configs/benchmarks/bank_marketing.yaml", SHARED / "bank_marketing.csv", cost=10),
        Dataset("penguins", "configs/benchmarks/penguins.yaml", None, cost=1),
        Dataset("breast_cancer", "configs/benchmarks/breast_cancer.yaml", None, skip=("multi_resolution",), cost=1),
        Dataset("diabetes", "configs/benchmarks/diabetes.yaml", None, cost=1),
    )
}

#: tabcli's attention families, its baselines, and the reference FT-Transformer.
MODELS = ["gbdt", "mlp", "ft_transformer", "tabular_attention", "multi_resolution", "interpretable", "ensemble",
          "tabular_attention_retrieval", "tabular_attention_context", "tabular_attention_retrieval_frozen",
          "tabular_attention_retrieval_ranked", "tabular_attention_index"]

#: Named variants of a family: ``name -> (family, config overrides)``; not in the default run
#: unless named with ``--models``.
VARIANTS = {
    # Retrieval with its defaults: TabR's context freeze after 4 epochs, one inter-feature block
    # (called "tabular_attention_retrieval_light" in docs/benchmarks.md's commit 7b3813f commands).
    "tabular_attention_retrieval": ("tabular_attention", ["model.inter_sample=retrieval"]),
    "tabular_attention_context": ("tabular_attention", ["model.inter_sample=context"]),
    # The large-table path forced on a table small enough to compare it with exact ranking:
    # sampled candidates per training step, index search for validation and predictions.
    "tabular_attention_index": ("tabular_attention", ["model.retrieval.search=index"]),
    # Two blocks and the freeze, and two blocks ranking every candidate at every step
    # (the retrieval measured at commit 36c9e28 in docs/benchmarks.md).
    "tabular_attention_retrieval_frozen": ("tabular_attention", ["model.inter_sample=retrieval",
                                                                 "model.num_feature_blocks=2",
                                                                 "model.retrieval.freeze_after_epochs=4"]),
    "tabular_attention_retrieval_ranked": ("tabular_attention", ["model.inter_sample=retrieval",
                                                                 "model.num_feature_blocks=2",
                                                                 "model.retrieval.freeze_after_epochs=null"]),
}

#: What ``run.py`` runs without ``--models``.
DEFAULT_MODELS = [m for m in MODELS if m not in VARIANTS]

#: Relative cost of a model's run (roughly its seconds per epoch relative to FT-Transformer on bank
#: marketing; the quick table measured 0.07 / 0.79 / 1.29 / 1.13 / 1.55 for mlp / interpretable /
#: tabular_attention / ensemble / multi_resolution):
#: the cells are started most expensive first (table cost x model cost), so that on 2 slots the
#: last cells to finish are short ones.
MODEL_COST = {"gbdt": 0.02, "mlp": 0.1, "interpretable": 0.8, "ft_transformer": 1.0, "tabular_attention": 1.2,
              "ensemble": 1.3, "multi_resolution": 1.6, "tabular_attention_retrieval": 1.3,
              "tabular_attention_context": 1.2, "tabular_attention_index": 1.3, "tabular_attention_retrieval_frozen": 1.6,
              "tabular_attention_retrieval_ranked": 2.0}

#: The reference's width and depth match tabcli's defaults (AttentionOptions: d_model 64,
#: 8 heads; tabular_attention: 2 feature blocks), so seconds per epoch compare like with like.
FT_TRANSFORMER = {"d_model": 64, "num_blocks": 2, "num_heads": 8}

#: ``--set`` overrides per profile. ``quick`` caps training at 10 epochs (patience 3): the whole
#: suite (6 tables x 7 models x 3 seeds = 120 runs) took 22-23 minutes on 2 cores with `context` as
#: tabular_attention's default, about 45 with retrieval (54.3 min measured at commit 8f1b4b3 with the
#: `tabular_attention_context` variant as an eighth model).
#: Measured on the benchmark machine: the deep models cost 4.5-10 s per epoch on bank marketing
#: (one thread each, two runs at a time); with patience 5 / at most 40 epochs the deep models on
#: bank marketing alone trained for 2,217 s (sum of fit times, 18.5 min on two slots), the suite
#: about 50 min (extrapolated). California needs 30-40
#: epochs to converge, so the quick California figures are under-trained (see
#: docs/benchmarks.md for converged ones). ``full`` is the tool's defaults (not timed as a whole).
PROFILES = {
    "quick": ["training.early_stopping_patience=3", "training.epochs=10"],
    "full": [],
}

SEEDS = [42, 43, 44]

#: Rows per predict call when measuring prediction throughput.
THROUGHPUT_BATCH = 4096
