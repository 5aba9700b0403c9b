"""/service/upload and /service/files through HTTP, against the real app factory.

Traversal attempts go over a raw socket: an HTTP client library would normalise ``..`` and
percent-escapes before sending, and the point is what a hostile client can make reach the
server.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from service.engine.uploads import is_temporary
from tests.conftest import MakeClient
from tests.helpers import until
from tests.live import live_server

BOUNDARY = "test-boundary-7f3a"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
CSV = b"Years,Salary\n1,20\n2,30\n"


def multipart(content: bytes, *, field: str = "file") -> bytes:
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="upload.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def form(content: bytes, name: str = "a.csv") -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("file", content, filename=name, content_type="text/csv")
    return data


async def raw_request(
    client: Any, method: str, raw_path: str, body: bytes = b"", content_type: str = MULTIPART
) -> tuple[int, Any]:
    """Send ``raw_path`` byte for byte, as a hostile client could."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    head = (
        f"{method} {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = response.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (symlinks not followed) with its content."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def temporaries(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if is_temporary(path.name)]


async def test_upload_list_download_delete(client: Any, upload_dir: Path) -> None:
    (upload_dir / "sub").mkdir()
    response = await client.post("/service/upload/sub/a.csv", data=form(CSV))
    assert (response.status, await response.json()) == (200, {"error": None})
    assert (upload_dir / "sub" / "a.csv").read_bytes() == CSV
    await client.post("/service/upload/b.txt", data=form(b"hello"))

    response = await client.get("/service/files")
    assert response.status == 200
    assert await response.json() == [
        {"filename": "b.txt", "size": 5},
        {"filename": "sub/a.csv", "size": len(CSV)},
    ]

    response = await client.get("/service/files/sub/a.csv")
    assert response.status == 200
    assert await response.read() == CSV
    assert "a.csv" in response.headers["Content-Disposition"]

    response = await client.delete("/service/files/sub/a.csv")
    assert (response.status, await response.json()) == (200, {"error": None})
    assert not (upload_dir / "sub" / "a.csv").exists()
    assert (upload_dir / "sub").is_dir()
    response = await client.get("/service/files/sub/a.csv")
    assert (response.status, await response.json()) == (404, {"error": "File not found: sub/a.csv"})
    response = await client.delete("/service/files/sub/a.csv")
    assert (response.status, await response.json()) == (404, {"error": "File not found: sub/a.csv"})


async def test_listing_details_adds_modified(client: Any, upload_dir: Path) -> None:
    """?details=1 adds each file's last change (UTC, to the second); the plain listing is as
    it always was."""
    await client.post("/service/upload/a.csv", data=form(CSV))
    stamp = 1_700_000_000  # 2023-11-14T22:13:20Z
    os.utime(upload_dir / "a.csv", (stamp, stamp))
    response = await client.get("/service/files?details=1")
    assert response.status == 200
    assert await response.json() == [
        {"filename": "a.csv", "size": len(CSV), "modified": "2023-11-14T22:13:20Z"}
    ]
    plain = await (await client.get("/service/files?details=0")).json()
    assert plain == [{"filename": "a.csv", "size": len(CSV)}]
    response = await client.get("/service/files?details=maybe")
    assert (response.status, await response.json()) == (
        400,
        {"error": "details must be true or false, got 'maybe'"},
    )


async def test_reupload_replaces_and_overwrite_false_refuses(client: Any, upload_dir: Path) -> None:
    assert (await client.post("/service/upload/a.csv", data=form(b"old"))).status == 200
    response = await client.post("/service/upload/a.csv", data=form(b"new"))
    assert (response.status, await response.json()) == (200, {"error": None})
    assert (upload_dir / "a.csv").read_bytes() == b"new"

    response = await client.post("/service/upload/a.csv?overwrite=false", data=form(b"newer"))
    assert response.status == 409
    assert (await response.json())["error"].startswith("File exists: a.csv")
    assert tree(upload_dir) == {"a.csv": b"new"}
    response = await client.post("/service/upload/a.csv?overwrite=maybe", data=form(b"x"))
    assert response.status == 400


async def test_without_upload_dir_is_501(make_client: MakeClient) -> None:
    client = await make_client(upload_dir=None)
    response = await client.post("/service/upload/a.csv", data=form(CSV))
    assert (response.status, await response.json()) == (501, {"error": "Uploads not allowed"})
    response = await client.get("/service/files")
    assert (response.status, await response.json()) == (501, {"error": "File listing not allowed"})
    assert (await client.get("/service/files/a.csv")).status == 501
    assert (await client.delete("/service/files/a.csv")).status == 501


async def test_missing_file_field(client: Any, upload_dir: Path) -> None:
    data = aiohttp.FormData()
    data.add_field("other", b"x", filename="a.csv")
    response = await client.post("/service/upload/a.csv", data=data)
    assert (response.status, await response.json()) == (400, {"error": "Missing 'file' field"})
    response = await client.post("/service/upload/a.csv", data=b"not multipart")
    assert (response.status, await response.json()) == (400, {"error": "Missing 'file' field"})
    assert tree(upload_dir) == {}


async def test_file_field_after_other_fields(client: Any, upload_dir: Path) -> None:
    data = aiohttp.FormData()
    data.add_field("comment", "the salaries")
    data.add_field("file", CSV, filename="whatever.csv")
    assert (await client.post("/service/upload/a.csv", data=data)).status == 200
    assert tree(upload_dir) == {"a.csv": CSV}


async def test_malformed_multipart_is_400(client: Any, upload_dir: Path) -> None:
    status, body = await raw_request(
        client, "POST", "/service/upload/a.csv", b"garbage without boundaries"
    )
    assert status == 400
    assert body["error"].startswith("Malformed multipart body: Could not find starting boundary")
    assert tree(upload_dir) == {}


async def test_missing_directory_is_not_created(client: Any, upload_dir: Path) -> None:
    response = await client.post("/service/upload/nodir/a.csv", data=form(CSV))
    assert response.status == 400
    assert (await response.json())["error"] == (
        "Directory 'nodir' does not exist in the upload directory "
        "(the server creates no directories)"
    )
    assert not (upload_dir / "nodir").exists()


async def test_directory_is_not_a_file_name(client: Any, upload_dir: Path) -> None:
    (upload_dir / "sub").mkdir()
    for path in ("/service/upload/sub", "/service/upload/", "/service/upload/."):
        response = await client.post(path, data=form(CSV))
        assert response.status == 400, path
    response = await client.post("/service/upload/sub", data=form(CSV))
    assert await response.json() == {"error": "'sub' is a directory, not a file name"}
    for method in ("GET", "DELETE"):
        response = await client.request(method, "/service/files/sub")
        assert (response.status, await response.json()) == (
            404,
            {"error": "File not found: sub"},
        ), method
    assert (upload_dir / "sub").is_dir()


TRAVERSALS = [
    "../outside.csv",
    "%2e%2e/outside.csv",
    "%2E%2E%2Foutside.csv",
    "sub/../../outside.csv",
    "..%2Foutside.csv",
    "%2Ftmp%2Foutside.csv",
    "/tmp/outside.csv",
    "..%5Coutside.csv",
    "sub%5C..%5C..%5Coutside.csv",
    "a%00.csv",
    "link-out/outside.csv",
    "../data-evil/outside.csv",
    "sub/../../data-evil/outside.csv",
]


@pytest.fixture
def hostile_layout(tmp_path: Path, upload_dir: Path) -> Path:
    """A sibling sharing the upload dir's prefix and a symlink inside that points outside."""
    (upload_dir / "sub").mkdir()
    (tmp_path / "data-evil").mkdir()
    (tmp_path / "data-evil" / "outside.csv").write_bytes(b"secret")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "outside.csv").write_bytes(b"secret")
    (upload_dir / "link-out").symlink_to(tmp_path / "elsewhere")
    return tmp_path


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_upload_traversal_is_refused(client: Any, hostile_layout: Path, path: str) -> None:
    before = tree(hostile_layout)
    status, body = await raw_request(client, "POST", f"/service/upload/{path}", multipart(CSV))
    assert (status, body) == (400, {"error": "Attempted path traversal"})
    assert tree(hostile_layout) == before


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_files_traversal_is_refused(
    client: Any, hostile_layout: Path, path: str, method: str
) -> None:
    before = tree(hostile_layout)
    status, body = await raw_request(client, method, f"/service/files/{path}")
    assert (status, body) == (400, {"error": "Attempted path traversal"})
    assert tree(hostile_layout) == before


async def test_listing_stays_inside(client: Any, hostile_layout: Path, upload_dir: Path) -> None:
    (upload_dir / "sub" / "deep").mkdir()
    (upload_dir / "sub" / "deep" / "x.bin").write_bytes(b"12345")
    (upload_dir / "README").write_bytes(b"no dot in the name")
    (upload_dir / "link-in.csv").symlink_to(upload_dir / "README")
    (upload_dir / "link-file-out").symlink_to(hostile_layout / "elsewhere" / "outside.csv")
    (upload_dir / "loop").symlink_to(upload_dir)
    listing = await (await client.get("/service/files")).json()
    assert listing == [
        {"filename": "README", "size": 18},
        {"filename": "link-in.csv", "size": 18},
        {"filename": "sub/deep/x.bin", "size": 5},
    ]


async def test_size_cap(make_client: MakeClient, upload_dir: Path) -> None:
    client = await make_client(upload_max_size=1000)
    response = await client.post("/service/upload/exact.bin", data=form(b"x" * 1000))
    assert response.status == 200
    response = await client.post("/service/upload/big.bin", data=form(b"x" * 1001))
    assert response.status == 413
    assert (await response.json())["error"] == "Upload larger than 1000 bytes (-upload-max-size)"
    assert tree(upload_dir) == {"exact.bin": b"x" * 1000}


async def test_size_cap_without_content_length(make_client: MakeClient, upload_dir: Path) -> None:
    client = await make_client(upload_max_size=1000)

    async def body() -> AsyncIterator[bytes]:
        payload = multipart(b"y" * 5000)
        for start in range(0, len(payload), 512):
            yield payload[start : start + 512]

    response = await client.post(
        "/service/upload/big.bin", data=body(), headers={"Content-Type": MULTIPART}
    )
    assert response.status == 413
    assert tree(upload_dir) == {}


async def test_declared_length_over_cap_is_refused_before_reading(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client(upload_max_size=1000)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /service/upload/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Content-Type: {MULTIPART}\r\nContent-Length: {10**9}\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"413"
    assert tree(upload_dir) == {}


async def start_partial_upload(
    client: Any, path: str, content: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send headers promising ``content`` plus part of the body, and keep the connection open."""
    body = multipart(content)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MULTIPART}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[: len(body) // 2]
    )
    await writer.drain()
    return reader, writer


async def test_aborted_upload_leaves_nothing(client: Any, upload_dir: Path) -> None:
    (upload_dir / "a.csv").write_bytes(b"old")
    _, writer = await start_partial_upload(client, "/service/upload/a.csv", b"z" * 2_000_000)
    await until(lambda: temporaries(upload_dir), "the upload is being received")

    listing = await (await client.get("/service/files")).json()
    assert listing == [{"filename": "a.csv", "size": 3}], "in-progress uploads are not listed"
    temp = temporaries(upload_dir)[0].name
    assert (await client.get(f"/service/files/{temp}")).status == 404
    assert (await client.post(f"/service/upload/{temp}", data=form(b"x"))).status == 400

    writer.transport.abort()
    await until(lambda: not temporaries(upload_dir), "the partial file is removed")
    assert tree(upload_dir) == {"a.csv": b"old"}


async def test_stalled_upload_is_abandoned(make_client: MakeClient, upload_dir: Path) -> None:
    """A client that stops sending without closing (a dropped network) holds nothing for long."""
    client = await make_client(upload_idle_timeout=0.2)
    reader, writer = await start_partial_upload(client, "/service/upload/a.csv", b"z" * 100_000)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    writer.transport.abort()
    assert head.split()[1] == b"408"
    assert json.loads(body) == {"error": "Upload received nothing for 0.2 s (-upload-idle-timeout)"}
    assert tree(upload_dir) == {}


async def test_replacement_is_atomic(client: Any, upload_dir: Path) -> None:
    (upload_dir / "a.csv").write_bytes(b"old")
    content = b"n" * 2_000_000
    body = multipart(content)
    reader, writer = await start_partial_upload(client, "/service/upload/a.csv", content)
    await until(lambda: temporaries(upload_dir), "the upload is being received")
    response = await client.get("/service/files/a.csv")
    assert await response.read() == b"old", "readers see the old file until the new one is whole"

    writer.write(body[len(body) // 2 :])
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"200"
    assert tree(upload_dir) == {"a.csv": content}


def test_cli_upload_options(tmp_path: Path) -> None:
    """-upload-dir and -upload-max-size through the real CLI, with an ordinary HTTP client."""
    with live_server(
        "-insecure", "-upload-dir", "data", "-upload-max-size", "10", cwd=tmp_path
    ) as server:
        small = requests.post(
            f"{server.url}/service/upload/small.txt", files={"file": b"0123456789"}, timeout=30
        )
        large = requests.post(
            f"{server.url}/service/upload/large.txt", files={"file": b"0123456789a"}, timeout=30
        )
        listing = requests.get(f"{server.url}/service/files", timeout=30).json()
    assert (small.status_code, small.json()) == (200, {"error": None})
    assert (large.status_code, large.json()["error"]) == (
        413,
        "Upload larger than 10 bytes (-upload-max-size)",
    )
    assert listing == [{"filename": "small.txt", "size": 10}]
    assert tree(tmp_path / "data") == {"small.txt": b"0123456789"}


async def test_concurrent_uploads_to_one_name(client: Any, upload_dir: Path) -> None:
    """Each upload has a temporary file of its own: the result is one of them, whole."""
    contents = [bytes([65 + i]) * 300_000 for i in range(4)]
    responses = await asyncio.gather(
        *(client.post("/service/upload/same.bin", data=form(c)) for c in contents)
    )
    statuses = [r.status for r in responses]
    assert statuses == [200] * len(contents)
    assert tree(upload_dir)["same.bin"] in contents
    assert list(tree(upload_dir)) == ["same.bin"]
