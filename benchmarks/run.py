"""Benchmark every tabcli family against gbdt, the MLP and a reference FT-Transformer.

Usage (from the repository root; the shared tables are read from ../shared/datasets):

    python benchmarks/run.py --out /tmp/bench            # quick profile: about 45 min on 2 cores
    python benchmarks/run.py --out /tmp/bench-full --profile full --jobs 1
    python benchmarks/run.py --out /tmp/bench --datasets bank_marketing --models gbdt tabular_attention --seeds 42

Every (table, model) cell is one ``benchmarks/worker.py`` process that runs the seeds one after
the other (so peak memory is per cell); ``--jobs`` of them run at once, each with
``cores / jobs`` threads. Tables: California housing
(scikit-learn layout and raw layout), bank marketing, and the bundled penguins, breast cancer
and diabetes tables; models: ``gbdt``, ``mlp``, ``ft_transformer`` (reference, stock Keras) and
tabcli's attention families, all with default settings. Shared tables that are absent are
skipped with a note.

Writes to ``--out``: ``results.json`` (machine, settings, every run's record and the summary),
``results.md`` (one table per dataset: test metric mean ± std over seeds, fit time, seconds per
epoch, epochs to the early stop, prediction throughput at batch 4096, peak RSS, parameters, and
ratios to gbdt and to FT-Transformer), and ``runs/<table>/<model>-<seed>/`` (run directories,
``result.json``; the cell's log is ``runs/<table>/<model>.log``). ``--resume`` keeps finished runs of an earlier call.

Exit code: 0 when every run completed, 1 when some failed (their errors are in the table).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import fmt, fmt_metric, machine, summarize, to_markdown  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from suite import DATASETS, DEFAULT_MODELS, MODEL_COST, MODELS, PROFILES, REPO, SEEDS  # noqa: E402

from tabcli.batch.runner import thread_environment, threads_per_job  # noqa: E402

WORKER = Path(__file__).resolve().parent / "worker.py"


def plan(datasets: list[str], models: list[str], seeds: list[int]) -> list[tuple[str, str, list[int]]]:
    """The (dataset, model, seeds) cells to run, one worker process each, expensive tables first
    so the parallel slots even out."""
    cells = [(d, m, list(seeds)) for d in datasets for m in models if m not in DATASETS[d].skip]
    return sorted(cells, key=lambda c: -DATASETS[c[0]].cost * MODEL_COST.get(c[1], 1.0))


def _run_cell(cell, out: Path, sets: list[str], threads: int) -> list[dict]:
    """Run the seeds of one (dataset, model) cell that have no result yet; one record per seed."""
    dataset, model, seeds = cell
    table = out / "runs" / dataset
    results = {seed: table / f"{model}-{seed}" / "result.json" for seed in seeds}
    records = {seed: {**json.loads(path.read_text(encoding="utf-8")), "resumed": True}
               for seed, path in results.items() if path.is_file()}
    todo = [seed for seed in seeds if seed not in records]
    if todo:
        for seed in todo:  # unfinished earlier attempts: start clean
            shutil.rmtree(table / f"{model}-{seed}", ignore_errors=True)
        table.mkdir(parents=True, exist_ok=True)
        env = {**thread_environment(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [sys.executable, str(WORKER), "--dataset", dataset, "--model", model,
                   "--seeds", *map(str, todo), "--out", str(table)]
        for item in sets:
            command += ["--set", item]
        log_path = table / f"{model}.log"
        with open(log_path, "w", encoding="utf-8") as log:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env).returncode
        lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        error = (lines[-1] if lines else f"exit code {code}")[:300]
        for seed in todo:
            if results[seed].is_file():
                records[seed] = json.loads(results[seed].read_text(encoding="utf-8"))
            else:
                records[seed] = {"dataset": dataset, "model": model, "seed": seed, "error": error}
    return [records[seed] for seed in seeds]


def _print_summary(console: Console, rows: list[dict]) -> None:
    """A compact terminal view of the summary (the full table is in results.md)."""
    from rich.table import Table

    table = Table("dataset", "model", "test metric", "× gbdt", "fit s", "s/epoch", "× FT-T", "rows/s", "RSS MiB")
    for r in rows:
        if "test_mean" not in r:
            table.add_row(r["dataset"], r["model"], "[red]failed[/]", *[""] * 6)
            continue
        table.add_row(r["dataset"], r["model"],
                      f"{r['metric']} {fmt_metric(r['test_mean'])} ± {fmt_metric(r['test_std'], r['test_mean'])}",
                      fmt(r["test_vs_gbdt"], 3), fmt(r["fit_seconds"], 1), fmt(r["seconds_per_epoch"], 2),
                      fmt(r["seconds_per_epoch_vs_ft_transformer"], 2), fmt(r["throughput_rows_per_s"]),
                      fmt(r["peak_rss_mib"]))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="Result folder (created).")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                        help="quick: at most 10 epochs, patience 3 (default; about 45 min on 2 cores); full: tabcli's defaults.")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=DEFAULT_MODELS,
                        help="Models (default: every family, gbdt, mlp and ft_transformer; the variants "
                        "tabular_attention_retrieval / _context / _retrieval_frozen / _retrieval_ranked only when named).")
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--jobs", type=int, default=2, help="Runs at once (default 2; threads per run = cores / jobs).")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="Extra config override for every run.")
    parser.add_argument("--resume", action="store_true", help="Keep the finished runs of an earlier call in --out.")
    parser.add_argument("--report-only", action="store_true",
                        help="Run nothing: rebuild results.md/results.json from the finished runs in --out "
                        "(e.g. after an interrupted benchmark).")
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    console = Console() if sys.stdout.isatty() else Console(width=150)
    if args.report_only:
        records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(args.out.glob("runs/*/*/result.json"))]
        if not records:
            console.print(f"[red]error:[/] no finished runs in '{args.out}/runs'.")
            return 2
        _write_results(console, args, records, sets=records[0].get("settings", []), jobs=None, threads=None, wall=None)
        return 0

    if (args.out / "runs").exists() and not args.resume:
        console.print(f"[red]error:[/] '{args.out}' already holds benchmark runs; pass --resume to keep them, "
                      "or choose another --out.")
        return 2
    missing = [d for d in args.datasets if not DATASETS[d].available]
    for name in missing:
        console.print(f"[yellow]note:[/] skipping {name}: {DATASETS[name].data} not found (../shared/datasets absent).")
    datasets = [d for d in args.datasets if d not in missing]
    cells = plan(datasets, args.models, args.seeds)
    runs = sum(len(seeds) for _, _, seeds in cells)
    sets = [*PROFILES[args.profile], *args.sets]
    jobs = max(1, args.jobs)
    threads = threads_per_job(jobs)
    args.out.mkdir(parents=True, exist_ok=True)
    console.print(f"benchmark: {len(datasets)} table(s) x {len(args.models)} model(s) x {len(args.seeds)} seed(s) = "
                  f"{runs} runs in {len(cells)} processes, profile {args.profile}, {jobs} at a time with {threads} thread(s) each -> {args.out}")

    records, started = [], time.perf_counter()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console) as progress, ThreadPoolExecutor(jobs) as pool:
        task = progress.add_task("runs", total=runs)
        futures = [pool.submit(_run_cell, cell, args.out, sets, threads) for cell in cells]
        for future in as_completed(futures):
            for record in future.result():
                records.append(record)
                where = f"{record['dataset']} {record['model']} seed {record['seed']}"
                if "error" in record:
                    progress.console.print(f"[red]failed[/] {where}: {record['error']}")
                else:
                    progress.console.print(
                        f"{where}: test {record['metric']} {record['test']:.4f}, "
                        f"{record['fit_seconds']:.1f} s{' (resumed)' if record.get('resumed') else ''}"
                    )
                progress.advance(task)
    wall = time.perf_counter() - started
    _write_results(console, args, records, sets, jobs, threads, wall)
    return 1 if any("error" in r for r in records) else 0


def _write_results(console: Console, args, records: list[dict], sets: list[str], jobs, threads, wall) -> None:
    """Write results.json and results.md in ``args.out`` and print the summary."""
    rows = summarize(records)
    info = {"machine": machine(), "profile": None if args.report_only else args.profile, "settings": sets, "jobs": jobs, "threads_per_run": threads,
            "wall_seconds": wall, "command": " ".join(["benchmarks/run.py", *args.argv])}
    (args.out / "results.json").write_text(json.dumps({**info, "summary": rows, "runs": records}, indent=2),
                                           encoding="utf-8")
    m = info["machine"]
    seeds = sorted({r["seed"] for r in records})
    when = (f"{jobs} run(s) at a time, {threads} thread(s) each; wall time {wall / 60:.1f} min" if wall is not None
            else "rebuilt from finished runs (--report-only)")
    header = (
        f"Benchmark settings: {', '.join(sets) or 'tabcli defaults'}; seeds {', '.join(map(str, seeds))}; {when}; "
        f"{len(records)} runs on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".\n\n"
    )
    (args.out / "results.md").write_text(header + to_markdown(rows), encoding="utf-8")
    console.print(header)
    _print_summary(console, rows)
    console.print(f"written: {args.out / 'results.md'}, {args.out / 'results.json'}")


if __name__ == "__main__":
    sys.exit(main())
