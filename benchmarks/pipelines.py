"""Eight CPU-bound module runs: -executor local with one worker vs Dask with two workers.

    python benchmarks/pipelines.py [--runs 8] [--rows 200000] [--repeat 3]

Each run is a one-task pipeline (``dataset.describe`` over its own CSV of ``--rows`` rows:
pure-Python statistics, one core's work). The eight runs are started at once and the wall time
is measured from the first POST /runs until the last run is FINISHED. Configurations:

- ``local, 1 worker``: ``-executor local -module-workers 1`` (the runs queue for one process);
- ``dask, 2 workers``: ``dask scheduler`` and two ``dask worker --nthreads 1`` processes on
  this machine, the server on ``-executor dask://127.0.0.1:PORT``.

Prints each configuration's wall times (median of ``--repeat``) and the speedup. Figures, not
tests; on a machine shared with other work they say as much about the neighbours as about the
code, so say so next to them. On several machines: start the workers there (docs/pipelines.md)
and pass ``--scheduler HOST:PORT`` to use that cluster instead of the two local workers.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DASK = str(Path(PYTHON).with_name("dask"))
START_SECONDS = 120
# Dask workers sample their running thread's stack every 10 ms for the dashboard's profile;
# on CPU-bound Python that costs the function time. --profile keeps it on.
DASK_ENV: dict[str, str] = {}


def write_table(path: Path, rows: int, seed: int) -> None:
    with path.open("w", newline="") as file:
        out = csv.writer(file)
        out.writerow(["a", "b", "c", "d"])
        out.writerows([i, (i * seed) % 997 * 0.5, (i * 7) % 13, i % 101] for i in range(rows))


@contextlib.contextmanager
def process(args: list[str], cwd: Path, log: str) -> Iterator[subprocess.Popen[bytes]]:
    with (cwd / log).open("wb") as out:
        child = subprocess.Popen(
            args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **DASK_ENV}
        )
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def server(cwd: Path, *options: str) -> Iterator[str]:
    portfile = cwd / "port"
    portfile.unlink(missing_ok=True)
    args = [PYTHON, "-m", "service", "server", "-insecure", "-port", "0", "-portfile"]
    args += [str(portfile), "-addr", "127.0.0.1", "-upload-dir", "data", "-log", "WARNING"]
    with process([*args, *options], cwd, "server.log") as child:
        deadline = time.monotonic() + START_SECONDS
        while not portfile.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {(cwd / 'server.log').read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{int(portfile.read_text())}"


@contextlib.contextmanager
def local_dask(cwd: Path, workers: int) -> Iterator[str]:
    port = _free_port()
    address = f"127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            process(
                [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                cwd,
                "scheduler.log",
            )
        )
        for n in range(workers):
            stack.enter_context(
                process(
                    [
                        *(DASK, "worker", f"tcp://{address}", "--nthreads", "1"),
                        *("--no-dashboard", "--host", "127.0.0.1", "--name", f"bench{n}"),
                    ],
                    cwd,
                    f"worker{n}.log",
                )
            )
        _wait_for_workers(address, workers)
        yield address


def _wait_for_workers(address: str, count: int) -> None:
    from distributed import Client

    with Client(f"tcp://{address}", timeout=60) as client:
        client.wait_for_workers(count, timeout=START_SECONDS)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def eight_runs(url: str, files: list[str]) -> tuple[float, list[str]]:
    """Start one describe run per file at once; seconds until all FINISHED, and ran_on."""
    session = requests.Session()

    def ok(method: str, path: str, body: Any = None) -> Any:
        response = session.request(method, url + path, json=body, timeout=600)
        if response.status_code >= 300:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    ok("POST", "/configure/module/dataset/ds", {})
    ok("GET", "/context/module/ds/ds")
    task = {"module": "ds", "function": "describe", "options": {}}
    pipeline = ok("POST", "/pipelines", {"name": "bench", "tasks": [task]})["id"]
    start = time.perf_counter()
    runs = [ok("POST", "/runs", {"pipeline": pipeline, "files": [name]})["id"] for name in files]
    pending = set(runs)
    ran_on: list[str] = []
    while pending:
        for run_id in list(pending):
            run = ok("GET", f"/runs/{run_id}")
            if run["status"] == "FINISHED":
                pending.discard(run_id)
                ran_on.append(run["jobs"][0]["ran_on"])
            elif run["status"] in ("FAILED", "CANCELLED"):
                raise SystemExit(f"run {run_id} {run['status']}: {run['error']}")
        time.sleep(0.02)
    return time.perf_counter() - start, ran_on


def measure(
    cwd: Path, files: list[str], repeat: int, *options: str
) -> tuple[list[float], set[str]]:
    times, where = [], set()
    for _ in range(repeat):
        with server(cwd, *options) as url:
            seconds, ran_on = eight_runs(url, files)
        times.append(seconds)
        where.update(ran_on)
    return times, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scheduler", help="HOST:PORT of a running Dask cluster to use")
    parser.add_argument("--profile", action="store_true", help="keep Dask's worker profiler on")
    args = parser.parse_args()
    if not args.profile:
        DASK_ENV["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp:
        cwd = Path(tmp)
        (cwd / "data").mkdir()
        files = [f"t{n}.csv" for n in range(args.runs)]
        for n, name in enumerate(files):
            write_table(cwd / "data" / name, args.rows, n + 3)
        print(f"{args.runs} runs of dataset.describe over {args.rows} rows each;")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
        local, local_where = measure(
            cwd, files, args.repeat, "-executor", "local", "-module-workers", "1"
        )
        with contextlib.ExitStack() as stack:
            address = args.scheduler or stack.enter_context(local_dask(cwd, 2))
            dask, dask_where = measure(cwd, files, args.repeat, "-executor", f"dask://{address}")
        label = "dask, given cluster" if args.scheduler else "dask, 2 workers"
        for name, times, where in (
            ("local, 1 worker", local, local_where),
            (label, dask, dask_where),
        ):
            shown = ", ".join(f"{t:.2f}" for t in times)
            median = statistics.median(times)
            print(f"{name:20s} median {median:7.2f} s ({shown}; {len(where)} distinct ran_on)")
        speedup = statistics.median(local) / statistics.median(dask)
        print(f"speedup (local median / dask median): {speedup:.2f}x")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
