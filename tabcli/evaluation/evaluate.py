"""``tabcli evaluate``: metrics and plots of a trained run on its test split or on a labelled file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tabcli.data.io import read_with_settings
from tabcli.data.schema import infinite_value_notes
from tabcli.evaluation.metrics import compute_metrics
from tabcli.prediction.tables import metric_inputs
from tabcli.runs.run import LoadedRun
from tabcli.runs.run_dir import write_json_atomic

__all__ = ["EvaluationResult", "evaluate_run"]


@dataclass
class EvaluationResult:
    """What ``evaluate_run`` measured and wrote.

    Attributes:
        name: ``"test"`` (the run's test split) or ``"data"`` (a file given with ``--data``).
        metrics: The metrics (same keys as the run's ``metrics.json`` entries).
        rows: Number of rows evaluated.
        json_path: Where the metrics JSON was written (``{name: metrics}``).
        plots: Name -> PNG path of every plot written next to the JSON.
        notes: Remarks for the user (e.g. rows dropped for a missing target).
    """

    name: str
    metrics: dict
    rows: int
    json_path: Path
    plots: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, output: str | Path | None = None) -> EvaluationResult:
    """Measure a run on its test split (recreated from its config and seed) or on ``data``.

    Args:
        run_dir: A completed run directory.
        data: A labelled CSV/TSV/Parquet file with the training columns; None for the test split.
        output: Path of the metrics JSON; default ``<run_dir>/evaluation/<test|data>/metrics.json``.
            Plots (ROC, PR, confusion matrix, calibration; or predicted vs actual and
            residuals) are written in the same folder.

    Returns:
        :class:`EvaluationResult`.

    Raises:
        tabcli.errors.TabcliError: For an incomplete run, an unreadable file, missing columns,
            or unknown classes in the target.
    """
    from tabcli.reports.plots import classification_plots, regression_plots

    run = LoadedRun(run_dir)
    schema = run.schema
    notes = []
    if data is None:
        name, frame = "test", run.test_frame()
        run.check_same_test_rows(frame)
        what = "the run's test rows"
    else:
        name, what = "data", f"'{data}'"
        frame = read_with_settings(data, run.config.data, role="evaluation")
        if schema.target in frame.columns and frame[schema.target].isna().any():
            notes.append(f"{int(frame[schema.target].isna().sum())} row(s) with a missing target are left out.")
            frame = frame[frame[schema.target].notna()]
    notes.extend(infinite_value_notes(frame, schema.numerical, what))
    raw = run.predict_raw(frame, what=what) if len(frame) else None
    y_true, prediction = metric_inputs(run.preprocessor, frame, raw, what=what)
    metrics = compute_metrics(schema.task, y_true, prediction, max(2, len(schema.classes)))
    json_path = Path(output) if output is not None else run.path / "evaluation" / name / "metrics.json"
    write_json_atomic(json_path, {name: metrics})
    if schema.task == "regression":
        plots = regression_plots(y_true, prediction, schema.target, json_path.parent)
    else:
        plots = classification_plots(y_true, prediction, [str(c) for c in schema.classes], json_path.parent)
    return EvaluationResult(name=name, metrics=metrics, rows=len(frame), json_path=json_path, plots=plots, notes=notes)
