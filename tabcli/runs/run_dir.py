"""The run directory: one self-contained folder per training run (docs/runs.md lists its files).

``run.json`` is written first with ``status: "running"`` and rewritten at the end with
``completed``, ``failed`` (plus the error) or ``interrupted``. ``metrics.json`` is written only
by a run that reached its evaluation, so a folder without ``status: completed`` never looks
like a finished run. :class:`RunDirectory` is the one reader and writer of these files; the
file names are the constants below.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from tabcli._version import __version__
from tabcli.errors import ConfigError

__all__ = ["RunDirectory", "Status", "default_run_dir", "write_atomic", "write_json_atomic", "package_versions",
           "CONFIG_FILE", "RUN_FILE", "METRICS_FILE", "PREPROCESSING_FILE", "HISTORY_FILE", "BRANCH_WEIGHTS_FILE",
           "TEST_PREDICTIONS_FILE", "ATTENTION_FOLDER"]

#: The resolved config the run was trained with.
CONFIG_FILE = "config.yaml"
#: Status, versions, times and the model's figures (:class:`RunDirectory` keeps it up to date).
RUN_FILE = "run.json"
#: ``{"train": {...}, "valid": {...}, "test": {...}}``, written once training has been evaluated.
METRICS_FILE = "metrics.json"
#: The fitted :class:`~tabcli.data.preprocessing.TabularPreprocessor` (joblib).
PREPROCESSING_FILE = "preprocessing.joblib"
#: One row per epoch (or boosting iteration): losses and validation metrics.
HISTORY_FILE = "history.csv"
#: An ensemble's learned branch weights, ``{branch name: weight}``.
BRANCH_WEIGHTS_FILE = "branch_weights.json"
#: The test split's rows, targets and predictions (Parquet).
TEST_PREDICTIONS_FILE = "predictions/test.parquet"
#: Attention scores of the test split (``test.npz`` and ``test.json`` describing every array).
ATTENTION_FOLDER = "attention"


class Status(str, Enum):
    """A run's ``status`` in ``run.json``; compares equal to its string."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``, so a
    reader never sees half a file and a failure leaves an earlier ``path`` untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the real suffix: some writers (Keras' .keras) check it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp creates the file 0600; give it the mode any other new file would get.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and not error.filename:
            # Writers such as Keras' zip archive raise EFBIG/ENOSPC without a file name; the
            # user needs to know which file could not be written.
            error.filename = str(path)
        raise


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON with :func:`write_atomic`."""
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8"))


def package_versions() -> dict[str, str]:
    """Versions of Python and the libraries a run depends on (those already imported or importable)."""
    from importlib import metadata

    versions = {"tabcli": __version__, "python": platform.python_version()}
    for name in ("keras", "tensorflow", "tensorflow-cpu", "numpy", "pandas", "scikit-learn", "pyarrow"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git_commit(folder: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def default_run_dir(output_dir: Path, name: str) -> Path:
    """``<output_dir>/<name>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... if that exists."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = Path(output_dir) / f"{name}-{stamp}"
    suffix = 2
    while candidate.exists():
        candidate = Path(output_dir) / f"{name}-{stamp}-{suffix}"
        suffix += 1
    return candidate


def _read_json(path: Path) -> dict | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


class RunDirectory:
    """A run folder: :meth:`create` makes a new one and keeps its ``run.json`` up to date while
    it trains; ``RunDirectory(path)`` reads any existing one (whatever its status).

    Args:
        path: The run folder.

    Attributes:
        path: The run folder.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._info: dict[str, Any] | None = None
        self._started: datetime | None = None

    @classmethod
    def create(cls, path: str | Path, config_folder: Path | None = None) -> "RunDirectory":
        """Create the folder and write ``run.json`` with status ``running``.

        Args:
            path: The folder to create. It must not exist, or be empty: an earlier run is never
                overwritten.
            config_folder: Folder of the config file (its git commit, if any, is recorded).

        Raises:
            ConfigError: If ``path`` exists and is not an empty folder, or cannot be created.
        """
        run = cls(path)
        if run.path.exists() and (not run.path.is_dir() or any(run.path.iterdir())):
            raise ConfigError(
                f"The run directory '{run.path}' already exists and is not empty; tabcli never "
                "overwrites a run. Choose another --run-dir, or leave it out for a fresh timestamped folder."
            )
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"Cannot create the run directory '{run.path}': {error.strerror}.") from None
        run._info = {
            "status": Status.RUNNING.value,
            "command": sys.argv,
            "cwd": os.getcwd(),
            "pid": os.getpid(),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "finished_at": None,
            "duration_s": None,
            "versions": package_versions(),
            "platform": platform.platform(),
            "git_commit": _git_commit(config_folder or Path.cwd()),
        }
        run._started = datetime.now(timezone.utc)
        run.save()
        return run

    # ------------------------------------------------------------------ reading
    @property
    def info(self) -> dict[str, Any]:
        """``run.json`` (read once; ``{}`` if it is missing or unreadable)."""
        if self._info is None:
            self._info = _read_json(self.path / RUN_FILE) or {}
        return self._info

    @property
    def status(self) -> Status | None:
        """The recorded :class:`Status`, or None without a readable ``run.json``."""
        try:
            return Status(self.info.get("status"))
        except ValueError:
            return None

    @property
    def error(self) -> str | None:
        """The error a failed or interrupted run recorded."""
        return self.info.get("error")

    @property
    def metrics(self) -> dict | None:
        """``metrics.json`` (None before a run is evaluated, or if unreadable)."""
        return _read_json(self.path / METRICS_FILE)

    @property
    def branch_weights(self) -> dict[str, float] | None:
        """An ensemble's ``branch_weights.json``, or None for other families."""
        return _read_json(self.path / BRANCH_WEIGHTS_FILE)

    # ------------------------------------------------------------------ writing
    def file(self, relative: str) -> Path:
        """Path of a file inside the run, creating its parent folder."""
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def update(self, **fields: Any) -> None:
        """Add fields to ``run.json`` and rewrite it."""
        self.info.update(fields)
        self.save()

    def save(self) -> None:
        """Rewrite ``run.json`` atomically."""
        write_json_atomic(self.path / RUN_FILE, self.info)

    def finish(self, status: Status | str, error: str | None = None) -> None:
        """Mark the run ``completed``, ``failed`` or ``interrupted`` in ``run.json``.

        Raises:
            ValueError: If ``status`` is not a :class:`Status`.
        """
        now = datetime.now(timezone.utc)
        started = self._started
        if started is None and self.info.get("started_at"):
            started = datetime.fromisoformat(self.info["started_at"])
        self.info.update(
            status=Status(status).value,
            finished_at=now.isoformat(timespec="seconds"),
            duration_s=round((now - started).total_seconds(), 3) if started else None,
        )
        if error is not None:
            self.info["error"] = error
        self.save()
