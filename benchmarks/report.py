"""Aggregate benchmark results over seeds and render the table (Markdown + JSON records).

No TensorFlow here: this runs in the orchestrating process and in the unit tests.
"""

from __future__ import annotations

import os
import platform
import statistics

from tabcli.runs.run_dir import package_versions

__all__ = ["summarize", "to_markdown", "machine", "fmt", "fmt_metric"]

#: Per-run figures averaged over seeds (key in result.json -> key in the summary).
_MEANS = ["fit_seconds", "seconds_per_epoch", "epochs", "best_epoch", "throughput_rows_per_s", "parameters"]


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _ratio(value, reference):
    if value is None or reference in (None, 0):
        return None
    return value / reference


def summarize(records: list[dict]) -> list[dict]:
    """One row per (dataset, model): means over seeds and ratios to ``gbdt`` on the same table.

    Args:
        records: ``result.json`` records of completed runs (``worker.run_one``), and failure
            records ``{"dataset", "model", "seed", "error"}``.

    Returns:
        Rows with ``dataset, model, metric, higher_is_better, runs, failed, test_mean,
        test_std`` (sample std over seeds; 0 with one seed), the means of ``fit_seconds,
        seconds_per_epoch, epochs, best_epoch, throughput_rows_per_s, parameters``, the
        maximum ``peak_rss_mib``, and ratios: ``*_vs_gbdt`` for the test metric, fit time,
        throughput and peak memory, ``seconds_per_epoch_vs_ft_transformer``. Rows are grouped
        by dataset (in first-seen order), best test metric first; ratios are None where the
        reference is missing.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["dataset"], record["model"]), []).append(record)
    rows = []
    for (dataset, model), group in groups.items():
        done = [r for r in group if "error" not in r]
        row = {"dataset": dataset, "model": model, "runs": len(done), "failed": len(group) - len(done),
               "errors": sorted({r["error"] for r in group if "error" in r})}
        if done:
            tests = [r["test"] for r in done]
            row.update(
                metric=done[0]["metric"],
                higher_is_better=done[0]["higher_is_better"],
                seeds=sorted(r["seed"] for r in done),
                test_mean=statistics.fmean(tests),
                test_std=statistics.stdev(tests) if len(tests) > 1 else 0.0,
                peak_rss_mib=max(r["peak_rss_mib"] for r in done),
                **{key: _mean([r.get(key) for r in done]) for key in _MEANS},
            )
        rows.append(row)
    by_key = {(r["dataset"], r["model"]): r for r in rows}
    for row in rows:
        gbdt = by_key.get((row["dataset"], "gbdt"), {})
        ftt = by_key.get((row["dataset"], "ft_transformer"), {})
        for key in ("test_mean", "fit_seconds", "throughput_rows_per_s", "peak_rss_mib"):
            row[f"{key.removesuffix('_mean')}_vs_gbdt"] = _ratio(row.get(key), gbdt.get(key))
        row["seconds_per_epoch_vs_ft_transformer"] = _ratio(row.get("seconds_per_epoch"), ftt.get("seconds_per_epoch"))
    order = {d: i for i, d in enumerate(dict.fromkeys(r["dataset"] for r in rows))}

    def rank(row):
        if "test_mean" not in row:
            return (order[row["dataset"]], 1, 0.0)
        return (order[row["dataset"]], 0, -row["test_mean"] if row["higher_is_better"] else row["test_mean"])

    return sorted(rows, key=rank)


def fmt(value, digits=0):
    """A number with thousands separators and ``digits`` decimals; ``—`` for None."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def fmt_metric(value, scale=None):
    """A metric value: 4 decimals, or a whole number when it (or ``scale``, e.g. the mean a
    std belongs to) is in the thousands (RMSE in dollars)."""
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value if scale is None else scale) >= 1000 else f"{value:.4f}"


def to_markdown(rows: list[dict]) -> str:
    """The summary as one Markdown table per dataset (see :func:`summarize` for the figures)."""
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        group = [r for r in rows if r["dataset"] == dataset]
        metric = next((r["metric"] for r in group if "metric" in r), "?")
        better = next((r["higher_is_better"] for r in group if "metric" in r), True)
        lines += [
            f"### {dataset} — test {metric} ({'higher' if better else 'lower'} is better)",
            "",
            "| model | test " + metric + " mean ± std | × gbdt | fit s | × gbdt | s/epoch | × FT-T | epochs (best) | "
            "predict rows/s | × gbdt | peak RSS MiB | × gbdt | parameters | runs |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in group:
            if "test_mean" not in r:
                lines.append(f"| {r['model']} | failed: {'; '.join(r['errors'])[:120]} |" + " |" * 12 + f" 0/{r['failed']} |")
                continue
            epochs = "—" if r["model"] == "gbdt" else f"{r['epochs']:.0f} ({r['best_epoch']:.0f})"
            lines.append(
                f"| {r['model']} | {fmt_metric(r['test_mean'])} ± {fmt_metric(r['test_std'], r['test_mean'])} | {fmt(r['test_vs_gbdt'], 3)} | "
                f"{fmt(r['fit_seconds'], 1)} | {fmt(r['fit_seconds_vs_gbdt'], 0)} | {fmt(r['seconds_per_epoch'], 2)} | "
                f"{fmt(r['seconds_per_epoch_vs_ft_transformer'], 2)} | {epochs} | {fmt(r['throughput_rows_per_s'])} | "
                f"{fmt(r['throughput_rows_per_s_vs_gbdt'], 2)} | {fmt(r['peak_rss_mib'])} | {fmt(r['peak_rss_mib_vs_gbdt'], 1)} | "
                f"{fmt(r['parameters'])} | {r['runs']}/{r['runs'] + r['failed']} |"
            )
        lines.append("")
    return "\n".join(lines)


def machine() -> dict:
    """The machine and library versions the figures were measured with."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    memory = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    versions = {k: v for k, v in package_versions().items() if k != "python"}
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory, "python": platform.python_version(),
            "system": platform.platform(), "versions": versions}
