"""/list, /configure and /context through HTTP, against the real app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.api.keys import STORE
from tests import fakes
from tests.conftest import MakeClient


@pytest.fixture
async def fake_client(make_client: MakeClient) -> Any:
    fakes.EVENTS.clear()
    return await make_client(registry=fakes.fake_registry())


async def test_list_sources_has_seed_shape(fake_client: Any) -> None:
    response = await fake_client.get("/list/sources")
    assert response.status == 200
    body = await response.json()
    fields = body["fake"]["source"]["config"]["fake"]["config"]
    assert body["fake"]["source"]["plugin"] is None
    assert fields["filename"] == {
        "plugin": {"type": "path", "required": True, "help": "file to read"},
        "config": {},
    }
    assert fields["readwrite"]["plugin"] == {
        "type": "bool",
        "action": "store_true",
        "default": False,
        "help": "allow updates",
    }
    assert fields["mode"]["plugin"]["choices"] == ["fast", "slow"]
    assert fields["tags"]["plugin"]["type"] == "List[str]"
    assert fields["note"]["plugin"]["default"] is None


async def test_list_real_registry_includes_memory(client: Any) -> None:
    body = await (await client.get("/list/sources")).json()
    assert "records" in body["memory"]["source"]["config"]["memory"]["config"]
    for kinds in ("models", "scorers", "modules"):
        response = await client.get(f"/list/{kinds}")
        assert response.status == 200
        assert isinstance(await response.json(), dict)


async def test_list_unknown_kind_is_404(fake_client: Any) -> None:
    response = await fake_client.get("/list/widgets")
    assert response.status == 404
    assert "widgets" in (await response.json())["error"]


async def test_configure_flat_and_nested(fake_client: Any, upload_dir: Path) -> None:
    flat = await fake_client.post(
        "/configure/source/fake/one", json={"filename": "a.csv", "readwrite": True}
    )
    assert (flat.status, await flat.json()) == (200, {"error": None})
    nested = {
        "source": {
            "plugin": None,
            "config": {
                "filename": {"plugin": ["b.csv"], "config": {}},
                "readwrite": {"plugin": [True], "config": {}},
                "tags": {"plugin": ["x", "y"], "config": {}},
            },
        }
    }
    response = await fake_client.post("/configure/source/fake/two", json=nested)
    assert (response.status, await response.json()) == (200, {"error": None})
    assert fakes.EVENTS == ["open a.csv", "open b.csv"]


async def test_configure_errors(fake_client: Any) -> None:
    cases: list[tuple[str, Any, int, str]] = [
        ("/configure/source/non-existant/mydataset", {}, 404, "source non-existant not found"),
        (
            "/configure/source/fake/mydataset",
            {},
            400,
            "FakeSource missing 'filename' from source.mydataset",
        ),
        (
            "/configure/source/fake/x",
            {"filename": "a", "count": "many"},
            400,
            "FakeSource 'count' of source.x must be int, got \"many\"",
        ),
        (
            "/configure/source/fake/x",
            {"filename": "a", "readwrite": 3},
            400,
            "FakeSource 'readwrite' of source.x must be bool, got 3",
        ),
        (
            "/configure/source/fake/x",
            {"filename": "a", "mode": "warp"},
            400,
            "FakeSource 'mode' of source.x must be one of 'fast', 'slow', got 'warp'",
        ),
        (
            "/configure/source/fake/x",
            {"filename": "a", "bogus": 1},
            400,
            "FakeSource has no config field 'bogus' in source.x (fields: filename, readwrite, "
            "count, ratio, mode, tags, note)",
        ),
        ("/configure/source/fake/x", [1, 2], 400, "Request body must be a JSON object, got list"),
        (
            "/configure/widget/fake/x",
            {},
            404,
            "Unknown plugin type 'widget' (use one of: source, model, scorer, module)",
        ),
        (
            "/configure/source/broken/x",
            {"filename": "a"},
            400,
            "source.x: No such file or directory",
        ),
    ]
    for path, body, status, message in cases:
        response = await fake_client.post(path, json=body)
        assert (response.status, await response.json()) == (status, {"error": message}), path


async def test_configure_coerces_strings(fake_client: Any) -> None:
    body = {"filename": "a", "count": "7", "ratio": "0.25", "readwrite": "true", "note": None}
    response = await fake_client.post("/configure/source/fake/x", json=body)
    assert response.status == 200
    await fake_client.get("/context/source/x/cx")
    context = fake_client.app[STORE].source("cx")
    assert isinstance(context, fakes.FakeSourceContext)
    assert context.parent.config.count == 7
    assert context.parent.config.ratio == 0.25
    assert context.parent.config.readwrite is True


@pytest.mark.parametrize(
    "body",
    [b"{bad", b"\xff\xfe", b"[", b"nul", b'{"a": 1', b"1e999999" * 10, b'"x"', b"42"],
)
async def test_malformed_bodies_are_400(fake_client: Any, body: bytes) -> None:
    response = await fake_client.post(
        "/configure/source/fake/x", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert isinstance((await response.json())["error"], str)


@pytest.mark.parametrize("filename", ["../outside.csv", "/etc/passwd", "a\\..\\b", "sub/../../x"])
async def test_configure_paths_stay_in_upload_dir(fake_client: Any, filename: str) -> None:
    response = await fake_client.post("/configure/source/fake/x", json={"filename": filename})
    assert response.status == 400
    assert (await response.json())["error"].startswith("Attempted path traversal")


async def test_configure_path_needs_upload_dir(make_client: MakeClient) -> None:
    client = await make_client(registry=fakes.fake_registry(), upload_dir=None)
    response = await client.post("/configure/source/fake/x", json={"filename": "a.csv"})
    assert response.status == 400
    assert "-upload-dir" in (await response.json())["error"]


async def test_context_lifecycle(fake_client: Any) -> None:
    await fake_client.post("/configure/source/fake/ds", json={"filename": "a.csv"})
    for method in ("GET", "POST"):
        response = await fake_client.request(method, "/context/source/ds/c1")
        assert (response.status, await response.json()) == (200, {"error": None})
    missing = await fake_client.get("/context/source/mydataset/c")
    assert (missing.status, await missing.json()) == (404, {"error": "mydataset source not found"})
    # Reopening a context label closes the previous context.
    assert fakes.EVENTS == ["open a.csv", "ctx open", "ctx open", "ctx close"]

    response = await fake_client.delete("/context/source/c1")
    assert (response.status, await response.json()) == (200, {"error": None})
    response = await fake_client.delete("/context/source/c1")
    assert (response.status, await response.json()) == (404, {"error": "Source not loaded"})


async def test_reconfigure_closes_old_plugin_and_contexts(fake_client: Any) -> None:
    await fake_client.post("/configure/source/fake/ds", json={"filename": "a.csv"})
    await fake_client.get("/context/source/ds/c1")
    await fake_client.post("/configure/source/fake/ds", json={"filename": "b.csv"})
    assert fakes.EVENTS == ["open a.csv", "ctx open", "open b.csv", "ctx close", "close a.csv"]
    response = await fake_client.delete("/configure/source/ds")
    assert (response.status, await response.json()) == (200, {"error": None})
    assert fakes.EVENTS[-1] == "close b.csv"
    response = await fake_client.delete("/configure/source/ds")
    assert (response.status, await response.json()) == (404, {"error": "ds source not found"})


async def test_shutdown_closes_everything(make_client: MakeClient) -> None:
    fakes.EVENTS.clear()
    client = await make_client(registry=fakes.fake_registry())
    await client.post("/configure/source/fake/ds", json={"filename": "a.csv"})
    await client.get("/context/source/ds/c1")
    await client.close()
    assert fakes.EVENTS == ["open a.csv", "ctx open", "ctx close", "close a.csv"]


async def test_plugin_own_validation_names_the_label(client: Any) -> None:
    response = await client.post("/configure/source/memory/x", json={"records": {"k": 5}})
    assert (response.status, await response.json()) == (
        400,
        {"error": "MemorySource config source.x: Record 'k' must be a JSON object"},
    )
