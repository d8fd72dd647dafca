"""Optional MLflow logging of a finished run (``tracking.mlflow: true``)."""

from __future__ import annotations

import logging
from pathlib import Path

from tabcli.config.experiment import ExperimentConfig
from tabcli.errors import ConfigError
from tabcli.evaluation.metrics import scalar_metrics
from tabcli.runs.run_dir import BRANCH_WEIGHTS_FILE, CONFIG_FILE, HISTORY_FILE, METRICS_FILE, RUN_FILE, RunDirectory

__all__ = ["require_mlflow", "log_to_mlflow", "flatten"]

#: Small run files worth keeping in MLflow (the model stays in the run directory).
LOGGED_FILES = (CONFIG_FILE, RUN_FILE, METRICS_FILE, HISTORY_FILE, BRANCH_WEIGHTS_FILE)


def require_mlflow():
    """Import MLflow or explain how to install it.

    Raises:
        ConfigError: If MLflow is not installed.
    """
    try:
        import mlflow
    except ImportError:
        raise ConfigError(
            "tracking.mlflow is true, but MLflow is not installed. Install it with "
            "pip install 'tabcli[mlflow]', or set tracking.mlflow: false."
        ) from None
    return mlflow


def flatten(data: dict, prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"model.d_model": "64", ...}`` (MLflow params are flat strings, <= 500 chars)."""
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:500]
    return flat


def log_to_mlflow(config: ExperimentConfig, run_dir: Path, metrics: dict) -> str:
    """Log a completed run to MLflow: params (the flattened config), metrics (``<split>_<metric>``),
    tags, and the run's small files as artifacts.

    Returns:
        The MLflow run id.
    """
    mlflow = require_mlflow()
    for name in ("mlflow", "alembic"):  # their INFO lines (database set-up) are not tabcli's output
        logging.getLogger(name).setLevel(logging.WARNING)
    experiment = config.tracking.experiment or config.name or "tabcli"
    if config.tracking.mlflow_uri:
        mlflow.set_tracking_uri(config.tracking.mlflow_uri)
    else:
        # A local SQLite store: MLflow 3 refuses new runs in its file store ("maintenance mode").
        # Artifacts go beside it rather than into the current directory (MLflow's default).
        folder = Path(config.output.dir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
        if mlflow.get_experiment_by_name(experiment) is None:
            mlflow.create_experiment(experiment, artifact_location=(folder / "mlartifacts").as_uri())
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_dir.name) as active:
        mlflow.log_params(flatten(config.model_dump(mode="json")))
        mlflow.log_metrics({
            f"{split}_{name}": float(value)
            for split, values in metrics.items() for name, value in scalar_metrics(values).items()
            if value is not None
        })
        info = RunDirectory(run_dir).info
        mlflow.set_tags({"tabcli.run_dir": str(run_dir), "tabcli.model_type": config.model.type,
                         "tabcli.task": str(info.get("task")), "tabcli.version": info["versions"]["tabcli"]})
        for name in LOGGED_FILES:
            if (run_dir / name).is_file():
                mlflow.log_artifact(str(run_dir / name))
        return active.info.run_id
