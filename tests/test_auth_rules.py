"""Endpoint rules, request names, allowed hosts and the audit log, through HTTP."""

from __future__ import annotations

import json
import marshal
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from service.api.keys import AUTH
from service.auth.audit import AuditLog
from service.auth.names import parse, templates
from service.auth.rules import (
    FORBIDDEN,
    FORBIDDEN_FOR_USER,
    RuleError,
    Rules,
    from_environment,
    read_rules_file,
)
from service.kernel.users import User
from service.routes import API_ROUTES
from tests.conftest import MakeClient
from tests.live import run_cli

T = TypeVar("T")


def test_every_route_of_the_table_has_a_name() -> None:
    named = templates(API_ROUTES)
    assert len(named) == len({(r.method, r.path) for r in API_ROUTES})
    for template in named.values():
        values = {s.var: "x" for s in template.segments if s.var}
        values["kind"] = "model"
        name = template.name(values)
        assert len(name.split("/")) == 3, (template.path, name)


@pytest.mark.parametrize(
    ("method", "path", "values", "name"),
    [
        ("POST", "/model/{ctx}/predict/{chunk_size}", {"ctx": "salary"}, "model/salary/predict"),
        ("GET", "/source/{ctx}/records", {"ctx": "people"}, "source/people/records"),
        ("POST", "/module/{ctx}/{function}", {"ctx": "ds", "function": "split"}, "module/ds/split"),
        ("POST", "/service/upload/{path:.*}", {"path": "a/b.csv"}, "service/upload/-"),
        ("DELETE", "/service/files/{path:.*}", {"path": "a/b.csv"}, "service/files/delete"),
        (
            "POST",
            "/configure/{kind}/{plugin}/{label}",
            {"kind": "model", "plugin": "slr", "label": "salary"},
            "model/salary/configure",
        ),
        (
            "DELETE",
            "/configure/{kind}/{label}",
            {"kind": "source", "label": "a"},
            "source/a/delete",
        ),
        ("GET", "/tasks/{id}", {"id": "T1"}, "task/T1/get"),
        ("GET", "/v1/ignored", {}, "v1/ignored/-"),
        # A label cannot smuggle a separator into the name.
        ("POST", "/model/{ctx}/train", {"ctx": "a/b"}, "model/a%2Fb/train"),
    ],
)
def test_names(method: str, path: str, values: dict[str, str], name: str) -> None:
    assert parse(method, path).name(values) == name


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_one_variable_shortcut_names_every_route_as_the_plan_does(data: Any) -> None:
    """Template.name joins text around the one variable; planned works it out part by part."""
    template = data.draw(st.sampled_from(sorted(templates(API_ROUTES).values(), key=str)))
    # Values as aiohttp hands them over, "/" (from %2F) and empty ones included.
    value = st.text(st.sampled_from("ab/-%"), max_size=4)
    values = {s.var: data.draw(value) for s in template.segments if s.var}
    if "kind" in values:
        values["kind"] = data.draw(st.sampled_from(["model", "source"]))
    assert template.name(values) == template.planned(values)
    assert template.name({}) == template.planned({})  # a variable missing: "-"


def test_rules_are_anchored_regular_expressions(tmp_path: Path) -> None:
    rules = Rules(["model/foo/predict", r"source/[a-z]+/records?"])
    assert rules.allows("model/foo/predict")
    assert not rules.allows("model/foobar/predict")
    assert not rules.allows("xmodel/foo/predict")
    assert not rules.allows("model/foo/predictx")
    assert rules.allows("source/people/records")
    assert not rules.allows("source/People/records")
    with pytest.raises(RuleError, match="not a regular expression"):
        Rules(["model/(unclosed"])
    path = tmp_path / "rules"
    path.write_text("# comment\n\nmodel/.*\n  source/a/record  \n")
    assert read_rules_file(path) == ["model/.*", "source/a/record"]
    path.write_text("# nothing\n")
    with pytest.raises(RuleError, match="no rules"):
        read_rules_file(path)
    assert from_environment(" a/b/c ; ;d/.*/e") == ["a/b/c", "d/.*/e"]


async def test_rules_allow_exactly_what_they_match_without_auth(
    make_client: MakeClient,
) -> None:
    client = await make_client(
        rule=("list/.*/get", "source/mem/.*", "health/-/-", "source/a%2Fb/record")
    )
    assert (await client.get("/list/models")).status == 200
    # An encoded slash in a label is named %2F: it cannot pass for a rule's separator.
    response = await client.get(URL("/source/a%2Fb/record/k", encoded=True))
    assert response.status == 404  # allowed (source/a%2Fb/record); not loaded
    response = await client.get(URL("/source/a%2Fc/record/k", encoded=True))
    assert response.status == 403
    assert (await client.get("/health")).status == 200
    assert (await client.post("/configure/source/memory/other", json={})).status == 403
    assert (await client.post("/configure/source/memory/mem", json={})).status == 200
    response = await client.get("/source/mem/record/a")
    assert response.status == 404  # allowed by the rules; not loaded
    response = await client.get("/source/memx/record/a")
    assert response.status == 403
    assert await response.json() == {"error": FORBIDDEN}
    response = await client.get("/v1/source/memx/record/a")
    # Every route has its /v1 alias (docs/openapi.md), ruled alike.
    assert (response.status, await response.json()) == (403, {"error": FORBIDDEN})


async def test_rules_apply_after_authentication(make_client: MakeClient) -> None:
    client = await make_client(auth="token", secret_key=b"s" * 32, rule=("list/models/get",))
    token = client.app[AUTH].tokens.issue(User("bob")).token
    assert (await client.get("/list/models")).status == 401  # who first, then what
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/list/models", headers=headers)).status == 200
    assert (await client.get("/list/sources", headers=headers)).status == 403


async def test_a_users_own_rules_apply_on_top_of_the_servers(make_client: MakeClient) -> None:
    client = await make_client(
        auth="token", secret_key=b"s" * 32, rule=("list/.*/get", "source/.*", "auth/.*")
    )
    own = ["list/models/get", "source/mine/.*"]
    await client.app[AUTH].logins.create("ann", "ann-password-1", rules=own)
    login = {"username": "ann", "password": "ann-password-1"}
    token = (await (await client.post("/auth/login", json=login)).json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for path, status, error in [
        ("/list/models", 200, None),
        ("/list/sources", 403, FORBIDDEN_FOR_USER),  # the server's rules allow it, hers not
        ("/source/mine/record/k", 404, "Source not loaded"),  # both allow it
        ("/source/other/record/k", 403, FORBIDDEN_FOR_USER),
        ("/tasks", 403, FORBIDDEN),  # the server's rules are checked first
    ]:
        response = await client.get(path, headers=headers)
        assert response.status == status, path
        assert (await response.json()).get("error") == error, path
    # Her own account is never forbidden by her own rules (the server's may).
    me = await client.get("/auth/me", headers=headers)
    assert me.status == 200
    assert (await me.json())["rules"] == own


async def test_only_an_admin_gives_a_user_rules(make_client: MakeClient) -> None:
    client = await make_client(auth="token", secret_key=b"s" * 32, registration="open")
    tokens = client.app[AUTH].tokens
    admin = {"Authorization": f"Bearer {tokens.issue(User('root', admin=True)).token}"}
    user = {"Authorization": f"Bearer {tokens.issue(User('bob')).token}"}
    body = {"username": "dan", "password": "dan-password-1", "rules": ["model/m/predict"]}
    for headers in ({}, user):  # open registration, but not rules
        response = await client.post("/auth/registration", json=body, headers=headers)
        assert response.status == 403
        assert await response.json() == {"error": "Only an admin gives a user rules"}
    for rules, error in [
        ("model/.*", "rules must be a list of regular expressions"),
        (["(unclosed"], "rule '(unclosed' is not a regular expression"),
        ([""], "a rule has 1 to 500 characters"),
        (["x"] * 65, "at most 64 rules a user"),
        (["x" * 500] * 9, "at most 4000 characters of rules a user"),
    ]:
        response = await client.post(
            "/auth/registration", json={**body, "rules": rules}, headers=admin
        )
        assert response.status == 400, rules
        assert (await response.json())["error"].startswith(error), rules
    created = await client.post("/auth/registration", json=body, headers=admin)
    assert created.status == 201
    assert await created.json() == {"username": "dan", "admin": False, "rules": body["rules"]}
    plain = {"username": "eve", "password": "eve-password-1"}  # no rules: anyone, openly
    assert (await client.post("/auth/registration", json=plain)).status == 201


async def test_allowed_hosts(make_client: MakeClient) -> None:
    client = await make_client(allowed_hosts=("api.example.org", ".example.com", "127.0.0.1"))
    assert (await client.get("/health")).status == 200
    for host, status in [
        ("api.example.org", 200),
        ("api.example.org:8443", 200),
        ("example.com", 200),
        ("a.b.example.com", 200),
        ("evil.org", 400),
        ("example.com.evil.org", 400),
        ("notexample.com", 400),
    ]:
        response = await client.get("/health", headers={"Host": host})
        assert response.status == status, host
        if status == 400:
            assert "is not allowed (-allowed-hosts)" in (await response.json())["error"]


def _poll(found: Callable[[], T | None], failure: str) -> T:
    """What ``found`` returns once it is not None, within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        result = found()
        if result is not None:
            return result
        time.sleep(0.02)
    raise AssertionError(failure)


def read_lines(path: Path, count: int) -> list[dict[str, Any]]:
    """The audit file's lines once ``count`` are there (the writer is another process)."""

    def lines() -> list[dict[str, Any]] | None:
        if not path.exists():
            return None
        read = [json.loads(line) for line in path.read_text().splitlines()]
        return read if len(read) >= count else None

    return _poll(lines, f"fewer than {count} audit lines in {path}")


async def test_audit_log_names_user_status_and_never_the_token(
    make_client: MakeClient, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    client = await make_client(auth="token", secret_key=b"s" * 32, audit_log=audit)
    token = client.app[AUTH].tokens.issue(User("bob")).token
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "req-1"}
    listed = await client.get("/list/models", headers=headers)
    assert listed.status == 200
    body = await listed.read()
    assert (await client.get("/source/nope/record/k", headers=headers)).status == 404
    assert (await client.get("/list/models")).status == 401
    assert (await client.get("/list/models", headers={"Authorization": "Bearer x.y.z"})).status
    lines = read_lines(audit, 5)
    requests = [line for line in lines if line["event"] == "request"]
    assert [(r["user"], r["status"], r["resource"]) for r in requests] == [
        ("bob", 200, "list/models/get"),
        ("bob", 404, "source/nope/record"),
        ("-", 401, "list/models/get"),
        ("-", 401, "list/models/get"),
    ]
    first = requests[0]
    assert first["method"] == "GET"
    assert first["route"] == "/list/{kinds}"
    assert first["request_id"] == "req-1"
    assert first["address"] == "127.0.0.1"
    assert first["bytes"] == len(body) > 0  # the body's bytes, headers not counted
    assert first["duration_ms"] >= 0
    assert first["time"].endswith("+00:00")
    refused = [line for line in lines if line["event"] == "token_refused"]
    assert refused
    assert refused[0]["user"] == "-"
    assert token not in audit.read_text()
    assert token.split(".")[2] not in audit.read_text()


async def test_audit_log_follows_logrotate(make_client: MakeClient, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    client = await make_client(audit_log=audit)
    assert (await client.get("/list/models")).status == 200
    read_lines(audit, 1)
    os.rename(audit, tmp_path / "audit.jsonl.1")  # what logrotate does
    assert (await client.get("/list/sources")).status == 200
    (line,) = read_lines(audit, 1)
    assert line["resource"] == "list/sources/get"
    assert read_lines(tmp_path / "audit.jsonl.1", 1)[0]["resource"] == "list/models/get"


def _wait_until_dead(pid: int) -> None:
    """Until ``pid`` has exited (a zombie counts: its pipe is closed)."""

    def dead() -> bool | None:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        return True if state in ("Z", "X") else None

    _poll(dead, f"process {pid} still runs")


async def _audited(make_client: MakeClient, tmp_path: Path) -> tuple[Any, Path, AuditLog]:
    audit = tmp_path / "audit.jsonl"
    client = await make_client(audit_log=audit)
    log = client.app[AUTH].audit
    assert log is not None
    assert log.writer_pid is not None
    return client, audit, log


async def test_audit_writer_process_is_replaced_if_it_dies(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, audit, log = await _audited(make_client, tmp_path)
    assert (await client.get("/list/models")).status == 200
    read_lines(audit, 1)
    first = log.writer_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    _wait_until_dead(first)
    assert (await client.get("/list/sources")).status == 200
    lines = read_lines(audit, 2)
    assert [line["resource"] for line in lines] == ["list/models/get", "list/sources/get"]
    assert log.writer_pid not in (None, first)
    assert log.dropped == 0


async def test_audit_writer_drains_and_exits_with_the_server(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, audit, log = await _audited(make_client, tmp_path)
    pid = log.writer_pid
    assert pid is not None
    for _ in range(50):
        assert (await client.get("/list/models")).status == 200
    await client.close()  # shutdown: every queued line is written before the writer exits
    _wait_until_dead(pid)
    assert len(audit.read_text().splitlines()) == 50


def test_cli_refuses_an_audit_log_it_cannot_open(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "audit.jsonl"
    done = run_cli("server", "-insecure", "-port", "0", "-audit-log", str(missing), cwd=tmp_path)
    assert done.returncode != 0
    assert f"cannot open -audit-log {missing}: No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_audit_writer_frames(tmp_path: Path) -> None:
    """The writer process reads whole frames and stops cleanly at a truncated one."""
    batch = [
        (0.5, "request", ("u", "a", "GET", "/r", "n", 200, 3, 0.001, "rid", "p")),
        (1.25, "login", {"user": "u"}),
    ]
    payload = marshal.dumps(batch)
    frame = len(payload).to_bytes(4, "big") + payload
    path = tmp_path / "audit.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "service.auth.audit_writer", str(path)],
        input=frame + frame[:7],  # then a frame cut short: the server died mid-write
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, b"ok\n")
    request, login = (json.loads(line) for line in path.read_text().splitlines())
    assert request == {
        "time": "1970-01-01T00:00:00.500+00:00",
        "event": "request",
        "user": "u",
        "address": "a",
        "method": "GET",
        "route": "/r",
        "resource": "n",
        "status": 200,
        "bytes": 3,
        "duration_ms": 1.0,
        "request_id": "rid",
        "path": "p",
    }
    assert login == {"time": "1970-01-01T00:00:01.250+00:00", "event": "login", "user": "u"}
