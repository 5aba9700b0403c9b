"""-auth token: a task belongs to the user who started it; to anyone else it does not exist."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import MakeClient
from tests.helpers import as_user
from tests.models_helpers import LINE_MODEL, line_records

POLL_LIMIT = 1200  # 0.05 s apart: a minute, far beyond one slr fit


@pytest.fixture
async def client(make_client: MakeClient) -> Any:
    return await make_client(auth="token", secret_key=b"s" * 32)


async def start_training(client: Any, headers: dict[str, str]) -> str:
    for path, body in (
        ("/configure/source/memory/line", {"records": line_records(range(1, 11))}),
        ("/configure/model/slr/m", LINE_MODEL),
    ):
        response = await client.post(path, json=body, headers=headers)
        assert response.status == 200, await response.text()
    for kind in ("source/line/line", "model/m/m"):
        assert (await client.get(f"/context/{kind}", headers=headers)).status == 200
    response = await client.post("/model/m/train?async=1", json=["line"], headers=headers)
    assert response.status == 202, await response.text()
    task_id: str = (await response.json())["task_id"]
    return task_id


async def finished(client: Any, task_id: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(POLL_LIMIT):
        task: dict[str, Any] = await (await client.get(f"/task/{task_id}", headers=headers)).json()
        if task["status"] in ("SUCCESS", "FAILURE", "CANCELLED"):
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


async def test_a_users_task_is_not_found_by_another_user(client: Any) -> None:
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    admin = as_user(client, "root", admin=True)
    task_id = await start_training(client, bob)
    assert (await finished(client, task_id, bob))["status"] == "SUCCESS"

    for method, path in (
        ("GET", f"/task/{task_id}"),
        ("GET", f"/task/{task_id}/events"),
        ("DELETE", f"/task/{task_id}"),
    ):
        response = await client.request(method, path, headers=alice)
        assert (response.status, await response.json()) == (404, {"error": "Task not found"})
    listed = await (await client.get("/tasks", headers=alice)).json()
    assert listed == {"tasks": [], "total": 0}

    mine = await (await client.get("/tasks", headers=bob)).json()
    assert [task["task_id"] for task in mine["tasks"]] == [task_id]
    # Admins see and manage everything.
    assert (await client.get(f"/task/{task_id}", headers=admin)).status == 200
    everyone = await (await client.get("/tasks", headers=admin)).json()
    assert everyone["total"] == 1
