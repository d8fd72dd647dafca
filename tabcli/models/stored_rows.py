"""The training rows a Keras model stores: SAINT-style context rows and TabR-style retrieval
candidates, chosen (seeded) from the prepared training split, and the model built with them."""

from __future__ import annotations

import numpy as np

from tabcli.config import ExperimentConfig
from tabcli.data.prepare import PreparedData
from tabcli.models.spec import ModelSpec

__all__ = ["build_keras_model", "resolve_retrieval", "retrieval_parts", "freeze_epochs", "searches_index"]


def _context_rows(data: PreparedData, count: int, seed: int) -> tuple[dict[str, np.ndarray], list]:
    """A seeded random sample of ``count`` preprocessed training rows, and their row ids."""
    n = len(data.targets["train"])
    count = min(count, n)
    chosen = np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False)) if count else np.array([], int)
    rows = {k: v[chosen] for k, v in data.inputs["train"].items()}
    ids = data.frame("train").index.to_numpy()[chosen].tolist()
    return rows, ids


def _parts(model_config) -> list:
    """The model config itself, or an ensemble's branches."""
    return list(getattr(model_config, "branches", [model_config]))


def _context_count(model_config) -> int:
    """How many context rows the model stores (the largest of its tabular_attention parts)."""
    return max((getattr(b, "stored_context_rows", 0) for b in _parts(model_config)), default=0)


def retrieval_parts(model_config) -> list:
    """The parts of the model (itself, or an ensemble's branches) with ``inter_sample: retrieval``."""
    return [b for b in _parts(model_config) if getattr(b, "inter_sample", None) == "retrieval"]


def _candidate_count(model_config) -> int | str | None:
    """How many retrieval candidates the model stores: None (no retrieval), a number, or "all"."""
    counts = [b.retrieval.candidates for b in retrieval_parts(model_config)]
    if not counts:
        return None
    return "all" if "all" in counts else max(counts)


def freeze_epochs(model_config) -> int | None:
    """The earliest ``retrieval.freeze_after_epochs`` of the model's retrieval parts, or None."""
    epochs = [b.retrieval.freeze_after_epochs for b in retrieval_parts(model_config)
              if b.retrieval.freeze_after_epochs is not None]
    return min(epochs) if epochs else None


def searches_index(model_config) -> bool:
    """Whether the model's retrieval searches an approximate index (``retrieval.search: index``)."""
    return any(b.retrieval.search == "index" for b in retrieval_parts(model_config))


def resolve_retrieval(model_config, training_rows: int) -> None:
    """Settle each retrieval part's ``search``, ``step_candidates`` and ``freeze_after_epochs``
    for its number of candidates among ``training_rows`` rows (in place), before the run's
    config.yaml is written."""
    for part in retrieval_parts(model_config):
        count = part.retrieval.candidates
        part.retrieval.resolve(training_rows if count == "all" else min(int(count), training_rows))


def build_keras_model(config: ExperimentConfig, data: PreparedData, spec: ModelSpec):
    """The uncompiled Keras model of ``config.model`` for ``data``, with its stored rows.

    ``inter_sample: context`` parts store ``context_rows`` training rows, a seeded sample
    (``config.seed``); ``inter_sample: retrieval`` parts store every training row (or a seeded
    sample of ``retrieval.candidates``) as retrieval candidates (``tabcli.models.candidates``); the
    other families ignore both.

    Returns:
        ``(model, context_ids, candidates)``: the model, the context rows' indices in the
        training table, and the :class:`~tabcli.models.candidates.Candidates` (or None).
    """
    from tabcli.models.registry import build_model
    from tabcli.models.candidates import choose_candidates

    context, context_ids = _context_rows(data, _context_count(config.model), config.seed)
    candidates = None
    count = _candidate_count(config.model)
    if count is not None:
        candidates = choose_candidates(
            data.model_inputs("train"), data.targets["train"], data.frame("train").index.to_numpy(), count, config.seed
        )
    model = build_model(config.model, spec, {k: v for k, v in context.items() if v.shape[1] > 0}, candidates)
    return model, context_ids, candidates
