"""The json and sqlite sources through HTTP: every source route, updates, persistence, paths."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import MakeClient


async def configure(client: Any, plugin: str, ctx: str, config: dict[str, Any]) -> Any:
    response = await client.post(f"/configure/source/{plugin}/{ctx}", json=config)
    if response.status == 200:
        opened = await client.get(f"/context/source/{ctx}/{ctx}")
        assert opened.status == 200, await opened.text()
    return response


async def pages(client: Any, ctx: str, size: int) -> list[list[str]]:
    body = await (await client.get(f"/source/{ctx}/records/{size}")).json()
    out = [list(body["records"])]
    while body["iterkey"] is not None:
        body = await (await client.get(f"/source/{ctx}/records/{body['iterkey']}/{size}")).json()
        out.append(list(body["records"]))
    return out


async def ndjson_keys(client: Any, ctx: str) -> list[str]:
    response = await client.get(
        f"/source/{ctx}/records", headers={"Accept": "application/x-ndjson"}
    )
    assert response.status == 200
    return [orjson.loads(line)["key"] for line in (await response.read()).splitlines()]


def write_json(path: Path, value: Any) -> None:
    path.write_bytes(orjson.dumps(value))


def read_json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


# --- json -----------------------------------------------------------------------------------

LABELLED = {
    "unlabeled": {f"k{i}": {"features": {"i": i, "s": f"v{i}"}} for i in range(6)},
    "test": {"t0": {"features": {"i": -1}}},
}


async def test_json_labelled_layout_every_route(client: Any, upload_dir: Path) -> None:
    write_json(upload_dir / "r.json", LABELLED)
    assert (await configure(client, "json", "j", {"filename": "r.json"})).status == 200
    assert await pages(client, "j", 3) == [["k0", "k1", "k2"], ["k3", "k4", "k5"]]
    assert await ndjson_keys(client, "j") == [f"k{i}" for i in range(6)]
    body = await (await client.get("/source/j/record/k4")).json()
    assert body == {"key": "k4", "features": {"i": 4, "s": "v4"}, "extra": {}}
    assert await (await client.get("/source/j/record/t0")).json() == {"key": "t0"}
    before = (upload_dir / "r.json").read_bytes()
    response = await client.post("/source/j/update/k1", json={"features": {"i": 9}})
    assert (response.status, await response.json()) == (200, {"error": None})  # kept in memory
    body = await (await client.get("/source/j/record/k1")).json()
    assert body["features"] == {"i": 9}
    assert (upload_dir / "r.json").read_bytes() == before
    await configure(client, "json", "t", {"filename": "r.json", "label": "test"})
    assert await pages(client, "t", 10) == [["t0"]]


async def test_json_readwrite_saves_in_the_layout_it_read(client: Any, upload_dir: Path) -> None:
    write_json(upload_dir / "r.json", LABELLED)
    await configure(client, "json", "j", {"filename": "r.json", "readwrite": True})
    await client.post("/source/j/update/k1", json={"features": {"i": 10}, "extra": {"n": 1}})
    await client.post("/source/j/update/new", json={"features": {"i": 99}})
    assert (await client.delete("/configure/source/j")).status == 200
    saved = read_json(upload_dir / "r.json")
    assert saved["test"] == LABELLED["test"]
    assert list(saved["unlabeled"]) == [*(f"k{i}" for i in range(6)), "new"]
    assert saved["unlabeled"]["k1"] == {"key": "k1", "features": {"i": 10}, "extra": {"n": 1}}
    assert sorted(os.listdir(upload_dir)) == ["r.json"]


@pytest.mark.parametrize(
    "content",
    [
        [{"key": "a", "features": {"x": 1}}, {"key": 2, "features": {"x": 2}}],
        {"a": {"features": {"x": 1}}, "2": {"features": {"x": 2}}},
    ],
)
async def test_json_list_and_object_layouts(client: Any, upload_dir: Path, content: Any) -> None:
    write_json(upload_dir / "r.json", content)
    await configure(client, "json", "j", {"filename": "r.json", "readwrite": True})
    assert await pages(client, "j", 1) == [["a"], ["2"]]
    await client.post("/source/j/update/2", json={"features": {"x": 20}})
    await client.delete("/context/source/j")
    saved = read_json(upload_dir / "r.json")
    assert type(saved) is type(content)
    if isinstance(saved, list):
        assert saved[1] == {"key": "2", "features": {"x": 20}, "extra": {}}
    else:
        assert saved["2"]["features"] == {"x": 20}


async def test_json_new_file_and_bad_files(client: Any, upload_dir: Path) -> None:
    await configure(client, "json", "n", {"filename": "new.json", "readwrite": True})
    await client.post("/source/n/update/a", json={"features": {"x": 1}})
    await client.delete("/context/source/n")
    assert read_json(upload_dir / "new.json") == {
        "unlabeled": {"a": {"key": "a", "features": {"x": 1}, "extra": {}}}
    }
    for name, data in [
        ("bad.json", b"{nope"),
        ("scalar.json", b"3"),
        ("nokey.json", b'[{"features": {}}]'),
        ("badrec.json", b'{"unlabeled": {"a": {"features": 3}}}'),
    ]:
        (upload_dir / name).write_bytes(data)
        response = await configure(client, "json", "b", {"filename": name})
        assert response.status == 400, name
        assert isinstance((await response.json())["error"], str)


# --- sqlite ---------------------------------------------------------------------------------


def make_db(path: Path, rows: int = 5) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE people (id TEXT PRIMARY KEY, years INTEGER, trust REAL, note)")
        db.executemany(
            "INSERT INTO people VALUES (?, ?, ?, ?)",
            [(f"p{i}", i, i / 2, None if i % 2 else "x") for i in range(rows)],
        )
    # sqlite3's context manager commits but does not close.
    sqlite3.connect(path).close()


def db_rows(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return list(db.execute("SELECT * FROM people ORDER BY rowid"))
    finally:
        db.close()


SQLITE = {"filename": "p.db", "table": "people", "key": "id"}


async def test_sqlite_every_route(client: Any, upload_dir: Path) -> None:
    make_db(upload_dir / "p.db", 7)
    assert (await configure(client, "sqlite", "q", SQLITE)).status == 200
    assert await pages(client, "q", 7) == [[f"p{i}" for i in range(7)]]
    assert await pages(client, "q", 3) == [["p0", "p1", "p2"], ["p3", "p4", "p5"], ["p6"]]
    assert await ndjson_keys(client, "q") == [f"p{i}" for i in range(7)]
    assert await pages(client, "q", 10**30) == [[f"p{i}" for i in range(7)]]
    body = await (await client.get("/source/q/record/p2")).json()
    assert body == {
        "key": "p2",
        "features": {"id": "p2", "years": 2, "trust": 1.0, "note": "x"},
        "extra": {},
    }
    assert (await (await client.get("/source/q/record/p1")).json())["features"] == {
        "id": "p1",
        "years": 1,
        "trust": 0.5,
    }
    assert await (await client.get("/source/q/record/zz")).json() == {"key": "zz"}
    response = await client.post("/source/q/update/p1", json={"features": {"years": 9}})
    assert response.status == 400
    assert "read-only" in (await response.json())["error"]


async def test_sqlite_upserts_commit_at_once(client: Any, upload_dir: Path) -> None:
    make_db(upload_dir / "p.db", 3)
    await configure(client, "sqlite", "q", {**SQLITE, "readwrite": True})
    response = await client.post("/source/q/update/p1", json={"features": {"years": 30}})
    assert (response.status, await response.json()) == (200, {"error": None})
    response = await client.post(
        "/source/q/update/new", json={"features": {"years": 1, "city": "Oslo", "tags": [1, 2]}}
    )
    assert response.status == 200
    # Committed: another connection sees it while the source is still open.
    assert db_rows(upload_dir / "p.db") == [
        ("p0", 0, 0.0, "x", None, None),
        ("p1", 30, None, None, None, None),
        ("p2", 2, 1.0, "x", None, None),
        ("new", 1, None, None, "Oslo", "[1,2]"),
    ]
    assert await pages(client, "q", 2) == [["p0", "p1"], ["p2", "new"]]
    body = await (await client.get("/source/q/record/new")).json()
    assert body["features"] == {"id": "new", "years": 1, "city": "Oslo", "tags": "[1,2]"}


async def test_sqlite_creates_a_missing_table(client: Any, upload_dir: Path) -> None:
    await configure(client, "sqlite", "q", {"filename": "new.db", "readwrite": True})
    assert await pages(client, "q", 5) == [[]]
    await client.post("/source/q/update/a", json={"features": {"x": 1.5}})
    assert (await (await client.get("/source/q/record/a")).json())["features"] == {
        "key": "a",
        "x": 1.5,
    }


async def test_sqlite_bad_configs_are_400(client: Any, upload_dir: Path) -> None:
    make_db(upload_dir / "p.db")
    (upload_dir / "junk.db").write_bytes(b"not a database at all" * 100)
    for config, words in [
        ({**SQLITE, "table": "nope"}, "no table 'nope' (tables: people)"),
        ({**SQLITE, "key": "nope"}, "no key column 'nope'"),
        ({**SQLITE, "filename": "missing.db"}, "unable to open"),
        ({**SQLITE, "filename": "junk.db"}, "not a database"),
    ]:
        response = await configure(client, "sqlite", "b", config)
        assert response.status == 400, config
        assert words in (await response.json())["error"]


async def test_sqlite_table_and_column_names_are_quoted(client: Any, upload_dir: Path) -> None:
    with sqlite3.connect(upload_dir / "odd.db") as db:
        db.execute('CREATE TABLE "my ""table""" ("the key" TEXT, "v; DROP" INTEGER)')
        db.execute('INSERT INTO "my ""table""" VALUES (\'a\', 1)')
    sqlite3.connect(upload_dir / "odd.db").close()
    config = {"filename": "odd.db", "table": 'my "table"', "key": "the key", "readwrite": True}
    assert (await configure(client, "sqlite", "o", config)).status == 200
    await client.post("/source/o/update/a", json={"features": {"v; DROP": 2}})
    body = await (await client.get("/source/o/record/a")).json()
    assert body["features"] == {"the key": "a", "v; DROP": 2}


# --- files stay inside the upload dir, for every file-backed source -------------------------


@pytest.mark.parametrize("plugin", ["json", "sqlite"])
@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "link", "../data-evil/x"])
async def test_paths_are_confined(client: Any, upload_dir: Path, plugin: str, name: str) -> None:
    (upload_dir.parent / "x").write_bytes(b"{}")
    (upload_dir.parent / "data-evil").mkdir()
    (upload_dir.parent / "data-evil" / "x").write_bytes(b"{}")
    os.symlink(upload_dir.parent / "x", upload_dir / "link")
    response = await configure(client, plugin, "p", {"filename": name, "readwrite": True})
    assert response.status == 400
    assert "Attempted path traversal" in (await response.json())["error"]


@pytest.mark.parametrize("plugin", ["json", "sqlite"])
async def test_file_sources_need_an_upload_dir(make_client: MakeClient, plugin: str) -> None:
    client = await make_client(upload_dir=None)
    response = await client.post(f"/configure/source/{plugin}/p", json={"filename": "x"})
    assert response.status == 400
    assert "-upload-dir" in (await response.json())["error"]


async def test_every_builtin_source_is_listed(client: Any) -> None:
    body = await (await client.get("/list/sources")).json()
    assert {"memory", "csv", "json", "sqlite"} <= set(body)
    csv_fields = body["csv"]["source"]["config"]["csv"]["config"]
    assert {"filename", "readwrite", "allowempty", "label", "key"} <= set(csv_fields)
    assert csv_fields["label"]["plugin"]["default"] == "unlabeled"
    assert csv_fields["key"]["plugin"]["default"] is None
    assert csv_fields["readwrite"]["plugin"]["action"] == "store_true"


async def test_sqlite_locked_database_is_503_then_recovers(client: Any, upload_dir: Path) -> None:
    make_db(upload_dir / "p.db", 3)
    config = {**SQLITE, "readwrite": True, "timeout": 0.05}
    assert (await configure(client, "sqlite", "q", config)).status == 200
    other = sqlite3.connect(upload_dir / "p.db", isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        response = await client.post("/source/q/update/p1", json={"features": {"years": 9}})
        assert response.status == 503
        assert "locked" in (await response.json())["error"]
        response = await client.get("/source/q/record/p1")
        assert response.status == 503
        other.execute("ROLLBACK")
    finally:
        other.close()
    response = await client.post("/source/q/update/p1", json={"features": {"years": 9}})
    assert (response.status, await response.json()) == (200, {"error": None})
    assert (await (await client.get("/source/q/record/p1")).json())["features"]["years"] == 9
