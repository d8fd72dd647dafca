"""A batch split over machines: ``--shard K/N`` picks a part of the plan; ``batch.json`` records
what a batch folder holds, so ``tabcli batch merge`` can put the parts back together.

The split needs no coordination: every machine expands the same plan, sorts it by (config id,
seed) and takes every N-th run starting at the K-th (round-robin, so the slow families spread
over the shards).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tabcli.batch.plan import PlannedRun
from tabcli.batch.runner import Outcome
from tabcli.data.dataset import take_shard
from tabcli.errors import ConfigError
from tabcli.runs.run_dir import write_json_atomic

__all__ = ["MANIFEST", "select_shard", "write_manifest", "read_shards"]

#: The file, in a batch's output folder, that lists its plan, its shard and its runs' outcomes.
MANIFEST = "batch.json"


def _key(run: PlannedRun) -> tuple[str, int]:
    return run.config_id, run.seed


def select_shard(planned: list[PlannedRun], index: int, count: int) -> list[PlannedRun]:
    """The runs of shard ``index`` (1-based) of ``count``: every ``count``-th run of the plan
    sorted by (config id, seed), starting at position ``index - 1``. The shards are disjoint and
    together hold the whole plan; a shard may be empty when the plan has fewer runs than shards."""
    return take_shard(sorted(planned, key=_key), (index, count))


def _relative(path: Path, output: Path) -> str:
    return Path(os.path.relpath(path, output)).as_posix()


def write_manifest(output: Path, planned: list[PlannedRun], shard: tuple[int, int], overrides: list[str],
                   outcomes: list[Outcome]) -> Path:
    """Write ``<output>/batch.json``: the whole plan (config id, seed), the shard ``(K, N)``, the
    ``--set`` overrides and one record per run of this folder (paths relative to ``output``, so
    the folder can be moved, e.g. uploaded and downloaded as a CI artifact)."""
    runs = [{
        "config": o.run.config_id, "seed": o.run.seed, "config_path": str(o.run.config_path),
        "run_dir": _relative(o.run.run_dir, output), "log": _relative(o.run.log, output),
        "family": o.run.family, "dataset": o.run.dataset, "task": o.run.task, "config_error": o.run.error,
        "status": o.status, "error": o.error, "seconds": o.seconds, "skipped": o.skipped,
    } for o in outcomes]
    path = output / MANIFEST
    write_json_atomic(path, {
        "shard": list(shard), "overrides": list(overrides),
        "plan": [list(_key(run)) for run in sorted(planned, key=_key)], "runs": runs,
    })
    return path


def _read(folder: Path) -> dict:
    if not folder.is_dir():
        raise ConfigError(f"'{folder}' is not a folder; give the --output folders of `tabcli batch --shard K/N` runs.")
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        index, count = manifest["shard"]
        manifest["plan"] = [tuple(item) for item in manifest["plan"]]
        manifest["runs"] = list(manifest["runs"])
        manifest["shard"] = (int(index), int(count))
    except FileNotFoundError:
        raise ConfigError(f"'{folder}' holds no {MANIFEST}, so it is not the --output folder of a finished `tabcli batch` "
                          "(an interrupted one writes it when finished with --resume).") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"'{folder / MANIFEST}' cannot be read ({error}); run that shard again.") from None
    return manifest


def read_shards(folders: list[Path]) -> list[Outcome]:
    """The outcomes of every run of a batch split over ``folders`` (one folder per shard), in
    plan order, with run directories and logs under the folders as they are now.

    Raises:
        ConfigError: If a folder is not a finished batch folder, if the folders come from
            different batches (plan, shard count or ``--set`` overrides differ), if a shard is
            given twice, or if a shard is missing.
    """
    folders = [Path(f) for f in folders]
    manifests = [_read(folder) for folder in folders]
    first, first_folder = manifests[0], folders[0]
    count = first["shard"][1]
    owner: dict[int, Path] = {}
    for folder, manifest in zip(folders, manifests):
        index, this_count = manifest["shard"]
        differs = [what for what, same in (("shard count", this_count == count), ("configs and seeds", manifest["plan"] == first["plan"]),
                                           ("--set overrides", manifest["overrides"] == first["overrides"])) if not same]
        if differs:
            raise ConfigError(f"'{folder}' (shard {index}/{this_count}) and '{first_folder}' (shard {first['shard'][0]}/{count}) "
                              f"are parts of different batches (their {', '.join(differs)} differ); merge the shards of one batch.")
        if index in owner:
            raise ConfigError(f"'{owner[index]}' and '{folder}' are both shard {index}/{count}; give each shard's folder once.")
        owner[index] = folder
    missing = sorted(set(range(1, count + 1)) - set(owner))
    if missing:
        raise ConfigError(f"Shard {', '.join(f'{k}/{count}' for k in missing)} missing: the batch was split in {count}; "
                          f"give the folders of all {count} shards (received {', '.join(str(f) for f in folders)}).")
    outcomes: dict[tuple[str, int], Outcome] = {}
    for folder, manifest in zip(folders, manifests):
        for record in manifest["runs"]:
            run = PlannedRun(
                config_path=Path(record["config_path"]), config_id=record["config"], seed=record["seed"],
                run_dir=folder / record["run_dir"], log=folder / record["log"], family=record["family"],
                dataset=record["dataset"], error=record["config_error"], task=record["task"],
            )
            outcomes[_key(run)] = Outcome(run, record["status"], error=record["error"], seconds=record["seconds"],
                                          skipped=record["skipped"])
    absent = [key for key in first["plan"] if key not in outcomes]
    if absent:
        config, seed = absent[0]
        raise ConfigError(f"No shard folder holds the run {config} seed {seed} ({len(absent)} runs of the plan missing); "
                          "run its shard again.")
    return [outcomes[key] for key in first["plan"]]
