"""Requests per second and latency of `tabcli serve`, measured over loopback HTTP.

Usage (from the repository root):

    python benchmarks/serve.py                       # trains a penguins run first (about 30 s)
    python benchmarks/serve.py --run runs/penguins-... --clients 8 --seconds 20

Starts `tabcli serve RUN` as a real process on a free loopback port, then:

1. 1-row requests: ``--clients`` threads, each with its own keep-alive connection, send one-row
   JSON requests back to back for ``--seconds``; prints requests/s and p50/p99 latency;
2. 1,000-row requests: ``--large`` requests one after another; prints p50/p99 latency.

Rows are drawn from the penguins table shipped in datasets/. The figures go into
docs/benchmarks.md (section "Serving").
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
PENGUINS = REPO / "datasets" / "penguins.csv"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.drop(columns=["species"]).to_json(orient="records"))


def _post(connection: http.client.HTTPConnection, body: bytes) -> float:
    started = time.perf_counter()
    connection.request("POST", "/predict", body=body, headers={"content-type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")
    return time.perf_counter() - started


def _percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="Run directory to serve (default: train the penguins example).")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent clients for the 1-row test.")
    parser.add_argument("--seconds", type=float, default=15.0, help="Duration of the 1-row test.")
    parser.add_argument("--large", type=int, default=30, help="Number of 1,000-row requests.")
    parser.add_argument("--workers", type=int, default=1, help="tabcli serve --workers.")
    args = parser.parse_args()

    run = args.run
    if run is None:
        run = Path(tempfile.mkdtemp(prefix="tabcli-serve-bench-")) / "run"
        subprocess.run([sys.executable, "-m", "tabcli", "train", str(REPO / "configs/penguins/tabular_attention.yaml"),
                        "--run-dir", str(run), "--quiet"], check=True, cwd=REPO)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "tabcli", "serve", str(run), "--port", str(port),
                               "--workers", str(args.workers)], cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/health")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.3)
        table = pd.read_csv(PENGUINS)
        rows = _records(table)
        singles = [json.dumps([row]).encode() for row in rows]
        large = json.dumps(_records(table.sample(1000, replace=True, random_state=0))).encode()

        latencies: list[list[float]] = [[] for _ in range(args.clients)]
        stop = time.monotonic() + args.seconds

        def client(index: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            i = index
            while time.monotonic() < stop:
                latencies[index].append(_post(connection, singles[i % len(singles)]))
                i += args.clients

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        flat = [x for per in latencies for x in per]
        print(f"1-row requests, {args.clients} clients, {elapsed:.1f} s: {len(flat) / elapsed:.0f} requests/s; {_percentiles(flat)}")

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        _post(connection, large)  # first call of this size
        big = [_post(connection, large) for _ in range(args.large)]
        print(f"1,000-row requests, one at a time, {args.large} requests: {_percentiles(big)}")
        print(f"cores: {os.cpu_count()}; server workers: {args.workers}; run: {run}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
