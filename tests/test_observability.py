"""Request ids, readiness and the log, driven over HTTP as clients and operators meet them."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from service.api.keys import READINESS
from service.observability import logs, requestid
from tests.conftest import MakeClient
from tests.fakes import fake_registry
from tests.live import live_server, run_cli

GENERATED = re.compile(r"^[0-9a-f]{16}$")
RECORDS = {"a": {"features": {"x": 1}}, "b": {"features": {"x": 2}}, "c": {"features": {"x": 3}}}


async def _memory_source(client: Any, label: str = "s") -> None:
    for path, body in (
        (f"/configure/source/memory/{label}", {"records": RECORDS}),
        (f"/context/source/{label}/{label}", None),
    ):
        response = await client.post(path, json=body)
        assert response.status == 200, await response.text()


async def test_request_id_generated_or_taken_from_the_client(make_client: MakeClient) -> None:
    client = await make_client()
    first = (await client.get("/health")).headers["X-Request-ID"]
    second = (await client.get("/health")).headers["X-Request-ID"]
    assert GENERATED.match(first)
    assert GENERATED.match(second)
    assert first != second
    sent = await client.get("/health", headers={"X-Request-ID": "trace-42.a:b"})
    assert sent.headers["X-Request-ID"] == "trace-42.a:b"
    # Unusable ids (spaces, quotes, too long) are replaced, never echoed into logs and headers.
    for bad in ("has space", 'q"uote', "x" * 129, ""):
        answered = await client.get("/health", headers={"X-Request-ID": bad})
        assert GENERATED.match(answered.headers["X-Request-ID"]), bad


async def test_generated_ids_ignore_random_seed(make_client: MakeClient) -> None:
    # A plugin seeding the random module must not make ids repeat.
    client = await make_client()
    random.seed(42)
    first = (await client.get("/health")).headers["X-Request-ID"]
    random.seed(42)
    second = (await client.get("/health")).headers["X-Request-ID"]
    assert first != second


def test_generated_ids_differ_after_fork() -> None:
    # A forked worker must not make the ids its parent makes next.
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only reports its id
        os.write(writer, requestid.new_id().encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    with os.fdopen(reader, "rb") as pipe:
        in_child = pipe.read().decode()
    assert GENERATED.match(in_child)
    assert in_child != requestid.new_id()


async def test_request_id_on_every_answer_with_error_bodies_unchanged(
    make_client: MakeClient, upload_dir: Path
) -> None:
    client = await make_client(max_body_size=100)
    await _memory_source(client)
    (upload_dir / "f.txt").write_text("hello")
    headers = {"X-Request-ID": "rid-1"}
    cases: list[tuple[str, str, dict[str, Any], int, Any]] = [
        ("GET", "/nowhere", {}, 404, {"error": "404: Not Found"}),
        ("POST", "/health", {}, 405, {"error": "405: Method Not Allowed"}),
        ("GET", "/source/nope/record/1", {}, 404, {"error": "Source not loaded"}),
        ("POST", "/source/s/update/a", {"data": b"{"}, 400, None),
        ("POST", "/source/s/update/a", {"data": b"[" + b"1," * 100 + b"1]"}, 413, None),
        ("GET", "/v1/source/s/record/a", {}, 200, None),
    ]
    for method, path, kwargs, status, body in cases:
        response = await client.request(method, path, headers=headers, **kwargs)
        assert response.status == status, (path, await response.text())
        assert response.headers["X-Request-ID"] == "rid-1", path
        if body is not None:
            assert await response.json() == body
        if status >= 400:
            assert list(await response.json()) == ["error"], path
    # Streamed (prepared by the handler) and file responses carry it too.
    stream = await client.get("/source/s/records", headers=headers)
    assert (stream.status, stream.headers["X-Request-ID"]) == (200, "rid-1")
    assert len((await stream.read()).splitlines()) == 3
    download = await client.get("/service/files/f.txt", headers=headers)
    assert (await download.read(), download.headers["X-Request-ID"]) == (b"hello", "rid-1")


async def test_health_live_and_ready(make_client: MakeClient) -> None:
    client = await make_client()
    assert await (await client.get("/health/live")).json() == {"status": "live"}
    assert await (await client.get("/v1/health/ready")).json() == {"status": "ready"}
    readiness = client.app[READINESS]
    readiness.hold("restoring state")
    response = await client.get("/health/ready")
    assert response.status == 503
    assert await response.json() == {"error": "Not ready: restoring state"}
    assert (await client.get("/health/live")).status == 200
    readiness.release("restoring state")
    assert (await client.get("/health/ready")).status == 200
    # Shutdown begins (on_shutdown): ready says 503 while in-flight requests finish.
    await readiness.stopping(client.app)
    response = await client.get("/health/ready")
    assert (response.status, await response.json()) == (503, {"error": "Not ready: shutting down"})


async def test_not_ready_until_start_up_is_done() -> None:
    from service.observability.readiness import Readiness

    readiness = Readiness()
    assert (readiness.ready, readiness.reason) == (False, "starting")
    await readiness.started(None)  # type: ignore[arg-type]
    assert readiness.ready


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    """The server's own log configuration (as the CLI installs it), written to a buffer."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    logs.configure(logging.INFO, "json", stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


async def test_every_log_line_of_a_request_has_its_id(
    make_client: MakeClient, captured_log: io.StringIO
) -> None:
    client = await make_client(registry=fake_registry())
    response = await client.post(
        "/configure/source/exploding/x", json={"filename": "a"}, headers={"X-Request-ID": "boom-1"}
    )
    assert (response.status, await response.json()) == (500, {"error": "Internal Server Error"})
    await client.get("/source/s/record/a%0Aforged", headers={"X-Request-ID": "inj-1"})
    logging.getLogger().handlers[0].flush()
    lines = [json.loads(line) for line in captured_log.getvalue().splitlines()]
    mine = [line for line in lines if line["request_id"] == "boom-1"]
    # The traceback line (error middleware) and the access line, both with the id.
    unhandled = next(line for line in mine if line["logger"] == "service.api.middlewares")
    assert unhandled["level"] == "ERROR"
    assert "RuntimeError: secret internals" in unhandled["exception"]
    access = next(line for line in mine if line["logger"] == "service.access")
    assert access["route"] == "/configure/{kind}/{plugin}/{label}"
    assert (access["method"], access["status"], access["path"]) == (
        "POST",
        500,
        "/configure/source/exploding/x",
    )
    assert access["bytes"] > 0
    assert access["duration_ms"] >= 0
    assert set(access) >= {"time", "level", "logger", "message", "request_id"}
    # A path cannot forge a log line: it is logged as sent (percent-encoded).
    injected = next(line for line in lines if line["request_id"] == "inj-1")
    assert injected["path"] == "/source/s/record/a%0Aforged"


def test_cli_text_log_has_request_ids_and_access_lines(tmp_path: Path) -> None:
    with live_server("-insecure", "-log", "INFO", cwd=tmp_path) as server:
        requests.get(f"{server.url}/health", headers={"X-Request-ID": "cli-1"}, timeout=10)
        requests.get(f"{server.url}/nowhere", headers={"X-Request-ID": "cli-2"}, timeout=10)
    text = server.stderr()
    assert re.search(r' INFO service.access \[cli-1\] 127.0.0.1 "GET /health" 200 \d+ ', text)
    assert re.search(r'\[cli-2\] 127.0.0.1 "GET /nowhere" 404 ', text)
    assert re.search(r"INFO service \[-\] Serving on http://127.0.0.1:\d+", text)


def test_cli_json_log_and_access_log_off(tmp_path: Path) -> None:
    with live_server("-insecure", "-log", "INFO", "-log-format", "json", cwd=tmp_path) as server:
        requests.get(f"{server.url}/v1/health", headers={"X-Request-ID": "j-1"}, timeout=10)
    lines = [json.loads(line) for line in server.stderr().splitlines() if line.startswith("{")]
    access = next(line for line in lines if line.get("request_id") == "j-1")
    assert (access["route"], access["status"], access["logger"]) == (
        "/v1/health",
        200,
        "service.access",
    )
    with live_server("-insecure", "-log", "INFO", "-access-log", "off", cwd=tmp_path) as server:
        requests.get(f"{server.url}/health", timeout=10)
    assert "service.access" not in server.stderr()
    assert "Serving on" in server.stderr()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-log-format", "xml"], "-log-format takes text or json"),
        (["-metrics", "maybe"], "-metrics takes on or off"),
        (["-access-log", "no"], "-access-log takes on or off"),
        (["-rate-limit", "fast"], "-rate-limit: invalid Rate value"),
        (["-rate-limit", "0/s"], "-rate-limit: invalid Rate value"),
        (["-rate-limit-burst", "3"], "-rate-limit-burst needs -rate-limit"),
        (["-rate-limit", "5/s", "-rate-limit-burst", "0"], "-rate-limit-burst must be at least 1"),
    ],
)
def test_cli_rejects_bad_observability_options(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli("server", "-insecure", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
