"""Model versions and aliases over HTTP: train twice, address each version, move an alias, roll
back, keep at most -keep-versions, and find them all again after a restart."""

from __future__ import annotations

from typing import Any

import pytest

from tests.models_helpers import LINE_MODEL, add_model, add_source, expect

SAVED = {**LINE_MODEL, "location": "models/salary"}


def line(slope: int, offset: int) -> dict[str, Any]:
    return {str(x): {"features": {"Years": x, "Salary": slope * x + offset}} for x in range(6)}


async def setup(client: Any) -> None:
    await add_source(client, "first", line(10, 10))
    await add_source(client, "second", line(20, 5))
    await add_model(client, "slr", "salary", SAVED)


async def train(client: Any, source: str) -> None:
    await expect(await client.post("/model/salary/train", json=[source]))


async def predicted(client: Any, label: str, years: int = 10) -> float:
    body = await expect(
        await client.post(f"/model/{label}/predict/0", json={"a": {"features": {"Years": years}}})
    )
    value: float = body["records"]["a"]["prediction"]["Salary"]["value"]
    return value


async def inferred(client: Any, version: str, years: int = 10) -> float:
    tensor = {"name": "Years", "datatype": "INT64", "shape": [1], "data": [years]}
    body = await expect(
        await client.post(f"/v2/models/salary/versions/{version}/infer", json={"inputs": [tensor]})
    )
    assert body["model_version"] == version
    value: float = body["outputs"][0]["data"][0]
    return value


async def test_train_twice_address_each_move_an_alias_and_restart(make_client: Any) -> None:
    client = await make_client(keep_versions=10)
    await setup(client)
    await train(client, "first")
    await train(client, "second")
    listing = await expect(await client.get("/model/salary/versions"))
    assert [v["version"] for v in listing["versions"]] == [1, 2]
    assert [v["sources"] for v in listing["versions"]] == [["first"], ["second"]]
    assert listing["aliases"] == {"latest": 2}
    # Each version predicts as it was trained; the plain label is the current model.
    assert await predicted(client, "salary@1") == pytest.approx(110)
    assert await predicted(client, "salary@2") == pytest.approx(205)
    assert await predicted(client, "salary@latest") == pytest.approx(205)
    assert await predicted(client, "salary") == pytest.approx(205)
    assert await inferred(client, "1") == pytest.approx(110)
    meta = await expect(await client.get("/v2/models/salary"))
    assert meta["versions"] == ["1", "2"]

    # champion -> 2, then rolled back to 1.
    moved = await expect(await client.post("/model/salary/aliases/champion", json={"version": 2}))
    assert moved["aliases"] == {"latest": 2, "champion": 2}
    assert await inferred(client, "champion") == pytest.approx(205)
    await expect(await client.post("/model/salary/aliases/champion", json={"version": 1}))
    assert await predicted(client, "salary@champion") == pytest.approx(110)
    accuracy = await expect(await client.post("/model/salary@1/accuracy", json=["first"]))
    assert accuracy["accuracy"] == pytest.approx(1.0)

    # A new server over the same files: the versions and aliases are where they were.
    restarted = await make_client(keep_versions=10)
    await add_model(restarted, "slr", "salary", SAVED)
    again = await expect(await restarted.get("/model/salary/versions"))
    assert again["aliases"] == {"latest": 2, "champion": 1}
    assert await predicted(restarted, "salary@champion") == pytest.approx(110)
    assert await predicted(restarted, "salary") == pytest.approx(205)


async def test_at_most_keep_versions_are_kept_aliased_ones_last(make_client: Any) -> None:
    client = await make_client(keep_versions=2)
    await setup(client)
    await train(client, "first")
    await expect(await client.post("/model/salary/aliases/champion", json={"version": 1}))
    await train(client, "second")
    await train(client, "first")
    listing = await expect(await client.get("/model/salary/versions"))
    # Version 2, the oldest no alias names, went; version 1 stays for its alias.
    assert [v["version"] for v in listing["versions"]] == [1, 3]
    refused = await expect(await client.post("/model/salary@2/predict/0", json={}), 404)
    assert refused == {"error": "No version '2' of this model"}


async def test_off_by_default_the_location_holds_only_the_model(
    client: Any, upload_dir: Any
) -> None:
    await setup(client)
    await train(client, "first")
    assert await expect(await client.get("/model/salary/versions")) == {
        "versions": [],
        "aliases": {},
    }
    assert [p.name for p in (upload_dir / "models" / "salary").iterdir()] == ["slr.json"]
    assert (await client.post("/model/salary@1/predict/0", json={})).status == 404


async def test_refusals(make_client: Any) -> None:
    client = await make_client(keep_versions=10)
    await setup(client)
    await train(client, "first")
    cases = [
        ("/model/salary/aliases/latest", {"version": 1}, 400),
        ("/model/salary/aliases/champion", {"version": "1"}, 400),
        ("/model/salary/aliases/champion", {"version": 7}, 404),
        ("/model/nobody/aliases/champion", {"version": 1}, 404),
    ]
    for path, body, status in cases:
        assert "error" in await expect(await client.post(path, json=body), status)
    assert (await client.get("/v2/models/salary/versions/9/ready")).status == 404
    assert (await client.post("/model/salary@1/train", json=["first"])).status == 404
    await add_model(client, "slr", "memory_only", LINE_MODEL)
    await expect(await client.post("/model/memory_only/train", json=["first"]))
    assert await expect(await client.get("/model/memory_only/versions")) == {
        "versions": [],
        "aliases": {},
    }
    refused = await expect(
        await client.post("/model/memory_only/aliases/champion", json={"version": 1}), 400
    )
    assert "location" in refused["error"]


async def test_a_version_file_gone_or_unreadable_is_a_client_error(
    make_client: Any, upload_dir: Any
) -> None:
    """A version's file removed, or turned into something that cannot be read, after it was
    kept: addressing it is a 404 or a 400 naming the file, never a 500."""
    client = await make_client(keep_versions=10)
    await setup(client)
    await train(client, "first")
    await train(client, "second")
    folder = upload_dir / "models" / "salary" / "versions"
    (first,) = [p for p in folder.iterdir() if p.name.startswith("1-")]
    (second,) = [p for p in folder.iterdir() if p.name.startswith("2-")]
    first.unlink()
    gone = await expect(await client.post("/model/salary@1/predict/0", json={}), 404)
    assert gone == {"error": f"Version file {first.name} is gone"}
    second.unlink()
    second.mkdir()  # read() fails with EISDIR
    unreadable = await expect(await client.post("/model/salary@2/predict/0", json={}), 400)
    assert unreadable["error"].startswith(f"Cannot read version file {second.name}: ")
