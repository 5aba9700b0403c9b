"""Async routes and the task resources, through HTTP against the real app."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests import fakes
from tests.conftest import MakeClient
from tests.models_helpers import LINE_MODEL, add_model, add_scorer, add_source, expect, line_records
from tests.tasks_helpers import parse_sse, submit, wait_status, wait_task
from tests.test_modules import open_module


@pytest.fixture
async def line(client: Any) -> Any:
    await add_source(client, "line", line_records(range(1, 41)))
    await add_model(client, "slr", "m", LINE_MODEL)
    return client


async def test_async_train_answers_202_and_the_task_succeeds(line: Any) -> None:
    accepted = await submit(line, "POST", "/model/m/train", json=["line"])
    task = await wait_task(line, accepted["task_id"])
    assert task["status"] == "SUCCESS", task
    assert task["kind"] == "train"
    assert task["target"] == "model/m"
    assert task["result"] == {"error": None}  # what the synchronous route answers
    assert task["error"] is None
    assert task["created"] <= task["started"] <= task["finished"]
    assert task["created"].endswith("Z")
    assert task["ran_on"].startswith("local:pid ")
    assert task["progress"]["message"]
    predicted = await expect(
        await line.post("/model/m/predict/0", json={"a": {"features": {"Years": 2}}})
    )
    assert predicted["records"]["a"]["prediction"]["Salary"]["value"] == pytest.approx(30)


async def test_prefer_respond_async_and_async_true_are_async(line: Any) -> None:
    response = await line.post(
        "/model/m/train", json=["line"], headers={"Prefer": "wait=10, respond-async"}
    )
    assert response.status == 202
    await wait_task(line, (await response.json())["task_id"])
    response = await line.post("/model/m/train?async=true", json=["line"])
    assert response.status == 202
    await wait_task(line, (await response.json())["task_id"])


async def test_without_async_routes_answer_as_before(line: Any) -> None:
    for path in ("/model/m/train", "/model/m/train?async=0", "/model/m/train?async=false"):
        response = await line.post(path, json=["line"])
        assert (response.status, await response.json()) == (200, {"error": None})
    assert (await expect(await line.get("/tasks")))["total"] == 0


async def test_bad_requests_are_still_4xx_at_once(line: Any) -> None:
    cases = [
        ("/model/m/train?async=maybe", ["line"], 400, "'async' must be 1, true, 0 or false"),
        ("/model/nope/train?async=1", ["line"], 404, "Model not loaded"),
        ("/model/m/train?async=1", ["nope"], 404, "Source not loaded"),
        ("/model/m/train?async=1", {"a": 1}, 400, "Request body must be a JSON list"),
        ("/model/m/predict/0?async=1&source=nope", None, 404, "Source not loaded"),
        ("/model/m/predict/5?async=1", {}, 400, "predict/0"),
        ("/scorer/nope/m/score?async=1", ["line"], 404, "Scorer not loaded"),
        ("/module/nope/split?async=1", {"files": ["a.csv"]}, 404, "Module not loaded"),
    ]
    for path, body, status, message in cases:
        response = await line.post(path, json=body)
        answer = await response.json()
        assert response.status == status, (path, answer)
        assert message in answer["error"], (path, answer)
    assert (await expect(await line.get("/tasks")))["total"] == 0


async def test_unknown_task_and_bad_filters_are_4xx(line: Any) -> None:
    cases = [
        ("/task/0123456789abcdef", 404, "Task not found"),
        ("/task/0123456789abcdef/events", 404, "Task not found"),
        ("/tasks?status=DONE", 400, "Unknown status 'DONE'"),
        ("/tasks?kind=fit", 400, "Unknown kind 'fit'"),
        ("/tasks?limit=0", 400, "'limit' must be an integer from 1 to 1000"),
        ("/tasks?limit=1001", 400, "'limit' must be an integer from 1 to 1000"),
        ("/tasks?offset=-1", 400, "'offset' must be an integer from 0"),
        # Beyond SQLite's INTEGER the query itself would fail (a 500 the fuzzers found).
        (f"/tasks?offset={2**63}", 400, f"'offset' must be an integer from 0 to {2**63 - 1}"),
        (f"/v1/tasks?offset={10**30}", 400, "'offset' must be an integer from 0 to"),
        ("/tasks?limit=ten", 400, "'limit'"),
        ("/tasks?color=red", 400, "Unknown query parameter 'color'"),
    ]
    for path, status, message in cases:
        response = await line.get(path)
        body = await response.json()
        assert response.status == status, (path, body)
        assert message in body["error"], (path, body)
    response = await line.delete("/task/0123456789abcdef")
    assert (response.status, await response.json()) == (404, {"error": "Task not found"})


async def test_limit_and_offset_errors_are_the_documented_text(client: Any) -> None:
    # One parser for tasks and pipelines (service/api/params.py), each route's own wording;
    # only ASCII digits: int() alone took " 5", "+5" and "1_0", and "²" passed str.isdigit.
    for query, name, text in [
        ("limit=0", "limit", "0"),
        ("limit=1001", "limit", "1001"),
        ("limit=ten", "limit", "ten"),
        ("limit=%205", "limit", " 5"),
        ("limit=%2B5", "limit", "+5"),
        ("limit=1_0", "limit", "1_0"),
        ("limit=%C2%B2", "limit", "²"),
        ("offset=-1", "offset", "-1"),
        ("offset=%D9%A3", "offset", "٣"),
    ]:
        response = await client.get(f"/tasks?{query}")
        maximum = 1000 if name == "limit" else 2**63 - 1
        minimum = 1 if name == "limit" else 0
        assert (response.status, await response.json()) == (
            400,
            {"error": f"'{name}' must be an integer from {minimum} to {maximum}, got {text!r}"},
        ), query
    assert (await client.get("/tasks?limit=1000&offset=0")).status == 200


async def test_tasks_list_filters_pages_and_counts(line: Any) -> None:
    ids = []
    for _ in range(3):
        ids.append((await submit(line, "POST", "/model/m/train", json=["line"]))["task_id"])
        await wait_task(line, ids[-1])
    accuracy = await submit(line, "POST", "/model/m/accuracy", json=["line"])
    assert (await wait_task(line, accuracy["task_id"]))["result"]["accuracy"] == pytest.approx(1)
    body = await expect(await line.get("/tasks"))
    assert body["total"] == 4
    assert [t["task_id"] for t in body["tasks"]] == [accuracy["task_id"], *reversed(ids)]
    body = await expect(await line.get("/tasks?kind=train&limit=2&offset=1"))
    assert body["total"] == 3
    assert [t["task_id"] for t in body["tasks"]] == [ids[1], ids[0]]
    body = await expect(await line.get("/tasks?status=FAILURE"))
    assert body == {"tasks": [], "total": 0}
    assert (await expect(await line.get("/tasks?status=SUCCESS&kind=accuracy")))["total"] == 1


async def test_failure_carries_the_synchronous_error(client: Any) -> None:
    await add_source(client, "flat", {"a": {"features": {"Years": 1, "Salary": 1}}})
    await add_model(client, "slr", "m", LINE_MODEL)
    sync = await client.post("/model/m/train", json=["flat"])
    accepted = await submit(client, "POST", "/model/m/train", json=["flat"])
    task = await wait_task(client, accepted["task_id"])
    assert task["status"] == "FAILURE"
    assert task["error"] == (await sync.json())["error"]
    assert task["result"] is None


async def test_score_and_predict_body_async(line: Any) -> None:
    await expect(await line.post("/model/m/train", json=["line"]))
    await add_scorer(line, "mse", "mse")
    scored = await submit(line, "POST", "/scorer/mse/m/score", json=["line"])
    task = await wait_task(line, scored["task_id"])
    assert task["kind"] == "score"
    assert task["target"] == "scorer/mse/model/m"
    assert task["result"]["accuracy"] == pytest.approx(0, abs=1e-9)
    records = {"a": {"features": {"Years": 3}}}
    sync = await expect(await line.post("/model/m/predict/0", json=records))
    predicted = await submit(line, "POST", "/model/m/predict/0", json=records)
    task = await wait_task(line, predicted["task_id"])
    assert task["kind"] == "predict"
    result = task["result"]
    assert result["records"]["a"]["prediction"] == sync["records"]["a"]["prediction"]


async def test_predict_over_a_source_writes_ndjson_into_the_upload_dir(
    line: Any, upload_dir: Path
) -> None:
    await expect(await line.post("/model/m/train", json=["line"]))
    accepted = await submit(line, "POST", "/model/m/predict/0?source=line")
    task = await wait_task(line, accepted["task_id"])
    assert task["status"] == "SUCCESS", task
    name = f"outputs/{accepted['task_id']}/predictions.ndjson"
    assert task["result"] == {"file": name, "records": 40}
    assert task["progress"]["done"] == 40
    # Predicted in the executor's worker processes, like trainings (not in the server).
    assert task["ran_on"].startswith("local:pid "), task
    lines = (upload_dir / name).read_text().splitlines()
    assert len(lines) == 40
    first = json.loads(lines[0])
    assert first["key"] == "1"
    assert first["prediction"]["Salary"]["value"] == pytest.approx(20)
    listed = await expect(await line.get("/service/files"))
    assert name in json.dumps(listed)


async def test_events_stream_status_progress_and_the_final_status(line: Any) -> None:
    accepted = await submit(line, "POST", "/model/m/train", json=["line"])
    response = await line.get(f"/task/{accepted['task_id']}/events")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = parse_sse(await response.text())  # the stream ends after the final status
    assert events[0][0] == "status"
    assert events[-1][0] == "status"
    assert events[-1][1]["status"] == "SUCCESS"
    assert events[-1][1]["task_id"] == accepted["task_id"]
    progress = [data for name, data in events if name == "progress"]
    assert progress, events
    assert set(progress[0]) == {"done", "total", "message"}
    # A late client gets the current (final) status and the end of the stream.
    late = parse_sse(await (await line.get(f"/task/{accepted['task_id']}/events")).text())
    assert [name for name, _ in late] == ["status"]
    assert late[0][1]["status"] == "SUCCESS"


@pytest.fixture
async def fake(make_client: MakeClient, upload_dir: Path) -> Any:
    client = await make_client(registry=fakes.fake_registry(), task_queue=2, task_workers=1)
    await open_module(client, "fake", "f")
    (upload_dir / "a.txt").write_text("one\ntwo\n")
    return client


async def test_async_module_run_with_outputs_and_live_logs(fake: Any, upload_dir: Path) -> None:
    body = {"files": ["a.txt"], "options": {"count": 2}}
    accepted = await submit(fake, "POST", "/module/f/echo", json=body)
    events = parse_sse(await (await fake.get(f"/task/{accepted['task_id']}/events")).text())
    task = await wait_task(fake, accepted["task_id"])
    assert task["status"] == "SUCCESS", task
    assert task["kind"] == "module"
    assert task["target"] == "module/f/echo"
    (output,) = task["result"]["files"]
    assert (upload_dir / output["filename"]).read_text() == "ONE\nONE\nTWO\nTWO\n"
    assert task["result"]["logs"] == ["echoed a.txt"]
    assert task["ran_on"].startswith("local:pid ")
    assert ("log", {"line": "echoed a.txt"}) in events or events[-1][1]["status"] == "SUCCESS"


async def _sleeping(fake: Any, upload_dir: Path) -> str:
    accepted = await submit(fake, "POST", "/module/f/sleep", json={"files": ["a.txt"]})
    await wait_status(fake, accepted["task_id"], "RUNNING")
    pidfile = upload_dir / "sleeper.pid"
    for _ in range(1200):
        if pidfile.exists() and pidfile.read_text():
            return str(accepted["task_id"])
        await asyncio.sleep(0.05)
    raise AssertionError("the sleeper never started")


async def test_cancel_a_running_task_kills_its_worker(fake: Any, upload_dir: Path) -> None:
    import os

    task_id = await _sleeping(fake, upload_dir)
    response = await fake.delete(f"/task/{task_id}")
    body = await response.json()
    assert response.status == 200, body
    assert body["status"] == "CANCELLED"
    assert body["finished"] is not None
    with pytest.raises(ProcessLookupError):
        os.kill(int((upload_dir / "sleeper.pid").read_text()), 0)
    again = await fake.delete(f"/task/{task_id}")
    assert again.status == 409
    assert "already finished" in (await again.json())["error"]
    assert (await expect(await fake.get(f"/task/{task_id}")))["status"] == "CANCELLED"


async def test_the_queue_is_bounded_and_pending_tasks_cancel_at_once(
    fake: Any, upload_dir: Path
) -> None:
    running = await _sleeping(fake, upload_dir)  # the one worker slot is taken
    queued = [
        (await submit(fake, "POST", "/module/f/sleep", json={"files": ["a.txt"]}))["task_id"]
        for _ in range(2)
    ]
    response = await fake.post("/module/f/sleep?async=1", json={"files": ["a.txt"]})
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert "-task-queue" in (await response.json())["error"]
    cancelled = await expect(await fake.delete(f"/task/{queued[0]}"))
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["started"] is None
    body = await expect(await fake.get("/tasks?status=PENDING"))
    assert [t["task_id"] for t in body["tasks"]] == [queued[1]]
    for task_id in (queued[1], running):
        assert (await expect(await fake.delete(f"/task/{task_id}")))["status"] == "CANCELLED"


async def test_metrics_count_tasks_by_status_and_the_queue(fake: Any, upload_dir: Path) -> None:
    from tests.test_observability_metrics import scrape, value

    running = await _sleeping(fake, upload_dir)  # the one worker slot is taken
    queued = (await submit(fake, "POST", "/module/f/sleep", json={"files": ["a.txt"]}))["task_id"]
    now = await scrape(fake)
    assert value(now, "dffml_tasks", kind="module", status="RUNNING") == 1
    assert value(now, "dffml_tasks", kind="module", status="PENDING") == 1
    assert value(now, "dffml_task_queue_length") == 1
    assert value(now, "dffml_task_queue_limit") == 2
    for task_id in (queued, running):
        assert (await expect(await fake.delete(f"/task/{task_id}")))["status"] == "CANCELLED"
    body = {"files": ["a.txt"], "options": {"count": 1}}
    done = await submit(fake, "POST", "/module/f/echo", json=body)
    assert (await wait_task(fake, done["task_id"]))["status"] == "SUCCESS"
    after = await scrape(fake)
    assert value(after, "dffml_tasks", kind="module", status="RUNNING") == 0
    assert value(after, "dffml_tasks", kind="module", status="PENDING") == 0
    assert value(after, "dffml_task_queue_length") == 0
    assert value(after, "dffml_tasks_finished_total", kind="module", status="CANCELLED") == 2
    assert value(after, "dffml_tasks_finished_total", kind="module", status="SUCCESS") == 1


async def test_finished_tasks_are_pruned_after_the_ttl(make_client: MakeClient) -> None:
    from service.api.keys import TASKS

    client = await make_client(task_ttl=0.001)
    await add_source(client, "line", line_records(range(1, 5)))
    await add_model(client, "slr", "m", LINE_MODEL)
    accepted = await submit(client, "POST", "/model/m/train", json=["line"])
    await wait_task(client, accepted["task_id"])
    await client.app[TASKS].prune()
    response = await client.get(f"/task/{accepted['task_id']}")
    assert (response.status, await response.json()) == (404, {"error": "Task not found"})
