"""`tabcli tune --refit K`: the best config and the starting config, each trained with K seeds, compared
on the test split (mean ± std). Test rows are read here only, after the search has chosen."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable

from tabcli.runs.run_dir import write_atomic, write_json_atomic
from tabcli.tune.space import trial_config

__all__ = ["refit"]


def _summary(values: list[float]) -> dict[str, Any]:
    return {"values": values, "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def refit(base: dict, best_params: dict, seeds: int, folder: Path, metric: str,
          progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the starting config (``base``) and the best config (``base`` + ``best_params``) with
    seeds ``seed, seed + 1, ..., seed + seeds - 1``, in ``<folder>/refit/{default,best}-<seed>``;
    write ``refit.json`` and ``refit.md``.

    The split stays the search's (``data.split.seed`` fixed to the search's seed; the seeds vary
    initialisation and batch order), so no refit test row was a training or validation row of
    the search: the protocol of Gorishniy et al. (tune on one split, report seeds on its test).

    Returns:
        ``{"metric": "test.<metric>", "seeds": [...], "default": {"values", "mean", "std"},
        "best": {...}}``.

    Raises:
        TabcliError: If a refit run fails (its run directory records why).
    """
    from tabcli.experiment import train_experiment

    say = progress or (lambda text: None)
    first_seed = int(base.get("seed", 42))
    seed_list = list(range(first_seed, first_seed + seeds))
    results: dict[str, Any] = {"metric": f"test.{metric}", "seeds": seed_list}
    for label, params in (("default", {}), ("best", best_params)):
        values = []
        for seed in seed_list:
            split_seed = base["data"]["split"].get("seed")
            fixed = {"data.split.seed": first_seed if split_seed is None else split_seed}
            config = trial_config(base, {**params, **fixed, "seed": seed}, source=f"of the {label} refit (seed {seed})")
            run_dir = folder / "refit" / f"{label}-{seed}"
            say(f"refit {label} config, seed {seed} -> {run_dir}")
            result = train_experiment(config, run_dir=run_dir, console=None)
            values.append(float(result.metrics["test"][metric]))
        results[label] = _summary(values)
    write_json_atomic(folder / "refit.json", results)
    lines = [f"| config | test.{metric} mean ± std | per seed ({', '.join(map(str, seed_list))}) |", "|---|---|---|"]
    for label in ("default", "best"):
        entry = results[label]
        lines.append(f"| {label} | {entry['mean']:.4f} ± {entry['std']:.4f} | {', '.join(f'{v:.4f}' for v in entry['values'])} |")
    write_atomic(folder / "refit.md", lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8"))
    return results
