"""Per-user shares: one user reaching theirs (labels, iterkeys, event streams) never refuses
or pushes out another user."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from service.engine.pipelines import runner
from service.engine.tasks import manager
from tests import fakes
from tests.conftest import MakeClient
from tests.helpers import as_user

ROWS = {str(i): {"features": {"x": i}} for i in range(10)}


async def _source(client: Any, headers: dict[str, str], label: str) -> int:
    response = await client.post(
        f"/configure/source/memory/{label}", json={"records": ROWS}, headers=headers
    )
    return int(response.status)


async def test_one_user_takes_at_most_half_the_labels(make_client: MakeClient) -> None:
    client = await make_client(auth="token", secret_key=b"q" * 32, max_labels=4)
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    assert [await _source(client, bob, f"b{i}") for i in range(2)] == [200, 200]
    refused = await client.post("/configure/source/memory/b2", json={"records": ROWS}, headers=bob)
    assert refused.status == 409
    assert (await refused.json())["error"].startswith("At most 2 labels of one user")
    assert await _source(client, bob, "b0") == 200  # replacing one of his own is fine
    assert [await _source(client, alice, f"a{i}") for i in range(2)] == [200, 200]


async def test_one_users_iterkeys_push_out_only_their_own(make_client: MakeClient) -> None:
    client = await make_client(auth="token", secret_key=b"q" * 32, iterkey_max=4)
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    for who in (bob, alice):
        assert await _source(client, who, "s") == 200
        assert (await client.get("/context/source/s/s", headers=who)).status == 200

    async def page(headers: dict[str, str]) -> str:
        body = await (await client.get("/source/s/records/2", headers=headers)).json()
        return str(body["iterkey"])

    alices = [await page(alice) for _ in range(2)]
    bobs = [await page(bob) for _ in range(10)]
    for iterkey in alices:  # bob's ten never pushed alice's two out
        response = await client.get(f"/source/s/records/{iterkey}/2", headers=alice)
        assert response.status == 200, await response.text()
    live = [(await client.get(f"/source/s/records/{key}/2", headers=bob)).status for key in bobs]
    assert live == [404] * 8 + [200] * 2  # his own oldest went


async def test_one_users_event_streams_leave_room_for_others(
    make_client: MakeClient, upload_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager, "USER_SUBSCRIBERS", 2)
    client = await make_client(
        registry=fakes.fake_registry(), auth="token", secret_key=b"q" * 32, task_workers=1
    )
    bob, admin = as_user(client, "bob"), as_user(client, "root", admin=True)
    configured = await client.post("/configure/module/fake/f", json={}, headers=bob)
    assert configured.status == 200, await configured.text()
    assert (await client.get("/context/module/f/f", headers=bob)).status == 200
    (upload_dir / "users" / "bob").mkdir(parents=True, exist_ok=True)
    (upload_dir / "users" / "bob" / "a.txt").write_text("one\n")
    accepted = await client.post("/module/f/sleep?async=1", json={"files": ["a.txt"]}, headers=bob)
    assert accepted.status == 202, await accepted.text()
    task_id = (await accepted.json())["task_id"]
    streams = []
    try:
        for _ in range(2):
            stream = await client.get(f"/task/{task_id}/events", headers=bob)
            assert stream.status == 200
            streams.append(stream)
        refused = await client.get(f"/task/{task_id}/events", headers=bob)
        assert refused.status == 429
        assert "for this user" in (await refused.json())["error"]
        other = await client.get(f"/task/{task_id}/events", headers=admin)
        assert other.status == 200
        streams.append(other)
    finally:
        await client.delete(f"/task/{task_id}", headers=admin)
        for stream in streams:
            stream.close()


async def _sleeper_module(
    client: Any, upload_dir: Path, name: str, headers: dict[str, str]
) -> None:
    configured = await client.post("/configure/module/fake/f", json={}, headers=headers)
    assert configured.status == 200, await configured.text()
    assert (await client.get("/context/module/f/f", headers=headers)).status == 200
    (upload_dir / "users" / name).mkdir(parents=True, exist_ok=True)
    (upload_dir / "users" / name / "a.txt").write_text("one\n")


async def test_one_users_backlog_leaves_room_in_the_task_queue(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client(
        registry=fakes.fake_registry(),
        auth="token",
        secret_key=b"q" * 32,
        task_workers=1,
        task_queue=2,
    )
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    admin = as_user(client, "root", admin=True)
    for name, headers in (("bob", bob), ("alice", alice)):
        await _sleeper_module(client, upload_dir, name, headers)

    async def sleep(headers: dict[str, str]) -> Any:
        return await client.post(
            "/module/f/sleep?async=1", json={"files": ["a.txt"]}, headers=headers
        )

    started = []
    try:
        for _ in range(2):  # one runs, one waits: bob's share of a queue of 2 is 1
            accepted = await sleep(bob)
            assert accepted.status == 202, await accepted.text()
            started.append((await accepted.json())["task_id"])
            if len(started) == 1:
                await until_running(client, started[0], bob)
        refused = await sleep(bob)
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "5"
        assert (await refused.json())["error"].startswith("Too many pending tasks of this user")
        waiting = await sleep(alice)  # alice still gets a place in the queue
        assert waiting.status == 202, await waiting.text()
        started.append((await waiting.json())["task_id"])
    finally:
        for task_id in started:
            await client.delete(f"/task/{task_id}", headers=admin)


async def until_running(client: Any, task_id: str, headers: dict[str, str]) -> None:
    for _ in range(1200):  # 0.05 s apart: a minute at most
        task = await (await client.get(f"/task/{task_id}", headers=headers)).json()
        if task["status"] == "RUNNING":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never ran")


async def test_one_users_runs_leave_room_for_others(
    make_client: MakeClient, upload_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "USER_ACTIVE_RUNS", 1)
    client = await make_client(
        registry=fakes.fake_registry(), auth="token", secret_key=b"q" * 32, module_workers=2
    )
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    runs: list[tuple[str, dict[str, str]]] = []

    async def start(headers: dict[str, str]) -> Any:
        pipeline = await client.post(
            "/pipelines",
            json={"name": "p", "tasks": [{"module": "f", "function": "sleep", "options": {}}]},
            headers=headers,
        )
        assert pipeline.status == 201, await pipeline.text()
        body = {"pipeline": (await pipeline.json())["id"], "files": ["a.txt"]}
        return await client.post("/runs", json=body, headers=headers)

    for name, headers in (("bob", bob), ("alice", alice)):
        await _sleeper_module(client, upload_dir, name, headers)
    try:
        first = await start(bob)
        assert first.status == 201, await first.text()
        runs.append(((await first.json())["id"], bob))
        refused = await start(bob)
        assert refused.status == 429
        assert "this user's runs" in (await refused.json())["error"]
        other = await start(alice)
        assert other.status == 201, await other.text()
        runs.append(((await other.json())["id"], alice))
    finally:
        for run_id, headers in runs:
            await client.delete(f"/runs/{run_id}", headers=headers)
