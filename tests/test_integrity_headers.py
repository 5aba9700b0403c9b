"""Hostile header bytes and hostile values never give a 500 nor silence the audit log.

Sent as raw bytes (client libraries refuse to send them): header values that are not UTF-8,
tokens that are not ASCII, paths with control characters and surrogates' bytes, on every route,
with and without a token; meanwhile another user works and every one of their requests must
have its audit line.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from service.api.keys import AUTH
from service.routes import API_ROUTES
from tests.conftest import MakeClient
from tests.helpers import as_user, until
from tests.live import live_server
from tests.rawhttp import raw_request

SECRET = b"h" * 32
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _b64(value: bytes) -> bytes:
    return base64.urlsafe_b64encode(value).rstrip(b"=")


# A JWT whose header is JSON with a lone surrogate and a newline in it: what PyJWT may quote in
# its reason for refusing it.
ODD_HEADER = _b64(b'{"alg":"HS256","kid":"\\ud800\\n\\u2028"}') + b"." + _b64(b"{}") + b".sig"
BAD_HEADERS = [
    b"Authorization: Bearer \xff\xfe",
    b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9\xed\xa0\x80.a.b",
    b"Authorization: \xc3\xa9",
    b"X-Anything: \x80\x81",
    b"Accept: \xff",
    b"Content-Type: application/json; charset=\xff",
    b"Origin: http://\xfe.example",
    b"X-Request-ID: \xff",
]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _concrete(path: str) -> bytes:
    return _PARAM.sub("x", path).encode()


@pytest.fixture
async def audited(make_client: MakeClient, tmp_path: Path) -> Any:
    return await make_client(auth="token", secret_key=SECRET, audit_log=tmp_path / "audit.jsonl")


async def test_bad_header_bytes_are_4xx_json_on_every_route_before_and_after_login(
    audited: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = audited.server.port
    token = as_user(audited, "bob")["Authorization"].encode()
    caplog.set_level(logging.ERROR)
    for route in API_ROUTES:
        path = _concrete(route.path)
        for bad in BAD_HEADERS:
            for login in ([], [b"Authorization: " + token]):
                headers = [*login, bad] if not bad.startswith(b"Authorization") else [bad]
                status, body = await raw_request(port, route.method, path, headers)
                seen = (route.method, route.path, bad, status, body)
                assert status < 500, seen
                if not _is_utf8(bad):
                    assert status == 400, seen
                if status >= 400:
                    assert isinstance(body, dict), seen
                    assert isinstance(body.get("error"), str), seen
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_token_that_is_not_ascii_is_refused_as_invalid(audited: Any) -> None:
    status, body = await raw_request(
        audited.server.port, "GET", b"/list/models", ["Authorization: Bearer a\u00e9.b.c".encode()]
    )
    assert (status, body) == (401, {"error": "Invalid or expired token"})


async def test_hostile_requests_never_cost_another_user_an_audit_line(
    audited: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bob lists models while an anonymous client sends everything the writer could choke
    on; bob's lines are all there, one each, and every line of the file is clean JSON."""
    caplog.set_level(logging.ERROR)
    guard = audited.app[AUTH]
    audit = guard.audit
    writer = audit.writer_pid
    port = audited.server.port
    bob = as_user(audited, "bob")
    bob_raw = b"Authorization: " + bob["Authorization"].encode()
    rounds = 40

    async def bob_works() -> list[str]:
        ids = []
        for i in range(rounds):
            rid = f"bob-{i}"
            response = await audited.get("/list/models", headers={**bob, "X-Request-ID": rid})
            assert response.status == 200
            ids.append(rid)
        return ids

    hostile = [
        ("GET", b"/list/models", [b"Authorization: Bearer " + ODD_HEADER]),
        ("GET", b"/list/models", [b"Authorization: Bearer \xff\xfe"]),
        ("GET", b"/source/%0Aevil%ED%A0%80%E2%80%A8/record/k", []),
        ("GET", b"/source/%0Aevil%ED%A0%80/record/k", [bob_raw]),
        ("GET", b"/service/files/" + b"%C2%85" * 1000, [bob_raw]),
        ("POST", b"/auth/login", [b"Content-Type: application/json"]),
    ]

    async def attacker() -> int:
        sent = 0
        for _ in range(rounds // 4):
            for method, path, headers in hostile:
                body = b'{"username": "a\\ud800\\n", "password": "x"}' if method == "POST" else b""
                status, _ = await raw_request(port, method, path, headers, body)
                assert status < 500
                sent += 1
        return sent

    ids, sent = await asyncio.gather(bob_works(), attacker())
    path = tmp_path / "audit.jsonl"

    def lines() -> list[dict[str, Any]]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_bytes().splitlines()]

    await until(lambda: len(lines()) >= rounds + sent, "every request's audit line")
    raw = path.read_bytes()
    text = raw.decode("utf-8")  # strict: nothing unencodable reached the file
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f\x85\u2028\u2029]", text)
    found = lines()
    bobs = [line["request_id"] for line in found if line.get("user") == "bob"]
    assert [rid for rid in bobs if rid.startswith("bob-")] == ids  # one each, in order
    assert all(len(str(value)) <= 600 for line in found for value in line.values())
    assert audit.dropped == 0
    assert audit.writer_pid == writer  # the writer never died
    metrics = await (await audited.get("/metrics", headers=bob)).text()
    assert "dffml_audit_lines_dropped_total 0.0" in metrics
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_real_server_answers_bad_header_bytes_without_a_traceback(tmp_path: Path) -> None:
    """The attack as first made: the CLI's server with tokens, a rate limit and an audit log;
    every answer a JSON 4xx, no traceback in its log, every line in the audit log."""
    (tmp_path / "data").mkdir()
    audit = tmp_path / "audit.jsonl"
    args = ("-insecure", "-upload-dir", "data", "-auth", "token", "-audit-log", str(audit))
    env = {"DFFML_SERVICE_HTTP_SECRET_KEY": SECRET.decode()}
    with live_server(*args, "-rate-limit", "1000", cwd=tmp_path, env=env) as server:

        async def attack() -> list[tuple[int, Any]]:
            answers = []
            # /health is never audited: the audit log must hold a line for every other one.
            for path in (b"/list/models", b"/v1/auth/me", b"/auth/login", b"/health"):
                for bad in BAD_HEADERS:
                    method = "POST" if path.endswith(b"login") else "GET"
                    answers.append(await raw_request(server.port, method, path, [bad]))
            return answers

        answers = asyncio.run(attack())
        sent = len(answers)

        def written() -> list[dict[str, Any]]:
            if not audit.exists():
                return []
            return [json.loads(line) for line in audit.read_bytes().splitlines()]

        deadline = time.monotonic() + 30
        audited = sent - len(BAD_HEADERS)
        while len([x for x in written() if x["event"] == "request"]) < audited:
            assert time.monotonic() < deadline, "audit lines missing"
            time.sleep(0.05)
        log = server.stderr()
    assert len([x for x in written() if x["event"] == "request"]) == audited  # one each
    assert all(status < 500 for status, _ in answers), answers
    assert all(
        isinstance(body, dict) and "error" in body for status, body in answers if status >= 400
    )
    assert "Traceback" not in log
    assert "Unhandled error" not in log
