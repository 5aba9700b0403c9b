"""Black-box: `dask scheduler` and two `dask worker` processes on 127.0.0.1, and the real CLI
with -executor dask://127.0.0.1:PORT, driven over HTTP like a client would.

Every process is started by the test and stopped again (SIGTERM, then SIGKILL), and every wait
is bounded.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from distributed import Client

from tests.live import LiveServer, live_server, run_cli

DASK = str(Path(sys.executable).with_name("dask"))
REPO = Path(__file__).resolve().parents[1]
# One retry when a worker dies under a function: what the docs tell operators to set.
ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # The log goes to a file (a pipe nobody reads could fill and stall the process).
    with (cwd / f"dask-{time.monotonic_ns()}.log").open("wb") as log:
        return subprocess.Popen(
            [DASK, *args],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **ENV, **(env or {})},
        )


def scheduler(port: int, cwd: Path) -> subprocess.Popen[bytes]:
    return spawn("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", cwd=cwd)


def worker(port: int, cwd: Path, name: str) -> subprocess.Popen[bytes]:
    return spawn(
        *("worker", f"tcp://127.0.0.1:{port}", "--name", name, "--nthreads", "1"),
        *("--no-dashboard", "--host", "127.0.0.1"),
        cwd=cwd,
    )


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def workers_of(port: int, count: int) -> dict[str, Any]:
    """Wait (bounded) until ``count`` workers joined; their scheduler info by address."""
    with Client(f"tcp://127.0.0.1:{port}", timeout=30) as client:
        client.wait_for_workers(count, timeout=90)
        return dict(client.scheduler_info()["workers"])


class Cluster:
    def __init__(self, port: int, workers: dict[str, Any]) -> None:
        self.port = port
        self.workers = workers

    @property
    def executor(self) -> str:
        return f"dask://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cwd = tmp_path_factory.mktemp("dask")
    port = free_port()
    processes = [scheduler(port, cwd)]
    try:
        processes += [worker(port, cwd, "w1"), worker(port, cwd, "w2")]
        yield Cluster(port, workers_of(port, 2))
    finally:
        stop(*reversed(processes))


def write_table(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        out = csv.writer(file)
        out.writerow(["a", "b", "c", "label"])
        out.writerows([i, i * 0.5, (i * 7) % 13, f"k{i % 5}"] for i in range(rows))


class Api:
    def __init__(self, server: LiveServer) -> None:
        self.url = server.url

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = requests.request(method, self.url + path, json=body, timeout=60)
        return response.status_code, response.json()

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self(method, path, body)
        assert status < 300, (method, path, status, answer)
        return answer

    def upload(self, name: str, path: Path) -> None:
        with path.open("rb") as file:
            response = requests.post(
                f"{self.url}/service/upload/{name}", files={"file": file}, timeout=60
            )
        assert response.status_code in (200, 201), response.text

    def run(self, *tasks: dict[str, Any], files: list[str]) -> str:
        pipeline = self.ok("POST", "/pipelines", {"name": "p", "tasks": list(tasks)})
        return str(self.ok("POST", "/runs", {"pipeline": pipeline["id"], "files": files})["id"])

    def until(self, run_id: str, *statuses: str, seconds: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            run = self.ok("GET", f"/runs/{run_id}")
            if run["status"] in statuses:
                return run  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"run stayed {run['status']}: {run}"
            time.sleep(0.1)


@contextlib.contextmanager
def server(executor: str, cwd: Path, *options: str) -> Iterator[Api]:
    args = ("-insecure", "-upload-dir", "data", "-executor", executor, *options)
    with live_server(*args, cwd=cwd) as live:
        api = Api(live)
        api.ok("POST", "/configure/module/dataset/ds", {})
        api.ok("GET", "/context/module/ds/ds")
        yield api


SPLIT = {"module": "ds", "function": "split", "options": {"ratio": 0.8}}
DESCRIBE = {"module": "ds", "function": "describe", "options": {}}


def test_two_task_pipeline_runs_on_the_dask_workers(cluster: Cluster, tmp_path: Path) -> None:
    table = tmp_path / "iris.csv"
    write_table(table, 100)
    with server(cluster.executor, tmp_path) as api:
        api.upload("iris.csv", table)
        run = api.until(api.run(SPLIT, DESCRIBE, files=["iris.csv"]), "FINISHED", "FAILED")
        assert run["status"] == "FINISHED", run
        for job in run["jobs"]:
            assert job["status"] == "FINISHED"
            assert job["ran_on"] in cluster.workers, (job["ran_on"], list(cluster.workers))
        assert len(run["jobs"][0]["output_files"]) == 2
        # The Python example, against the same server: split → describe, followed by events.
        done = subprocess.run(
            [
                *(sys.executable, str(REPO / "examples/python/pipeline.py"), "--url", api.url),
                *("--csv", str(table), "--json"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        final = json.loads(done.stdout)
        assert final["status"] == "FINISHED"
        assert {job["ran_on"] for job in final["jobs"]} <= set(cluster.workers)


def test_first_job_fails_second_is_cancelled_at_once(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3\n")
    with server(cluster.executor, tmp_path) as api:
        api.upload("bad.csv", tmp_path / "bad.csv")
        run = api.until(api.run(DESCRIBE, SPLIT, files=["bad.csv"]), "FAILED", "FINISHED")
        first, second = run["jobs"]
        assert (first["status"], first["error"]) == (
            "FAILED",
            "bad.csv line 3 has 1 fields, the header has 2",
        )
        assert (second["status"], second["error"]) == ("CANCELLED", "job 0 failed")
        # Cancelled in the same write as the failure: the same instant, not a queue later.
        assert second["finished"] == first["finished"]


def test_a_worker_killed_mid_job_is_retried_or_fails_clearly(
    cluster: Cluster, tmp_path: Path
) -> None:
    table = tmp_path / "big.csv"
    write_table(table, 300_000)
    with server(cluster.executor, tmp_path) as api:
        api.upload("big.csv", table)
        run_id = api.run(DESCRIBE, files=["big.csv"])
        api.until(run_id, "RUNNING", "FINISHED", "FAILED")
        killed = _kill_the_busy_worker(cluster.port)
        run = api.until(run_id, "FINISHED", "FAILED", seconds=180)
        (job,) = run["jobs"]
        if run["status"] == "FINISHED":
            assert job["ran_on"] != killed  # retried on the other worker
        else:
            assert "died" in job["error"], job
    # The killed worker's nanny starts a new one: the module's other tests keep two.
    cluster.workers = workers_of(cluster.port, 2)


def _kill_the_busy_worker(port: int) -> str | None:
    """SIGKILL the worker process that runs a task now; its address (None if none did)."""
    with Client(f"tcp://127.0.0.1:{port}", timeout=30) as client:
        deadline = time.monotonic() + 60
        while True:
            busy = [address for address, keys in client.processing().items() if keys]
            if busy:
                break
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
    os.kill(pid, signal.SIGKILL)
    return busy[0]


def test_unreachable_scheduler_exits_2_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    done = run_cli(
        *("server", "-insecure", "-port", "0", "-upload-dir", "data"),
        *("-executor", f"dask://127.0.0.1:{port}"),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"dffml-service-http: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"
    ), done.stderr


def test_workers_that_cannot_see_the_upload_dir_exit_2(tmp_path: Path) -> None:
    if subprocess.run(["unshare", "--mount", "true"], check=False).returncode != 0:
        pytest.skip("needs unshare --mount (root) to give a worker a filesystem of its own")
    port = free_port()
    hidden = tmp_path / "hidden"
    (hidden / "data").mkdir(parents=True)
    sched = scheduler(port, tmp_path)
    # A worker in a mount namespace of its own, where `hidden` is an empty tmpfs.
    blind = subprocess.Popen(
        [
            *("unshare", "--mount", "sh", "-c"),
            f'mount -t tmpfs tmpfs "{hidden}" && exec "{DASK}" worker tcp://127.0.0.1:{port}'
            " --nthreads 1 --no-dashboard --host 127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        workers_of(port, 1)
        done = run_cli(
            *("server", "-insecure", "-port", "0", "-upload-dir", str(hidden / "data")),
            *("-executor", f"dask://127.0.0.1:{port}"),
            cwd=tmp_path,
            timeout=120,
        )
    finally:
        stop(blind, sched)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "does not see -upload-dir" in last, done.stderr
    assert "shared filesystem" in last


def test_executor_dask_runs_an_in_process_cluster(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4\n")
    with server("dask", tmp_path, "-dask-workers", "1") as api:
        api.upload("t.csv", tmp_path / "t.csv")
        run = api.until(api.run(DESCRIBE, files=["t.csv"]), "FINISHED", "FAILED")
        assert run["status"] == "FINISHED", run
        assert run["jobs"][0]["ran_on"].startswith("tcp://127.0.0.1:")
        # The module route runs on the executor too.
        status, body = api("POST", "/module/ds/describe", {"files": ["t.csv"]})
        assert status == 200, body


def test_executor_dask_without_the_extra_is_a_usage_error(tmp_path: Path) -> None:
    # A `distributed` that cannot be imported, first on the path: as if the extra were missing.
    shadow = tmp_path / "shadow" / "distributed"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'distributed'\")\n")
    env = {"PYTHONPATH": os.pathsep.join([str(shadow.parent), str(REPO)])}
    done = run_cli("server", "-insecure", "-executor", "dask", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "dffml-service-http server: error: -executor dask needs Dask, the 'dask' extra:"
        " pip install 'dffml-service-http[dask]' (see dffml-service-http server --help)"
    )
    done = run_cli("server", "-insecure", "-executor", "spark://x:1", cwd=tmp_path)
    assert done.returncode == 2
    assert "-executor must be local, dask or dask://HOST:PORT, got 'spark://x:1'" in done.stderr
