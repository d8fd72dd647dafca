"""Train every model family with default settings on benchmark tables and print a comparison.

Usage (from the repository root, with ../shared/datasets beside it):

    python benchmarks/compare_families.py --out /tmp/families [--families mlp interpretable] \
        [--datasets bank_marketing california_housing_raw] [--set training.epochs=5]

Each (dataset, family) pair is one `tabcli train` run in its own process; the table gives the
test metric, the epochs trained, the training time per epoch and the parameter count, read back
from each run directory's metrics.json and run.json. Results are also written as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
DATASETS = {
    "bank_marketing": ("configs/benchmarks/bank_marketing.yaml", SHARED / "bank_marketing.csv", "roc_auc"),
    "california_housing_raw": ("configs/benchmarks/california_housing_raw.yaml", SHARED / "california_housing_raw.csv", "rmse"),
    "california_housing": ("configs/benchmarks/california_housing.yaml", SHARED / "california_housing.parquet", "rmse"),
}
FAMILIES = ["gbdt", "mlp", "tabular_attention", "multi_resolution", "interpretable", "ensemble"]


def run(dataset: str, family: str, out: Path, sets: list[str]) -> dict:
    config, data, metric = DATASETS[dataset]
    run_dir = out / f"{dataset}-{family}"
    if not (run_dir / "metrics.json").exists():
        command = [sys.executable, "-m", "tabcli", "train", str(REPO / config), "--quiet", "--run-dir", str(run_dir),
                   "--set", f"data.train={data}", "--set", f"model={{type: {family}}}"]
        for item in sets:
            command += ["--set", item]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            return {"dataset": dataset, "family": family, "error": result.stderr.strip().splitlines()[-1:]}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    info = json.loads((run_dir / "run.json").read_text())
    epochs = info["epochs_trained"]
    return {
        "dataset": dataset,
        "family": family,
        "metric": metric,
        "test": metrics["test"][metric],
        "valid": metrics["valid"][metric],
        "epochs": epochs,
        "best_epoch": info["best_epoch"],
        "seconds_per_epoch": info["train_seconds"] / epochs,
        "parameters": info["parameters"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="Folder for the run directories and results.json.")
    parser.add_argument("--families", nargs="+", default=FAMILIES, choices=FAMILIES)
    parser.add_argument("--datasets", nargs="+", default=["bank_marketing", "california_housing_raw"], choices=list(DATASETS))
    parser.add_argument("--set", dest="sets", action="append", default=[], help="Extra --set for every run.")
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets:
        for family in args.families:
            row = run(dataset, family, args.out, args.sets)
            rows.append(row)
            print(json.dumps(row), flush=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"\n| dataset | family | test metric | vs mlp | epochs (best) | s/epoch | parameters |\n|---|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['dataset']} | {row['family']} | error: {row['error']} | | | | |")
            continue
        base = next((r for r in rows if r["dataset"] == row["dataset"] and r["family"] == "mlp" and "test" in r), None)
        # gbdt "epochs" are boosting iterations
        relative = f"{(row['test'] / base['test'] - 1) * 100:+.1f} %" if base else "-"
        print(f"| {row['dataset']} | {row['family']} | {row['metric']} {row['test']:.4f} | {relative} | "
              f"{row['epochs']} ({row['best_epoch']}) | {row['seconds_per_epoch']:.2f} | {row['parameters']:,} |")


if __name__ == "__main__":
    main()
