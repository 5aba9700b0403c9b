"""Black-box: the real CLI runs tasks, cancels a long fit, and restores its state on restart."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.live import LiveServer, live_server
from tests.models_helpers import line_records
from tests.tasks_helpers import parse_sse

TIMEOUT = 60
LINE = {"features": ["Years:int:1"], "predict": "Salary:float:1"}
TEN = {"t": {"features": {"Years": 10}}}
SERVE = ("-insecure", "-upload-dir", "data", "-log", "INFO")
POLLS = 1200  # 0.05 s apart


def call(method: str, url: str, body: Any = None, status: int = 200) -> Any:
    response = requests.request(method, url, json=body, timeout=TIMEOUT)
    assert response.status_code == status, response.text
    return response.json()


def submit(url: str, path: str, body: Any) -> str:
    response = requests.post(f"{url}{path}?async=1", json=body, timeout=TIMEOUT)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    assert response.headers["Location"] == f"/task/{task_id}"
    return task_id


def wait_for(url: str, task_id: str, condition: Any) -> dict[str, Any]:
    for _ in range(POLLS):
        task: dict[str, Any] = call("GET", f"{url}/task/{task_id}")
        if condition(task):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} never got there: {task}")


def finished(task: dict[str, Any]) -> bool:
    return task["status"] in ("SUCCESS", "FAILURE", "CANCELLED")


def fitting(task: dict[str, Any]) -> bool:
    """Inside the worker's fit: its own progress message has arrived."""
    message = task["progress"]["message"] or ""
    return task["status"] == "RUNNING" and ("fitting" in message or "trees" in message)


def forest_records(n: int) -> dict[str, Any]:
    rng = random.Random(7)
    records = {}
    for i in range(n):
        x = [rng.random() for _ in range(4)]
        records[str(i)] = {"features": {"a": x[0], "b": x[1], "c": x[2], "d": x[3], "y": i % 3}}
    return records


SLOW_FOREST = {
    "features": ["a:float:1", "b:float:1", "c:float:1", "d:float:1"],
    "predict": "y:int:1",
    "n_estimators": 20000,  # minutes of fitting: it only ends by being cancelled or killed
}


def start_slow_fit(url: str) -> str:
    call("POST", f"{url}/configure/source/memory/forest", {"records": forest_records(2000)})
    call("GET", f"{url}/context/source/forest/forest")
    call("POST", f"{url}/configure/model/scikitrf/slow", SLOW_FOREST)
    call("GET", f"{url}/context/model/slow/slow")
    task_id = submit(url, "/model/slow/train", ["forest"])
    wait_for(url, task_id, fitting)
    return task_id


def grandchildren(pid: int) -> set[int]:
    """Processes whose parent's parent is ``pid``: the workers under the forkserver."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    children = {p for p, parent in parents.items() if parent == pid}
    return {p for p, parent in parents.items() if parent in children}


def test_async_train_reports_progress_over_sse(tmp_path: Path) -> None:
    with live_server(*SERVE, cwd=tmp_path) as server:
        url = server.url
        call("POST", f"{url}/configure/source/memory/train", {"records": line_records(range(50))})
        call("GET", f"{url}/context/source/train/train")
        call("POST", f"{url}/configure/model/scikitrfr/m", {**LINE, "n_estimators": 20})
        call("GET", f"{url}/context/model/m/m")
        task_id = submit(url, "/model/m/train", ["train"])
        with requests.get(f"{url}/task/{task_id}/events", stream=True, timeout=TIMEOUT) as sse:
            assert sse.status_code == 200
            assert sse.headers["Content-Type"].startswith("text/event-stream")
            events = parse_sse(sse.text)  # ends with the final status
        assert events[0][0] == "status"
        assert events[-1][0] == "status"
        assert events[-1][1]["status"] == "SUCCESS", events[-1]
        messages = [data["message"] for name, data in events if name == "progress"]
        assert any("trees grown" in (m or "") for m in messages), messages
        task = call("GET", f"{url}/task/{task_id}")
        assert task["status"] == "SUCCESS"
        assert task["ran_on"].startswith("local:pid ")
        assert task["progress"] == {"done": 50, "total": 50, "message": "fitted"}
        body = call("POST", f"{url}/model/m/predict/0", TEN)
        assert body["records"]["t"]["prediction"]["Salary"]["value"] > 0


def test_async_module_run_writes_its_outputs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    with live_server(*SERVE, cwd=tmp_path) as server:
        url = server.url
        call("POST", f"{url}/configure/module/dataset/ds", {})
        call("GET", f"{url}/context/module/ds/ds")
        task_id = submit(url, "/module/ds/split", {"files": ["rows.csv"]})
        task = wait_for(url, task_id, finished)
        assert task["status"] == "SUCCESS", task
        assert task["target"] == "module/ds/split"
        names = [f["filename"] for f in task["result"]["files"]]
        assert len(names) == 2
        for name in names:
            assert (data / name).is_file()
        listed = str(call("GET", f"{url}/service/files"))
        assert all(name in listed for name in names)


def test_cancelling_a_long_forest_fit_kills_its_worker(tmp_path: Path) -> None:
    with live_server(*SERVE, cwd=tmp_path) as server:
        url = server.url
        task_id = start_slow_fit(url)
        workers = grandchildren(server.process.pid)
        assert workers, "the fit runs in a worker process"
        cancelled = call("DELETE", f"{url}/task/{task_id}")
        assert cancelled["status"] == "CANCELLED"
        # DELETE answers once the task has stopped: the worker is gone already.
        assert not (workers & grandchildren(server.process.pid))
        assert requests.get(f"{url}/health", timeout=TIMEOUT).status_code == 200
        assert call("DELETE", f"{url}/task/{task_id}", status=409)["error"].startswith(
            "Task already finished"
        )
        body = call("POST", f"{url}/model/slow/predict/0", {"a": {"features": {}}}, status=400)
        assert body == {"error": "Model not trained"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_restart_restores_labels_contexts_models_and_fails_cut_off_tasks(
    tmp_path: Path, signum: int
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "gone.csv").write_text("key,Years,Salary\na,1,20\n")
    with live_server(*SERVE, cwd=tmp_path) as server:
        url = server.url
        call("POST", f"{url}/configure/source/memory/train", {"records": line_records(range(5))})
        call("GET", f"{url}/context/source/train/train")
        call("GET", f"{url}/context/source/train/again")
        call("POST", f"{url}/configure/model/slr/m", {**LINE, "location": "models/m"})
        call("GET", f"{url}/context/model/m/m")
        assert call("POST", f"{url}/model/m/train", ["train"]) == {"error": None}
        call("POST", f"{url}/configure/source/csv/gone", {"filename": "gone.csv"})
        call("GET", f"{url}/context/source/gone/gone")
        call("POST", f"{url}/configure/source/memory/dropped", {"records": {}})
        call("DELETE", f"{url}/configure/source/dropped")
        cut_off = start_slow_fit(url)
        _stop(server, signum)
    (data / "gone.csv").unlink()

    with live_server(*SERVE, cwd=tmp_path) as server:
        url = server.url
        labels = call("GET", f"{url}/labels")
        assert labels["source"]["train"]["plugin"] == "memory"
        assert labels["source"]["train"]["contexts"] == ["again", "train"]
        assert labels["model"]["m"]["config"] == {**LINE, "location": "models/m"}
        assert labels["model"]["m"]["contexts"] == ["m"]
        assert "dropped" not in labels["source"]
        gone = labels["source"]["gone"]
        assert gone["plugin"] == "csv"
        assert "No such file or directory" in gone["error"]
        assert gone["contexts"] == ["gone"]
        # The trained model reloads from its location: predicts without training.
        body = call("POST", f"{url}/model/m/predict/0", TEN)
        assert body["records"]["t"]["prediction"]["Salary"]["value"] == pytest.approx(110)
        task = call("GET", f"{url}/task/{cut_off}")
        assert task["status"] == "FAILURE"
        assert task["error"] == "interrupted: the server stopped"
        assert task["finished"] is not None
        listed = call("GET", f"{url}/tasks?status=FAILURE")
        assert cut_off in [t["task_id"] for t in listed["tasks"]]
        # A label that failed to restore can be deleted (and is then forgotten).
        call("DELETE", f"{url}/configure/source/gone")
        assert "gone" not in call("GET", f"{url}/labels")["source"]
        # The operator's preload wins a clash with a saved label.
    with live_server(
        *SERVE,
        *("-sources", "train=memory"),
        cwd=tmp_path,
    ) as server:
        labels = call("GET", f"{server.url}/labels")
        assert labels["source"]["train"]["preloaded"] is True
        assert labels["source"]["train"]["contexts"] == ["again", "train"]
        assert "gone" not in labels["source"]


def _stop(server: LiveServer, signum: int) -> None:
    if signum == signal.SIGKILL:
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=TIMEOUT)
        # The forkserver and its workers notice the pipe closing and exit on their own.
    else:
        assert server.stop(signum) == 0
