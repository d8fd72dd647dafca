"""What a user sees when the machine or the user stops `tabcli train` in a real process: Ctrl-C typed
into a real pseudo-terminal, and a write refused by a file-size limit (`ulimit -f`). No monkeypatching:
the signal goes through the terminal's line discipline and the limit through the kernel."""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

PENGUINS = Path(__file__).resolve().parents[1] / "datasets" / "penguins.csv"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="pseudo-terminals and rlimits as on Linux")]


def _config(tmp_path: Path, epochs: int) -> Path:
    config = {
        "seed": 1,
        "data": {"train": str(PENGUINS), "target": "species"},
        "model": {"type": "tabular_attention", "d_model": 16, "num_heads": 2},
        "training": {"epochs": epochs, "batch_size": 64, "early_stopping_patience": 1000},
        "output": {"dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "CI")}
    env.update(TERM="xterm-256color", PYTHONUNBUFFERED="1")
    return env


# Runs in the child: become the session leader's terminal owner, so Ctrl-C written to the master side
# reaches tabcli as a terminal would deliver it, then run the CLI as `python -m tabcli` would.
# SIGINT is set back to Python's handler: a job started in the background by a non-interactive
# shell (as some CI runners start the suite) inherits SIGINT ignored, which an interactive shell
# running `tabcli train` would not pass on.
_CHILD = (
    "import fcntl, runpy, signal, sys, termios\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "sys.argv = ['tabcli'] + sys.argv[1:]\n"
    "runpy.run_module('tabcli', run_name='__main__')\n"
)


def test_ctrl_c_in_a_terminal_restores_it_and_names_the_run(tmp_path):
    import fcntl
    import pty
    import termios

    run_dir = tmp_path / "run"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-c", _CHILD, "train", str(_config(tmp_path, 5000)), "--run-dir", str(run_dir)],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True, env=_env(), close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        # Wait until the live progress display is drawing epochs (training is under way).
        while time.monotonic() < deadline and not re.search(r"\bepoch ([3-9]|\d\d+)\b", ANSI.sub("", b"".join(chunks).decode(errors="replace"))):
            assert process.poll() is None, b"".join(chunks).decode(errors="replace")
            time.sleep(0.2)
        os.write(master, b"\x03")  # Ctrl-C, through the terminal's line discipline
        try:
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            shown = ANSI.sub("", b"".join(chunks).decode(errors="replace"))[-3000:]
            pytest.fail(f"tabcli did not exit within 120 s of Ctrl-C; its terminal showed:\n{shown}")
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(timeout=10)
        os.close(master)
    raw = b"".join(chunks).decode(errors="replace")
    text = ANSI.sub("", raw).replace("\r\n", "\n")
    assert code == 130, text
    # rich hid the cursor while drawing the progress; it must be shown again after the last hide.
    assert "\x1b[?25l" in raw, "the progress display no longer hides the cursor; this test needs revisiting"
    assert raw.rfind("\x1b[?25h") > raw.rfind("\x1b[?25l"), "cursor left hidden"
    lines = [line.strip("\r") for line in text.split("\n")]
    interrupted = [line for line in lines if line.startswith("Interrupted.")]
    assert interrupted, text[-2000:]
    assert str(run_dir) in interrupted[0]
    assert "Traceback" not in text
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert not (run_dir / "model.keras").exists() and not list(run_dir.glob(".model.keras*"))


def test_a_file_size_limit_names_the_file_and_leaves_no_partial_model(tmp_path):
    import resource

    run_dir = tmp_path / "run"
    limit = 40 * 1024  # run.json, config.yaml and preprocessing.joblib fit; model.keras does not

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        # Python ignores SIGXFSZ already; make sure, so the write fails with EFBIG instead of a kill.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    result = subprocess.run(
        [sys.executable, "-m", "tabcli", "train", str(_config(tmp_path, 2)), "--run-dir", str(run_dir)],
        capture_output=True, text=True, env=_env(), preexec_fn=limit_file_size, timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert f"'{run_dir / 'model.keras'}'" in message and "File too large" in message and "ulimit -f" in message
    assert not (run_dir / "model.keras").exists() and not list(run_dir.glob(".model.keras*"))
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and "File too large" in info["error"]
    evaluated = subprocess.run([sys.executable, "-m", "tabcli", "evaluate", str(run_dir)],
                               capture_output=True, text=True, env=_env(), timeout=120)
    assert evaluated.returncode == 2 and "status 'failed'" in " ".join(evaluated.stderr.split())


def test_a_stop_request_whose_interrupt_was_lost_stops_training_at_the_next_batch(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tabcli.cli import app
    from tabcli.training import interrupts

    # As if Ctrl-C had arrived and its KeyboardInterrupt been dropped inside a finalizer.
    monkeypatch.setattr(interrupts, "_requested", True)
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(_config(tmp_path, 50)), "--run-dir", str(run_dir), "--quiet"])
    assert result.exit_code == 130, result.output
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert not (run_dir / "model.keras").exists()
