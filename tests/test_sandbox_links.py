"""Links are judged when a file is used, not only when the request arrives (issue 13, point 6).

A local user who can write in the upload dir swaps a directory for a symlink leading out after
the request's path check: uploads, downloads, deletes, csv/json saves and model saves must
never reach outside (service/kernel/safefs.py walks every component with O_NOFOLLOW from a directory
descriptor). The swaps use renameat2(RENAME_EXCHANGE), so the name always exists: either the
real directory or the link, exchanged atomically, in a loop bounded by a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.models_helpers import LINE_MODEL, add_model, add_source, line_records

# Responses a request may give while its directory is being swapped: done, or refused clearly.
CLEAR = {200, 400, 404, 409}
SECRET = b"outside: never to be served, replaced or removed\n"
MAX_SWAPS = 200_000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> None:
    """Swap the names ``a`` and ``b`` atomically (Linux renameat2)."""
    result = _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), str(a))


if not hasattr(_libc, "renameat2"):  # pragma: no cover - glibc before 2.28
    pytest.skip("renameat2 is not available", allow_module_level=True)


def outside_files(outside: Path) -> dict[str, bytes]:
    return {
        p.relative_to(outside).as_posix(): p.read_bytes()
        for p in sorted(outside.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the upload dir, with a file the server must never touch."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "f.csv").write_bytes(SECRET)
    (path / "p.csv").write_bytes(SECRET)
    return path


@contextlib.contextmanager
def swapping(directory: Path, outside: Path) -> Iterator[list[int]]:
    """While inside: a thread exchanges ``directory`` with a symlink to ``outside`` again and
    again (at most MAX_SWAPS times). Leaves the real directory in place; yields [swaps done]."""
    link = directory.with_name(directory.name + ".link")
    link.symlink_to(outside)
    stop = threading.Event()
    done = [0]

    def run() -> None:
        while not stop.is_set() and done[0] < MAX_SWAPS:
            exchange(directory, link)
            done[0] += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
        if directory.is_symlink():
            exchange(directory, link)
        assert directory.is_dir()
        assert not directory.is_symlink()
        link.unlink()


def multipart(content: bytes, name: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=name)
    return form


async def test_uploads_downloads_and_deletes_never_leave_the_upload_dir(
    client: Any, upload_dir: Path, outside: Path
) -> None:
    sub = upload_dir / "sub"
    sub.mkdir()
    statuses: list[int] = []
    served: list[bytes] = []

    async def one(i: int) -> None:
        content = f"name,x\nrow,{i}\n".encode()
        response = await client.post("/service/upload/sub/f.csv", data=multipart(content, "f"))
        statuses.append(response.status)
        download = await client.get("/service/files/sub/f.csv")
        statuses.append(download.status)
        if download.status == 200:
            served.append(await download.read())
        statuses.append((await client.delete("/service/files/sub/f.csv")).status)

    with swapping(sub, outside) as swaps:
        for first in range(0, 240, 4):  # 240 rounds of upload, download, delete; 4 at once
            await asyncio.gather(*(one(i) for i in range(first, first + 4)))
    assert swaps[0] > 0
    assert set(statuses) <= CLEAR, sorted(set(statuses))
    assert 200 in statuses
    assert outside_files(outside) == {"f.csv": SECRET, "p.csv": SECRET}
    assert SECRET not in served
    assert all(body.startswith(b"name,x\nrow,") for body in served)


async def test_csv_saves_never_leave_the_upload_dir(
    client: Any, upload_dir: Path, outside: Path
) -> None:
    sub = upload_dir / "sub"
    sub.mkdir()
    (sub / "p.csv").write_text("name,x\nann,1\n")
    config = {"filename": "sub/p.csv", "readwrite": True}
    assert (await client.post("/configure/source/csv/p", json=config)).status == 200
    statuses: list[int] = []
    with swapping(sub, outside) as swaps:
        for i in range(150):  # an update, then a save as the context closes
            assert (await client.get("/context/source/p/p")).status == 200
            body = {"features": {"name": f"n{i}", "x": i}}
            statuses.append((await client.post(f"/source/p/update/{i % 5}", json=body)).status)
            statuses.append((await client.delete("/context/source/p")).status)
    assert swaps[0] > 0
    assert set(statuses) <= CLEAR, sorted(set(statuses))
    assert outside_files(outside) == {"f.csv": SECRET, "p.csv": SECRET}
    # With the directory back in place the source saves, inside.
    assert (await client.delete("/configure/source/p")).status == 200
    assert "n" in (sub / "p.csv").read_text()


async def test_a_directory_turned_into_a_link_after_configure_is_never_written_through(
    client: Any, upload_dir: Path, outside: Path
) -> None:
    sub = upload_dir / "sub"
    sub.mkdir()
    (sub / "p.csv").write_text("name,x\nann,1\n")
    config = {"filename": "sub/p.csv", "readwrite": True}
    assert (await client.post("/configure/source/csv/p", json=config)).status == 200
    assert (await client.get("/context/source/p/p")).status == 200
    body = {"features": {"name": "bob", "x": 2}}
    assert (await client.post("/source/p/update/1", json=body)).status == 200
    link = upload_dir / "sub.link"
    link.symlink_to(outside)
    exchange(sub, link)  # 'sub' is now a link leading out; the real directory is 'sub.link'
    response = await client.delete("/context/source/p")
    assert response.status == 400
    assert (await response.json())["error"].startswith("Attempted path traversal: 'sub'")
    assert outside_files(outside) == {"f.csv": SECRET, "p.csv": SECRET}
    exchange(sub, link)
    assert (await client.delete("/configure/source/p")).status == 200
    assert (sub / "p.csv").read_text() == "name,x\nann,1\nbob,2\n"


async def test_model_saves_never_leave_the_upload_dir(
    client: Any, upload_dir: Path, outside: Path
) -> None:
    models = upload_dir / "models"
    (models / "m").mkdir(parents=True)
    await add_source(client, "train", line_records(range(4)))
    await add_model(client, "slr", "m", {**LINE_MODEL, "location": "models/m"})
    link = upload_dir / "models.link"
    link.symlink_to(outside)
    exchange(models, link)  # a link now: the training's save must not follow it
    response = await client.post("/model/m/train", json=["train"])
    assert response.status == 400, await response.text()
    assert (await response.json())["error"].endswith(
        "'models' is a symbolic link (or was replaced by one while in use)"
    )
    exchange(models, link)
    link.unlink()
    statuses: list[int] = []
    with swapping(models, outside) as swaps:
        for _ in range(40):
            statuses.append((await client.post("/model/m/train", json=["train"])).status)
    assert swaps[0] > 0
    assert set(statuses) <= CLEAR, sorted(set(statuses))
    assert outside_files(outside) == {"f.csv": SECRET, "p.csv": SECRET}
    assert (await client.post("/model/m/train", json=["train"])).status == 200
    assert [p.name for p in (models / "m").iterdir()] == ["slr.json"]


async def test_sqlite_never_opens_a_database_through_a_link(
    client: Any, upload_dir: Path, outside: Path
) -> None:
    sub = upload_dir / "sub"
    sub.mkdir()
    with sqlite3.connect(sub / "d.db") as db:
        db.execute("CREATE TABLE records (key TEXT PRIMARY KEY, x INTEGER)")
    sqlite3.connect(outside / "d.db").close()  # no table: opening it read-write would make one
    config = {"filename": "sub/d.db", "readwrite": True}
    statuses = []
    with swapping(sub, outside) as swaps:
        for _ in range(60):
            statuses.append((await client.post("/configure/source/sqlite/d", json=config)).status)
    assert swaps[0] > 0
    assert set(statuses) <= CLEAR, sorted(set(statuses))
    with contextlib.closing(sqlite3.connect(outside / "d.db")) as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []
