"""Black-box: `dask scheduler` and two `dask worker` processes on 127.0.0.1, and the real CLI
with -executor dask://127.0.0.1:PORT, driven over HTTP like a client would.

One cluster and one server serve the module's tests (each start costs seconds). The module
plugin of tests/fixtures/dask_plugin (a job that waits to be killed) is on the PYTHONPATH of
the server, the scheduler and the workers, found through its entry point like a user's
installed plugin. Every process is started by the test and stopped again (SIGTERM, then
SIGKILL), and every wait is bounded.
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

from service.commandline.parser import settings_from_args
from tests.live import LiveServer, live_server, run_cli

DASK = str(Path(sys.executable).with_name("dask"))
REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "tests" / "fixtures" / "dask_plugin"
# The plugin for the server, and for the scheduler and workers, which unpickle its functions.
PLUGIN_PATH = {
    "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGIN), os.environ.get("PYTHONPATH")]))
}
# What the docs tell operators to set: one retry when a worker dies under a function, and the
# dashboard's profiler off.
ENV = {
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    **PLUGIN_PATH,
}


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


def workers_of(port: int, count: int) -> dict[str, int]:
    """Wait (polled, bounded) until exactly ``count`` workers are joined; the pid of each
    worker process, by its address."""
    with Client(f"tcp://127.0.0.1:{port}", timeout=30) as client:
        deadline = time.monotonic() + 90
        while True:
            workers = client.scheduler_info(n_workers=-1)["workers"]
            if len(workers) == count:
                return dict(client.run(os.getpid, workers=list(workers)))
            assert time.monotonic() < deadline, f"{len(workers)} workers, not {count}"
            time.sleep(0.05)


class Cluster:
    def __init__(self, port: int) -> None:
        self.port = port
        self._workers: dict[str, int] | None = None

    @property
    def workers(self) -> dict[str, int]:
        """The two workers' pids by address, once both have joined (waited for on first use,
        so the server can start meanwhile)."""
        if self._workers is None:
            self._workers = workers_of(self.port, 2)
        return self._workers

    @workers.setter
    def workers(self, workers: dict[str, int]) -> None:
        self._workers = workers

    @property
    def executor(self) -> str:
        return f"dask://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cwd = tmp_path_factory.mktemp("dask")
    port = free_port()
    processes = [scheduler(port, cwd)]
    try:
        # The workers (and then the server) start while the scheduler does: each start is
        # seconds of importing, and the workers retry until the scheduler listens.
        processes += [worker(port, cwd, "w1"), worker(port, cwd, "w2")]
        deadline = time.monotonic() + 60
        while not _accepts(port):
            assert processes[0].poll() is None, "the scheduler exited"
            assert time.monotonic() < deadline, "the scheduler did not listen in time"
            time.sleep(0.05)
        yield Cluster(port)
    finally:
        stop(*reversed(processes))


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def write_table(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        out = csv.writer(file)
        out.writerow(["a", "b", "c", "label"])
        out.writerows([i, i * 0.5, (i * 7) % 13, f"k{i % 5}"] for i in range(rows))


class Api:
    def __init__(self, server: LiveServer, upload_dir: Path) -> None:
        self.url = server.url
        self.upload_dir = upload_dir

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
    with live_server(*args, cwd=cwd, env=PLUGIN_PATH) as live:
        api = Api(live, cwd / "data")
        for plugin, label in (("dataset", "ds"), ("hold", "h")):
            api.ok("POST", f"/configure/module/{plugin}/{label}", {})
            api.ok("GET", f"/context/module/{label}/{label}")
        yield api


@pytest.fixture(scope="module")
def api(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The CLI on the module's cluster, shared by the tests that only run pipelines on it.
    It starts as soon as the scheduler listens: it waits for a first worker itself, and a
    worker that joins after its start-up probe reads the probe before its first job."""
    with server(cluster.executor, tmp_path_factory.mktemp("server")) as api:
        yield api


SPLIT = {"module": "ds", "function": "split", "options": {"ratio": 0.8}}
DESCRIBE = {"module": "ds", "function": "describe", "options": {}}
HOLD = {"module": "h", "function": "hold", "options": {}}


def test_two_task_pipeline_runs_on_the_dask_workers(
    cluster: Cluster, api: Api, tmp_path: Path
) -> None:
    table = tmp_path / "iris.csv"
    write_table(table, 100)
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


def test_first_job_fails_second_is_cancelled_at_once(api: Api, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3\n")
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
    cluster: Cluster, api: Api, tmp_path: Path
) -> None:
    (tmp_path / "held.txt").write_text("one\ntwo\n")
    api.upload("held.txt", tmp_path / "held.txt")
    run_id = api.run(HOLD, files=["held.txt"])
    # The held job notes its worker's pid beside its output folder, then waits to be killed.
    pid = _first_attempt(api.upload_dir / "outputs" / f"run-{run_id}")
    (killed,) = [address for address, worker_pid in cluster.workers.items() if worker_pid == pid]
    os.kill(pid, signal.SIGKILL)
    run = api.until(run_id, "FINISHED", "FAILED")
    (job,) = run["jobs"]
    if run["status"] == "FINISHED":  # retried on the other worker, which found the note
        assert job["ran_on"] != killed, job
        assert any("(a retry)" in line for line in job["logs"]), job
        assert job["output_files"][0]["filename"].endswith("held.held.txt")
    else:
        assert "died" in job["error"], job
    # The killed worker's nanny starts a new one: the module's other tests keep two.
    cluster.workers = workers_of(cluster.port, 2)


def _first_attempt(folder: Path) -> int:
    deadline = time.monotonic() + 60
    while True:
        notes = sorted(folder.glob("job-0.attempt-*"))
        if notes and notes[0].read_text():
            return int(notes[0].read_text())
        assert time.monotonic() < deadline, "the held job never started"
        time.sleep(0.05)


def test_unreachable_scheduler_exits_2_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    done = run_cli(
        *("server", "-insecure", "-port", "0", "-upload-dir", "data"),
        *("-executor", f"dask://127.0.0.1:{port}", "-dask-timeout", "1"),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"dffml-service-http: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"
    ), done.stderr


def test_workers_that_cannot_see_the_upload_dir_exit_2(cluster: Cluster, tmp_path: Path) -> None:
    if subprocess.run(["unshare", "--mount", "true"], check=False).returncode != 0:
        pytest.skip("needs unshare --mount (root) to give a worker a filesystem of its own")
    hidden = tmp_path / "hidden"
    (hidden / "data").mkdir(parents=True)
    # A third worker of the module's cluster, in a mount namespace of its own where `hidden`
    # is an empty tmpfs.
    blind = subprocess.Popen(
        [
            *("unshare", "--mount", "sh", "-c"),
            f'mount -t tmpfs tmpfs "{hidden}" && exec "{DASK}" worker'
            f" tcp://127.0.0.1:{cluster.port} --nthreads 1 --no-dashboard --host 127.0.0.1"
            # One process (no nanny), so SIGKILL stops it at once and leaves nothing behind.
            " --no-nanny",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **ENV},
    )
    try:
        workers = workers_of(cluster.port, 3)
        (unseeing,) = set(workers) - set(cluster.workers)
        done = run_cli(
            *("server", "-insecure", "-port", "0", "-upload-dir", str(hidden / "data")),
            *("-executor", cluster.executor),
            cwd=tmp_path,
            timeout=120,
        )
    finally:
        blind.kill()
        blind.wait(timeout=30)
    # Gone again before the module's other tests hand out work.
    cluster.workers = workers_of(cluster.port, 2)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert f"Dask worker {unseeing} does not see -upload-dir" in last, done.stderr
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-executor", "spark://x:1"], "-executor must be local, dask or dask://HOST:PORT, got"),
        (["-executor", "dask", "-dask-timeout", "0"], "-dask-timeout must be a positive number"),
        (["-executor", "dask", "-dask-workers", "0"], "-dask-workers must be at least 1"),
    ],
)
def test_bad_executor_options_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI's own parsing, in-process (tests/test_cli.py runs the real CLI for such errors).
    with pytest.raises(SystemExit) as exited:
        settings_from_args(["-insecure", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
