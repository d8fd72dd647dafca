"""`tabcli tune` processes sharing one study on a real PostgreSQL server (Debian's package), started on
loopback by the test: one process is killed mid-trial and restarted with --resume."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import DATASETS, REPO

pytestmark = pytest.mark.slow  # end to end: trains models or runs real processes


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    matches = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return matches[-1] if matches else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A throw-away PostgreSQL server on 127.0.0.1 (trust authentication), stopped afterwards."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is not installed: pip install 'tabcli[postgres]'")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; on Debian: apt-get install postgresql "
                    "(.ci/run installs it)")
    # Not under pytest's tmp folder: it is private to this user, and the server may run as another.
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="tabcli-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as Debian's postgres user
        try:
            import pwd

            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    subprocess.run(as_user + [initdb, "-D", str(data), "-A", "trust", "-U", "tabcli"], check=True, capture_output=True)
    subprocess.run(as_user + [pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-o",
                              f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://tabcli@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user + [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _running_trial_of(storage, pid: int):
    import optuna

    try:
        study = optuna.load_study(study_name="penguins", storage=storage)
    except KeyError:
        return None
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name == "RUNNING" and trial.user_attrs.get("pid") == pid:
            return trial
    return None


def test_processes_share_a_postgres_study_and_a_killed_one_resumes(tmp_path, postgres_url):
    import optuna

    config = {
        "seed": 5,
        "data": {"train": str(DATASETS / "penguins.csv"), "target": "species"},
        "model": {"type": "tabular_attention", "d_model": 16, "num_heads": 2, "num_feature_blocks": 1, "inter_sample": "none"},
        "training": {"epochs": 3, "batch_size": 64},
        "output": {"tensorboard": False, "save_attention": False},
        "tune": {"space": {"model.dropout_rate": {"float": [0.0, 0.3]}}, "pruner": "none"},
    }
    path = tmp_path / "penguins.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "tune"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TABCLI_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "tabcli", "tune", str(path), "--storage", postgres_url, "--output", str(out)]

    # One storage (one connection pool) for all the polling: a URL string would open a new pool
    # per call, and the server's 100 connections run out on a slow machine.
    storage = optuna.storages.RDBStorage(postgres_url)
    first = subprocess.Popen(base + ["--trials", "2"], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while not optuna.get_all_study_summaries(storage) and time.monotonic() < deadline:
        time.sleep(0.5)
    second = subprocess.Popen(base + ["--trials", "3", "--resume"], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    while time.monotonic() < deadline:  # until the second process is training (its run.json exists)
        assert second.poll() is None, second.communicate()[0]
        killed = _running_trial_of(storage, second.pid)
        if killed is not None and (Path(killed.user_attrs["run_dir"]) / "run.json").exists():
            break
        time.sleep(0.2)
    assert killed is not None, "the second process never started a trial"
    second.send_signal(signal.SIGKILL)  # a crash: no handler runs, the trial stays 'running'
    second.wait(timeout=30)
    first_output = first.communicate(timeout=600)[0]
    assert first.returncode == 0, first_output

    restarted = subprocess.run(base + ["--trials", "1", "--resume"], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert f"trials [{killed.number}]" in " ".join(restarted.stdout.split())  # the note naming the dead trial

    study = optuna.load_study(study_name="penguins", storage=storage)
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(trials["trial"]) == sorted(t.number for t in study.get_trials()) == list(range(len(trials)))
    states = dict(zip(trials["trial"], trials["state"]))
    assert states[killed.number] == "fail"
    assert "stopped" in trials.set_index("trial").loc[killed.number, "error"]
    assert list(states.values()).count("fail") == 1 and "running" not in states.values()
    assert list(states.values()).count("complete") >= 2 + 1  # the first process' 2 and the restarted one
    for trial in trials.itertuples():
        info = json.loads((Path(trial.run_dir) / "run.json").read_text())
        assert info["status"] == ("failed" if trial.trial == killed.number else "completed")


def test_the_same_command_on_two_machines_joins_one_study(tmp_path, postgres_url):
    """Two identical `tabcli tune --storage URL --study NAME` commands started together (a CI
    matrix, a job array): neither needs --resume, both finish, and the study holds the trials of
    both with distinct numbers and run directories; the starting config is evaluated once, and
    the shared --output folder gets one refit."""
    import optuna

    config = {
        "seed": 7,
        "data": {"train": str(DATASETS / "penguins.csv"), "target": "species"},
        "model": {"type": "gbdt", "max_iter": 20},
        "output": {"tensorboard": False, "save_attention": False},
        "tune": {"space": {"model.learning_rate": {"float": [0.03, 0.3], "log": True}}},
    }
    path = tmp_path / "penguins.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "tune"
    env = {**os.environ, "TABCLI_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "tabcli", "tune", str(path), "--storage", postgres_url, "--output", str(out)]
    command = base + ["--study", "shared", "--trials", "2", "--refit", "1"]
    processes = [subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], "\n".join(outputs)

    trials = optuna.load_study(study_name="shared", storage=postgres_url).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert {t.user_attrs["pid"] for t in trials} == {p.pid for p in processes}
    assert sum("fixed_params" in t.system_attrs for t in trials) == 1  # the starting config, queued once
    run_dirs = {Path(t.user_attrs["run_dir"]) for t in trials}
    assert run_dirs == {out / "trials" / f"trial-{n:04d}" for n in range(4)}
    for run_dir in run_dirs:
        assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert json.loads((out / "study.json").read_text())["study"] == "shared"
    # One folder, one refit: the first process to finish refits, the other leaves its runs alone.
    assert sorted("refit best:" in text for text in outputs) == [False, True], outputs
    assert sorted("no refit:" in " ".join(text.split()) for text in outputs) == [False, True], outputs
    assert sorted(p.name for p in (out / "refit").iterdir() if p.is_dir()) == ["best-7", "default-7"]

    # Another study into the same folder would reuse its trial numbers: refused, nothing touched.
    before = sorted(p.name for p in (out / "trials").iterdir())
    other = subprocess.run(base + ["--study", "other", "--trials", "1"], env=env, cwd=REPO, capture_output=True, text=True,
                           timeout=300)
    assert other.returncode == 2, other.stdout + other.stderr
    assert "holds the trials of study 'shared'" in " ".join(other.stderr.split())
    assert sorted(p.name for p in (out / "trials").iterdir()) == before
