"""What is shared (operator preloads, the admin namespace) only admins change: a user's record
updates and trainings through a shared plugin answer 403, through any context of it; reading,
scoring and predicting stay open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.settings import Preload
from tests.conftest import MakeClient
from tests.helpers import as_user
from tests.models_helpers import LINE_MODEL, line_records

RECORD = {"features": {"Years": 3, "Salary": 40}}


@pytest.fixture
async def client(make_client: MakeClient) -> Any:
    preloads = (
        Preload("source", "line", "memory", {"records": line_records(range(1, 11))}),
        Preload("model", "m", "slr", LINE_MODEL),
    )
    return await make_client(auth="token", secret_key=b"z" * 32, preloads=preloads)


async def _json(response: Any) -> tuple[int, Any]:
    return response.status, await response.json()


async def test_users_cannot_change_shared_sources_or_models_but_use_them(client: Any) -> None:
    bob, admin = as_user(client, "bob"), as_user(client, "root", admin=True)
    # The admin trains what everyone shares.
    assert (await client.post("/model/m/train", json=["line"], headers=admin)).status == 200
    before = await (await client.get("/source/line/record/1", headers=admin)).json()

    # bob's own context of each shared plugin changes nothing shared either.
    for path in ("/context/source/line/bobs-line", "/context/model/m/bobs-m"):
        assert (await client.get(path, headers=bob)).status == 200
    for ctx in ("line", "bobs-line"):
        status, body = await _json(
            await client.post(f"/source/{ctx}/update/1", json=RECORD, headers=bob)
        )
        assert status == 403, body
        assert body == {"error": "line source is shared by the operator: only admins change it"}
    for ctx in ("m", "bobs-m"):
        for query in ("", "?async=1"):
            status, body = await _json(
                await client.post(f"/model/{ctx}/train{query}", json=["line"], headers=bob)
            )
            assert (status, body) == (
                403,
                {"error": "m model is shared by the operator: only admins change it"},
            )
    assert await (await client.get("/source/line/record/1", headers=admin)).json() == before

    # Reading, scoring and predicting stay open.
    assert (await client.get("/source/line/record/1", headers=bob)).status == 200
    assert (await client.post("/model/m/accuracy", json=["line"], headers=bob)).status == 200
    predicted = await client.post(
        "/model/m/predict/0", json={"k": {"features": {"Years": 4}}}, headers=bob
    )
    assert predicted.status == 200, await predicted.text()

    # bob's own source and model are his to change; the admin changes the shared ones.
    assert (
        await client.post(
            "/configure/source/memory/own", json={"records": line_records([1])}, headers=bob
        )
    ).status == 200
    assert (await client.get("/context/source/own/own", headers=bob)).status == 200
    assert (await client.post("/source/own/update/9", json=RECORD, headers=bob)).status == 200
    assert (await client.post("/source/line/update/1", json=RECORD, headers=admin)).status == 200


async def test_users_cannot_move_the_aliases_of_a_shared_model(
    make_client: MakeClient, upload_dir: Path
) -> None:
    """A version alias decides what every client of the model predicts with: like a training,
    moving one is the admin's on a shared model, and a user's on their own."""
    # An operator's paths are their own (relative ones to the working directory): absolute here.
    located = {**LINE_MODEL, "location": str(upload_dir / "models" / "m")}
    preloads = (
        Preload("source", "line", "memory", {"records": line_records(range(1, 11))}),
        Preload("model", "m", "slr", located),
    )
    client = await make_client(
        auth="token",
        secret_key=b"z" * 32,
        preloads=preloads,
        keep_versions=3,
    )
    bob, admin = as_user(client, "bob"), as_user(client, "root", admin=True)
    for _ in range(2):
        assert (await client.post("/model/m/train", json=["line"], headers=admin)).status == 200
    status, body = await _json(
        await client.post("/model/m/aliases/champion", json={"version": 1}, headers=bob)
    )
    assert (status, body) == (
        403,
        {"error": "m model is shared by the operator: only admins change it"},
    )
    listed = await (await client.get("/model/m/versions", headers=bob)).json()
    assert "champion" not in listed["aliases"]
    status, body = await _json(
        await client.post("/model/m/aliases/champion", json={"version": 1}, headers=admin)
    )
    assert status == 200, body
    assert body["aliases"]["champion"] == 1
