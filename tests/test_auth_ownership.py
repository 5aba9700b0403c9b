"""-auth token: each user's labels, contexts, iterkeys and files are their own (404 to others);
operator preloads are shared; admins see and manage everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from yarl import URL

from service.settings import Preload
from tests.conftest import MakeClient
from tests.helpers import as_user

ROWS = {str(i): {"features": {"x": i}} for i in range(5)}


@pytest.fixture
async def client(make_client: MakeClient) -> Any:
    shared = Preload("source", "shared", "memory", {"records": ROWS})
    return await make_client(auth="token", secret_key=b"s" * 32, preloads=(shared,))


async def make_source(client: Any, headers: dict[str, str], label: str) -> None:
    response = await client.post(
        f"/configure/source/memory/{label}", json={"records": ROWS}, headers=headers
    )
    assert response.status == 200, await response.text()
    response = await client.get(f"/context/source/{label}/{label}", headers=headers)
    assert response.status == 200


async def test_labels_and_contexts_are_per_user(client: Any) -> None:
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    admin = as_user(client, "root", admin=True)
    await make_source(client, bob, "mine")
    assert (await client.get("/source/mine/record/1", headers=bob)).status == 200
    for method, path in [
        ("GET", "/source/mine/record/1"),
        ("GET", "/source/mine/records/2"),
        ("DELETE", "/context/source/mine"),
        ("DELETE", "/configure/source/mine"),
        ("GET", "/context/source/mine/other"),
    ]:
        response = await client.request(method, path, headers=alice)
        assert response.status == 404, (method, path)
    # alice may use the same label for her own; neither sees the other's.
    await make_source(client, alice, "mine")
    await client.post("/source/mine/update/1", json={"features": {"x": 100}}, headers=alice)
    bob_record = await (await client.get("/source/mine/record/1", headers=bob)).json()
    assert bob_record["features"] == {"x": 1}
    # An admin reaches bob's with ?owner=bob.
    response = await client.get("/source/mine/record/1?owner=bob", headers=admin)
    assert (await response.json())["features"] == {"x": 1}
    assert (await client.delete("/context/source/mine?owner=bob", headers=admin)).status == 200
    assert (await client.get("/source/mine/record/1", headers=bob)).status == 404


async def test_operator_preloads_are_shared_and_only_admins_change_them(client: Any) -> None:
    bob, admin = as_user(client, "bob"), as_user(client, "root", admin=True)
    assert (await client.get("/source/shared/record/2", headers=bob)).status == 200
    # bob may open his own context of the shared plugin …
    assert (await client.get("/context/source/shared/bobs", headers=bob)).status == 200
    assert (await client.get("/source/bobs/record/2", headers=bob)).status == 200
    # … but not release or delete what is shared.
    for path in ("/context/source/shared", "/configure/source/shared"):
        response = await client.delete(path, headers=bob)
        assert response.status == 403
        assert "only admins" in (await response.json())["error"]
    assert (await client.delete("/context/source/shared", headers=admin)).status == 200
    assert (await client.get("/source/shared/record/2", headers=bob)).status == 404


async def test_iterkeys_belong_to_their_user(client: Any) -> None:
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    await make_source(client, bob, "s")
    await make_source(client, alice, "s")
    page = await (await client.get("/source/s/records/2", headers=bob)).json()
    iterkey = page["iterkey"]
    assert (await client.get(f"/source/s/records/{iterkey}/2", headers=alice)).status == 404
    assert (await client.delete(f"/source/s/records/{iterkey}", headers=alice)).status == 404
    assert (await client.get(f"/source/s/records/{iterkey}/2", headers=bob)).status == 200


async def upload(client: Any, headers: dict[str, str], path: str, data: bytes) -> int:
    form = FormData()
    form.add_field("file", data, filename="f")
    response = await client.post(f"/service/upload/{path}", data=form, headers=headers)
    status: int = response.status
    return status


async def test_files_live_under_users_u_and_stay_relative(client: Any, upload_dir: Path) -> None:
    bob, alice = as_user(client, "bob"), as_user(client, "alice")
    admin = as_user(client, "root", admin=True)
    assert await upload(client, bob, "data.csv", b"a\n1\n") in (200, 201)
    assert (upload_dir / "users" / "bob" / "data.csv").read_bytes() == b"a\n1\n"
    listing = await (await client.get("/service/files", headers=bob)).json()
    assert listing == [{"filename": "data.csv", "size": 4}]
    assert await (await client.get("/service/files", headers=alice)).json() == []
    assert (await client.get("/service/files/data.csv", headers=alice)).status == 404
    assert (await client.delete("/service/files/data.csv", headers=alice)).status == 404
    # Sent as is (the client would fold a bare ".."): bob's file is outside alice's root.
    response = await client.get(
        URL("/service/files/..%2Fbob%2Fdata.csv", encoded=True), headers=alice
    )
    assert (response.status, await response.json()) == (400, {"error": "Attempted path traversal"})
    response = await client.post(
        "/configure/source/csv/mine", json={"filename": "../bob/data.csv"}, headers=alice
    )
    assert response.status == 400  # outside alice's root
    # bob's configs name files relative to his own root.
    response = await client.post(
        "/configure/source/csv/mine", json={"filename": "data.csv"}, headers=bob
    )
    assert response.status == 200, await response.text()
    # Admins: the shared files by default, everyone's with ?all=1, by their full path.
    (upload_dir / "shared.txt").write_text("x")
    names = [
        e["filename"] for e in await (await client.get("/service/files", headers=admin)).json()
    ]
    assert names == ["shared.txt"]
    everything = await (await client.get("/service/files?all=1", headers=admin)).json()
    assert [e["filename"] for e in everything] == ["shared.txt", "users/bob/data.csv"]
    assert (await client.get("/service/files/users/bob/data.csv", headers=admin)).status == 200
    assert (await client.get("/service/files/shared.txt", headers=bob)).status == 404


async def test_only_admins_use_owner_and_all(client: Any) -> None:
    bob = as_user(client, "bob")
    await make_source(client, as_user(client, "alice"), "a")
    # ?owner= from a non-admin is ignored: bob stays in his own namespace.
    assert (await client.get("/source/a/record/1?owner=alice", headers=bob)).status == 404
    response = await client.get(
        "/source/a/record/1?owner=../x", headers=as_user(client, "r", admin=True)
    )
    assert response.status == 400
