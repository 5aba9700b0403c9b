"""An admin's ?all=1 on /labels and /tasks, as on /service/files: every user's, kept apart."""

from __future__ import annotations

from typing import Any

import pytest

from service.settings import Preload
from tests.conftest import MakeClient
from tests.helpers import as_user
from tests.test_auth_tasks import finished, start_training


@pytest.fixture
async def client(make_client: MakeClient) -> Any:
    shared = Preload("source", "shared", "memory", {"records": {}})
    return await make_client(auth="token", secret_key=b"l" * 32, preloads=(shared,))


async def test_an_admins_all_lists_every_users_labels_apart(client: Any) -> None:
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    admin = as_user(client, "root", admin=True)
    for who, headers in (("bob", bob), ("alice", alice)):
        response = await client.post(
            "/configure/source/memory/mine", json={"records": {who: {}}}, headers=headers
        )
        assert response.status == 200, await response.text()

    plain = await (await client.get("/labels", headers=admin)).json()
    assert set(plain["source"]) == {"shared"}
    assert "users" not in plain
    listed = await client.get("/labels?all=1", headers=admin)
    assert listed.status == 200
    everything = await listed.json()
    assert set(everything["source"]) == {"shared"}
    assert set(everything["users"]) == {"alice", "bob"}
    for who in ("alice", "bob"):
        own = everything["users"][who]["source"]
        assert set(own) == {"mine"}  # the shared label is not repeated as theirs
        assert own["mine"]["config"]["records"] == {who: {}}
    # A user's ?all=1 is their own view, as on /service/files.
    mine = await (await client.get("/labels?all=1", headers=bob)).json()
    assert set(mine["source"]) == {"shared", "mine"}
    assert "users" not in mine


async def test_an_admins_all_and_owner_are_accepted_by_tasks(client: Any) -> None:
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    admin = as_user(client, "root", admin=True)
    task_id = await start_training(client, bob)
    assert (await finished(client, task_id, bob))["status"] == "SUCCESS"

    for query in ("?all=1", "?all=true&kind=train", "?owner=bob&limit=5"):
        response = await client.get(f"/tasks{query}", headers=admin)
        assert response.status == 200, await response.text()
        listed = await response.json()
        assert [task["task_id"] for task in listed["tasks"]] == [task_id]
    assert (await (await client.get("/tasks?owner=alice", headers=admin)).json())["total"] == 0
    # A user's ?all=1 shows only their own.
    assert (await (await client.get("/tasks?all=1", headers=alice)).json())["total"] == 0
    assert (await (await client.get("/tasks?all=1", headers=bob)).json())["total"] == 1
