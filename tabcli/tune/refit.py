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
          progress: Callable[[str], None] | None = None, jobs: int = 1) -> dict[str, Any]:
    """Train the starting config (``base``) and the best config (``base`` + ``best_params``) with
    seeds ``seed, seed + 1, ..., seed + seeds - 1``, in ``<folder>/refit/{default,best}-<seed>``;
    write ``refit.json`` and ``refit.md``.

    The split stays the search's (``data.split.seed`` fixed to the search's seed; the seeds vary
    initialisation and batch order), so no refit test row was a training or validation row of
    the search: the protocol of Gorishniy et al. (tune on one split, report seeds on its test).

    Args:
        jobs: With 1, the runs train one after another in this process; with more, ``jobs``
            ``tabcli train`` processes at a time (each with cores / jobs threads, as `tabcli batch`),
            each from its complete config written as ``<folder>/refit/<label>-<seed>.yaml``.

    Returns:
        ``{"metric": "test.<metric>", "seeds": [...], "default": {"values", "mean", "std"},
        "best": {...}}``.

    Raises:
        TabcliError: If a refit run fails (its run directory records why).
    """
    say = progress or (lambda text: None)
    first_seed = int(base.get("seed", 42))
    seed_list = list(range(first_seed, first_seed + seeds))
    split_seed = base["data"]["split"].get("seed")
    fixed = {"data.split.seed": first_seed if split_seed is None else split_seed}
    runs = []  # (label, seed, config, run directory)
    for label, params in (("default", {}), ("best", best_params)):
        for seed in seed_list:
            config = trial_config(base, {**params, **fixed, "seed": seed}, source=f"of the {label} refit (seed {seed})")
            runs.append((label, seed, config, folder / "refit" / f"{label}-{seed}"))
    values = _train_parallel(runs, jobs, say) if jobs > 1 else _train_here(runs, say)
    results: dict[str, Any] = {"metric": f"test.{metric}", "seeds": seed_list}
    for label in ("default", "best"):
        results[label] = _summary([float(values[run_dir]["test"][metric]) for lab, _, _, run_dir in runs if lab == label])
    write_json_atomic(folder / "refit.json", results)
    lines = [f"| config | test.{metric} mean ± std | per seed ({', '.join(map(str, seed_list))}) |", "|---|---|---|"]
    for label in ("default", "best"):
        entry = results[label]
        lines.append(f"| {label} | {entry['mean']:.4f} ± {entry['std']:.4f} | {', '.join(f'{v:.4f}' for v in entry['values'])} |")
    write_atomic(folder / "refit.md", lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8"))
    return results


def _train_here(runs: list, say: Callable[[str], None]) -> dict[Path, dict]:
    from tabcli.training.train import train_experiment

    metrics = {}
    for label, seed, config, run_dir in runs:
        say(f"refit {label} config, seed {seed} -> {run_dir}")
        metrics[run_dir] = train_experiment(config, run_dir=run_dir, console=None).metrics
    return metrics


def _train_parallel(runs: list, jobs: int, say: Callable[[str], None]) -> dict[Path, dict]:
    from tabcli.batch.plan import PlannedRun
    from tabcli.batch.runner import run_all
    from tabcli.config.loader import config_to_yaml
    from tabcli.errors import TabcliError

    planned = []
    for label, seed, config, run_dir in runs:
        path = run_dir.with_suffix(".yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda tmp, c=config: tmp.write_text(config_to_yaml(c), encoding="utf-8"))
        planned.append(PlannedRun(config_path=path, config_id=f"{label}-{seed}", seed=seed, run_dir=run_dir,
                                  log=run_dir.with_suffix(".log")))
    say(f"refit: {len(planned)} runs, {jobs} at a time, in {runs[0][3].parent}")

    def done(outcome) -> None:
        say(f"refit {outcome.run.config_id}: {outcome.status} ({outcome.seconds:.0f} s)")

    outcomes = run_all(planned, [], jobs, resume=False, on_done=done)
    failed = [o for o in outcomes if o.status != "completed"]
    if failed:
        raise TabcliError(f"refit run {failed[0].run.run_dir} {failed[0].status}: {failed[0].error} "
                          f"(log: {failed[0].run.log})")
    from tabcli.runs.run_dir import RunDirectory

    return {run.run_dir: RunDirectory(run.run_dir).metrics for run in planned}
