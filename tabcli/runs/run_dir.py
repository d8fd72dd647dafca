"""The run directory: one self-contained folder per training run (its files are listed in the README).

``run.json`` is written first with ``status: "running"`` and rewritten at the end with
``completed``, ``failed`` (plus the error) or ``interrupted``. ``metrics.json`` is written only
by a run that reached its evaluation, so a folder without ``status: completed`` never looks
like a finished run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from tabcli._version import __version__
from tabcli.errors import ConfigError

__all__ = ["RunDirectory", "default_run_dir", "write_atomic", "write_json_atomic", "package_versions"]


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


class RunDirectory:
    """Creates a run folder and keeps its ``run.json`` up to date.

    Args:
        path: The folder to create. It must not exist, or be empty: an earlier run is never
            overwritten.
        config_folder: Folder of the config file (its git commit, if any, is recorded).

    Raises:
        ConfigError: If ``path`` exists and is not an empty folder, or cannot be created.
    """

    def __init__(self, path: Path, config_folder: Path | None = None):
        self.path = Path(path)
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise ConfigError(
                f"The run directory '{self.path}' already exists and is not empty; tabcli never "
                "overwrites a run. Choose another --run-dir, or leave it out for a fresh timestamped folder."
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"Cannot create the run directory '{self.path}': {error.strerror}.") from None
        self.info: dict[str, Any] = {
            "status": "running",
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
        self._started = datetime.now(timezone.utc)
        self.save()

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
        write_json_atomic(self.path / "run.json", self.info)

    def finish(self, status: str, error: str | None = None) -> None:
        """Mark the run ``completed``, ``failed`` or ``interrupted`` in ``run.json``."""
        now = datetime.now(timezone.utc)
        self.info.update(
            status=status,
            finished_at=now.isoformat(timespec="seconds"),
            duration_s=round((now - self._started).total_seconds(), 3),
        )
        if error is not None:
            self.info["error"] = error
        self.save()
