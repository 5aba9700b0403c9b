"""The csv source through HTTP: typed values, keys, labels, paging, updates and saving."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from service.plugins.sources import filebacked
from tests.conftest import MakeClient
from tests.live import live_server

TYPED = "name,Years,Trust,zip,empty\nann,3,0.5,007,\nbob,-2,1e3,12,x\n"


async def configure(client: Any, ctx: str, config: dict[str, Any]) -> Any:
    response = await client.post(f"/configure/source/csv/{ctx}", json=config)
    if response.status == 200:
        opened = await client.get(f"/context/source/{ctx}/{ctx}")
        assert opened.status == 200, await opened.text()
    return response


async def records_of(client: Any, ctx: str, size: int = 1000) -> dict[str, Any]:
    found: dict[str, Any] = {}
    body = await (await client.get(f"/source/{ctx}/records/{size}")).json()
    found.update(body["records"])
    while body["iterkey"] is not None:
        body = await (await client.get(f"/source/{ctx}/records/{body['iterkey']}/{size}")).json()
        found.update(body["records"])
    return found


def csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as file:
        return list(csv.reader(file))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def test_values_are_typed_and_empty_cells_dropped(client: Any, upload_dir: Path) -> None:
    write(upload_dir / "t.csv", TYPED)
    assert (await configure(client, "t", {"filename": "t.csv"})).status == 200
    records = await records_of(client, "t")
    assert records == {
        "0": {
            "key": "0",
            "features": {"name": "ann", "Years": 3, "Trust": 0.5, "zip": "007"},
            "extra": {},
        },
        "1": {
            "key": "1",
            "features": {"name": "bob", "Years": -2, "Trust": 1000.0, "zip": 12, "empty": "x"},
            "extra": {},
        },
    }
    body = await (await client.get("/source/t/record/1")).json()
    assert body == records["1"]
    assert await (await client.get("/source/t/record/2")).json() == {"key": "2"}


async def test_allowempty_keeps_empty_cells(client: Any, upload_dir: Path) -> None:
    write(upload_dir / "t.csv", TYPED)
    await configure(client, "t", {"filename": "t.csv", "allowempty": True})
    body = await (await client.get("/source/t/record/0")).json()
    assert body["features"]["empty"] == ""


async def test_key_column(client: Any, upload_dir: Path) -> None:
    write(upload_dir / "t.csv", TYPED)
    await configure(client, "t", {"filename": "t.csv", "key": "name"})
    assert list(await records_of(client, "t")) == ["ann", "bob"]
    body = await (await client.get("/source/t/record/bob")).json()
    assert body["features"]["Years"] == -2
    response = await configure(client, "bad", {"filename": "t.csv", "key": "id"})
    assert response.status == 400
    error = (await response.json())["error"]
    assert "'id'" in error
    assert "name, Years" in error


async def test_duplicate_keys_keep_the_first_place_and_the_last_values(
    client: Any, upload_dir: Path
) -> None:
    write(upload_dir / "d.csv", "id,v\na,1\nb,2\na,3\n")
    await configure(client, "d", {"filename": "d.csv", "key": "id"})
    records = await records_of(client, "d")
    assert list(records) == ["a", "b"]
    assert records["a"]["features"]["v"] == 3


async def test_label_selects_rows(client: Any, upload_dir: Path) -> None:
    write(upload_dir / "l.csv", "x,label\n1,train\n2,test\n3,train\n")
    await configure(client, "l", {"filename": "l.csv", "label": "train"})
    records = await records_of(client, "l")
    assert [r["features"] for r in records.values()] == [{"x": 1}, {"x": 3}]
    await configure(client, "none", {"filename": "l.csv"})
    assert await records_of(client, "none") == {}


async def test_paging_and_streaming_a_larger_file(
    client: Any, upload_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ["id,a,b"] + [f"k{i},{i},{i / 4}" for i in range(2500)]
    write(upload_dir / "big.csv", "\n".join(lines) + "\n")
    await configure(client, "b", {"filename": "big.csv", "key": "id"})
    pages = []
    body = await (await client.get("/source/b/records/500")).json()
    pages.append(list(body["records"]))
    while body["iterkey"] is not None:
        body = await (await client.get(f"/source/b/records/{body['iterkey']}/500")).json()
        pages.append(list(body["records"]))
    assert len(pages) == 5  # exactly at the boundary: the fifth page carries null
    assert [key for page in pages for key in page] == [f"k{i}" for i in range(2500)]
    # Chunks too big to read on the event loop are read in a worker: same answer.
    monkeypatch.setattr(filebacked, "INLINE_READ_BYTES", 0)
    assert list(await records_of(client, "b", 700)) == [f"k{i}" for i in range(2500)]
    response = await client.get("/source/b/records", headers={"Accept": "application/x-ndjson"})
    lines_out = (await response.read()).splitlines()
    assert len(lines_out) == 2500
    assert orjson.loads(lines_out[7]) == {
        "key": "k7",
        "features": {"id": "k7", "a": 7, "b": 1.75},
        "extra": {},
    }


async def test_updates_without_readwrite_stay_in_memory(client: Any, upload_dir: Path) -> None:
    write(upload_dir / "t.csv", TYPED)
    await configure(client, "t", {"filename": "t.csv"})
    response = await client.post("/source/t/update/0", json={"features": {"Years": 9}})
    assert (response.status, await response.json()) == (200, {"error": None})
    response = await client.post("/source/t/update/new", json={"features": {"Years": 1}})
    assert (response.status, await response.json()) == (200, {"error": None})
    assert (await (await client.get("/source/t/record/0")).json())["features"] == {"Years": 9}
    assert list(await records_of(client, "t", 2)) == ["0", "1", "new"]
    assert (await client.get("/context/source/t/t")).status == 200  # closes the old context
    assert (await client.delete("/configure/source/t")).status == 200  # and the source
    assert (upload_dir / "t.csv").read_text() == TYPED


async def test_updates_are_saved_when_the_context_closes(client: Any, upload_dir: Path) -> None:
    write(upload_dir / "t.csv", TYPED)
    await configure(client, "t", {"filename": "t.csv", "readwrite": True, "key": "name"})
    response = await client.post("/source/t/update/ann", json={"features": {"Years": 30}})
    assert (response.status, await response.json()) == (200, {"error": None})
    await client.post("/source/t/update/cy", json={"features": {"Years": 1, "City": "Oslo"}})
    assert (await (await client.get("/source/t/record/ann")).json())["features"] == {"Years": 30}
    assert (upload_dir / "t.csv").read_text() == TYPED  # not yet: saved on close
    assert (await client.delete("/context/source/t")).status == 200
    rows = csv_rows(upload_dir / "t.csv")
    assert rows[0] == ["name", "Years", "Trust", "zip", "empty", "City"]
    assert rows[1:] == [
        ["ann", "30", "", "", "", ""],
        ["bob", "-2", "1000.0", "12", "x", ""],
        ["cy", "1", "", "", "", "Oslo"],
    ]
    assert sorted(os.listdir(upload_dir)) == ["t.csv"]  # no temporary file left
    # Read back as it was served.
    await configure(client, "again", {"filename": "t.csv", "key": "name"})
    records = await records_of(client, "again")
    assert records["cy"]["features"] == {"name": "cy", "Years": 1, "City": "Oslo"}
    assert records["bob"]["features"]["Trust"] == 1000.0


async def test_saving_keeps_rows_of_other_labels(client: Any, upload_dir: Path) -> None:
    write(upload_dir / "l.csv", "x,label\n1,train\n2,test\n3,train\n")
    await configure(client, "l", {"filename": "l.csv", "label": "train", "readwrite": True})
    await client.post("/source/l/update/0", json={"features": {"x": 10}})
    assert (await client.delete("/configure/source/l")).status == 200
    rows = csv_rows(upload_dir / "l.csv")
    assert rows == [["x", "label"], ["2", "test"], ["10", "train"], ["3", "train"]]


async def test_readwrite_creates_a_missing_file(client: Any, upload_dir: Path) -> None:
    assert (await configure(client, "n", {"filename": "new.csv", "readwrite": True})).status == 200
    assert await records_of(client, "n") == {}
    await client.post("/source/n/update/0", json={"features": {"a": 1}})
    await client.delete("/context/source/n")
    assert (upload_dir / "new.csv").read_bytes() == b"a\n1\n"


async def test_missing_or_invalid_file_is_400(client: Any, upload_dir: Path) -> None:
    response = await configure(client, "m", {"filename": "missing.csv"})
    assert response.status == 400
    assert "No such file" in (await response.json())["error"]
    (upload_dir / "bin.csv").write_bytes(b"a,b\n\xff\xfe,1\n")
    response = await configure(client, "m", {"filename": "bin.csv"})
    assert response.status == 400
    (upload_dir / "huge.csv").write_bytes(b'a,b\n1,"' + b"x" * 200_000 + b'"\n')
    response = await configure(client, "m", {"filename": "huge.csv"})
    assert response.status == 400
    assert "not valid CSV" in (await response.json())["error"]
    response = await configure(client, "m", {"filename": "bin.csv", "delimiter": ";;"})
    assert response.status == 400
    assert "delimiter" in (await response.json())["error"]


async def test_concurrent_updates_all_land_in_a_valid_file(client: Any, upload_dir: Path) -> None:
    write(upload_dir / "c.csv", "id,n\n")
    await configure(client, "c", {"filename": "c.csv", "key": "id", "readwrite": True})
    # With nothing racing them, every one of 30 concurrent updates is accepted.
    calm = await asyncio.gather(
        *(client.post(f"/source/c/update/r{i}", json={"features": {"n": i}}) for i in range(30))
    )
    assert [(r.status, await r.json()) for r in calm] == [(200, {"error": None})] * 30
    responses = await asyncio.gather(
        *(
            client.post(f"/source/c/update/r{i}", json={"features": {"n": i}})
            for i in range(30, 90)
        ),
        *(client.delete("/context/source/c") for _ in range(1)),
    )
    # Racing the context's close, an update is accepted or told the context is gone.
    for r in responses[:60]:
        assert (r.status, await r.json()) in (
            (200, {"error": None}),
            (404, {"error": "Source not loaded"}),
        )
    # Whatever raced the close, the file is whole and every accepted update is in it or in
    # the still-open plugin; close the plugin to save the rest.
    await client.delete("/configure/source/c")
    header, *lines = csv_rows(upload_dir / "c.csv")
    rows = [dict(zip(header, line, strict=True)) for line in lines]
    accepted = {f"r{i}" for i in range(30)}
    accepted |= {f"r{30 + i}" for i, r in enumerate(responses[:60]) if r.status == 200}
    assert {row["id"] for row in rows} == accepted
    assert all(int(row["n"]) == int(row["id"][1:]) for row in rows)


async def test_delimiter(client: Any, upload_dir: Path) -> None:
    write(upload_dir / "s.csv", "a;b\n1;x y\n")
    await configure(client, "s", {"filename": "s.csv", "delimiter": ";"})
    body = await (await client.get("/source/s/record/0")).json()
    assert body["features"] == {"a": 1, "b": "x y"}


# --- files are confined to the upload dir ---------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../outside.csv", "/etc/passwd", "link.csv", "../data-evil/x.csv", "sub/../../x.csv"]
)
async def test_paths_outside_the_upload_dir_are_refused(
    client: Any, upload_dir: Path, name: str
) -> None:
    outside = upload_dir.parent
    write(outside / "outside.csv", "a\n1\n")
    (outside / "data-evil").mkdir()
    write(outside / "data-evil" / "x.csv", "a\n1\n")
    (upload_dir / "sub").mkdir()
    os.symlink(outside / "outside.csv", upload_dir / "link.csv")
    response = await configure(client, "p", {"filename": name})
    assert response.status == 400
    assert "Attempted path traversal" in (await response.json())["error"]
    response = await client.get("/source/p/records/10")
    assert (response.status, await response.json()) == (404, {"error": "Source not loaded"})


async def test_symlink_inside_the_upload_dir_is_fine(client: Any, upload_dir: Path) -> None:
    (upload_dir / "sub").mkdir()
    write(upload_dir / "sub" / "real.csv", "a\n1\n")
    os.symlink(upload_dir / "sub" / "real.csv", upload_dir / "alias.csv")
    assert (await configure(client, "p", {"filename": "alias.csv"})).status == 200
    assert (await configure(client, "q", {"filename": "sub/real.csv"})).status == 200


async def test_without_upload_dir_csv_is_refused(make_client: MakeClient, tmp_path: Path) -> None:
    client = await make_client(upload_dir=None)
    write(tmp_path / "t.csv", TYPED)
    for name in ("t.csv", str(tmp_path / "t.csv")):
        response = await client.post("/configure/source/csv/t", json={"filename": name})
        assert response.status == 400
        assert "-upload-dir" in (await response.json())["error"]


# --- the real server: preloads may name any path; updates are saved at shutdown -------------


def test_preloaded_readwrite_csv_is_saved_at_shutdown(tmp_path: Path) -> None:
    data = write(tmp_path / "people.csv", "id,Years\na,1\nb,2\n")
    args = ("-insecure", "-sources", "p=csv", "-source-p-filename", str(data))
    args += ("-source-p-key", "id", "-source-p-readwrite")
    with live_server(*args, cwd=tmp_path) as server:
        response = requests.post(
            f"{server.url}/source/p/update/b", json={"features": {"Years": 20}}, timeout=10
        )
        assert response.json() == {"error": None}
        body = requests.get(f"{server.url}/source/p/records/1", timeout=10).json()
        assert list(body["records"]) == ["a"]
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    assert data.read_bytes() == b"id,Years\na,1\nb,20\n"


async def test_updates_keep_source_order_across_pages(client: Any, upload_dir: Path) -> None:
    write(upload_dir / "n.csv", "v\n" + "".join(f"{i}\n" for i in range(10)))
    await configure(client, "n", {"filename": "n.csv", "readwrite": True})
    for key, value in [("3", 30), ("7", 70), ("10", 100), ("x", -1), ("12", 120), ("x", -2)]:
        response = await client.post(f"/source/n/update/{key}", json={"features": {"v": value}})
        assert response.status == 200
    expected = [(str(i), i) for i in range(10)] + [("10", 100), ("x", -2), ("12", 120)]
    expected[3], expected[7] = ("3", 30), ("7", 70)
    for size in (1, 4, 13, 100):
        records = await records_of(client, "n", size)
        assert [(k, r["features"]["v"]) for k, r in records.items()] == expected
    for key, value in expected:
        body = await (await client.get(f"/source/n/record/{key}")).json()
        assert body["features"] == {"v": value}
    for missing in ("11", "13", "03", "y"):
        assert await (await client.get(f"/source/n/record/{missing}")).json() == {"key": missing}
