"""Users, tokens, ownership, rules and the audit log through the real CLI, as clients see them."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from tests.live import LiveServer, create_user, live_server, run_cli

SECRET = "s3cret-" * 6
ENV = {"DFFML_SERVICE_HTTP_SECRET_KEY": SECRET}
ISS = AUD = "dffml-service-http"
PASSWORDS = {"admin": "admin-password-1", "bob": "bob-password-1", "alice": "alice-password-1"}


def create(command: str, name: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``command`` (createuser, createsuperuser) for ``name`` with its password from PASSWORDS;
    ``extra`` after ``-password-stdin`` (which the helper passes)."""
    extra = tuple(arg for arg in extra if arg != "-password-stdin")
    return create_user(name, PASSWORDS.get(name, "x"), cwd, *extra, command=command, env=ENV)


class As:
    """One user's requests against a live server."""

    def __init__(self, server: LiveServer, name: str) -> None:
        self.url = server.url
        answer = requests.post(
            f"{self.url}/auth/login",
            json={"username": name, "password": PASSWORDS[name]},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        self.token = body["access_token"]

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture
def server(tmp_path: Path) -> Any:
    (tmp_path / "data").mkdir()
    for command, name in [
        ("createsuperuser", "admin"),
        ("createuser", "bob"),
        ("createuser", "alice"),
    ]:
        result = create(command, name, tmp_path, "-password-stdin")
        assert result.returncode == 0, result.stderr
    rules = tmp_path / "rules"
    rules.write_text("# everything but bob's model deletions\n(?!model/m/delete).*\n")
    with live_server(
        *("-insecure", "-upload-dir", "data", "-auth", "token", "-rules", str(rules)),
        *("-audit-log", "audit.jsonl", "-sources", "shared=memory"),
        cwd=tmp_path,
        env=ENV,
    ) as live:
        yield live


def audit_lines(path: Path, last_event: str) -> list[dict[str, Any]]:
    """The audit file's lines once ``last_event`` is among them (a thread writes them)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            if any(line["event"] == last_event for line in lines):
                return lines
        time.sleep(0.05)
    raise AssertionError(f"no {last_event} line in {path}")


def test_two_users_cannot_see_each_other_and_an_admin_can(
    server: LiveServer, tmp_path: Path
) -> None:
    bob, alice, admin = As(server, "bob"), As(server, "alice"), As(server, "admin")
    assert bob("GET", "/auth/me").json()["username"] == "bob"
    assert admin("GET", "/auth/me").json()["admin"] is True

    # bob: a file, a source over it, a context, an iterkey.
    files = {"file": ("p.csv", b"x\n1\n2\n3\n")}
    assert bob("POST", "/service/upload/people.csv", files=files).status_code == 200
    assert (tmp_path / "data" / "users" / "bob" / "people.csv").exists()
    config = {"filename": "people.csv"}
    assert bob("POST", "/configure/source/csv/people", json=config).status_code == 200
    assert bob("GET", "/context/source/people/people").status_code == 200
    assert bob("GET", "/source/people/record/0").json()["features"] == {"x": 1}
    iterkey = bob("GET", "/source/people/records/1").json()["iterkey"]
    assert bob("GET", "/service/files").json() == [{"filename": "people.csv", "size": 8}]

    # alice sees none of it: 404 as if it did not exist.
    for method, path in [
        ("GET", "/source/people/record/0"),
        ("GET", f"/source/people/records/{iterkey}/1"),
        ("GET", "/service/files/people.csv"),
        ("DELETE", "/service/files/people.csv"),
        ("DELETE", "/context/source/people"),
        ("DELETE", "/configure/source/people"),
    ]:
        answer = alice(method, path)
        assert answer.status_code == 404, (method, path, answer.text)
    assert alice("GET", "/service/files").json() == []

    # The admin can, with ?owner= and ?all=1.
    assert admin("GET", "/source/people/record/1?owner=bob").json()["features"] == {"x": 2}
    everything = admin("GET", "/service/files?all=1").json()
    assert {"filename": "users/bob/people.csv", "size": 8} in everything
    assert admin("GET", "/service/files/users/bob/people.csv").status_code == 200

    # The operator's preload is shared; only the admin may release it.
    assert alice("DELETE", "/context/source/shared").status_code == 403
    assert admin("DELETE", "/context/source/shared").status_code == 200


def test_refused_tokens(server: LiveServer) -> None:
    bob = As(server, "bob")
    now = int(time.time())
    claims = {"sub": "bob", "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}
    claims.update(jti="old", iss=ISS, aud=AUD)
    expired = jwt.encode(claims, SECRET.encode(), algorithm="HS256")
    header, payload, signature = bob.token.split(".")
    tampered = f"{header}.{payload}x.{signature}"
    alg_none = jwt.encode({**claims, "exp": now + 600}, None, algorithm="none")
    for token in (expired, tampered, alg_none, "garbage"):
        answer = requests.get(
            f"{server.url}/list/models", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert answer.json() == {"error": "Invalid or expired token"}
    answer = requests.get(f"{server.url}/list/models", timeout=30)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    # Revoked by logout (test_createtoken_and_the_key_file: also after a restart).
    assert bob("GET", "/list/models").status_code == 200
    assert bob("POST", "/auth/logout").status_code == 200
    assert bob("GET", "/list/models").status_code == 401


def test_login_failures_look_alike_and_are_throttled(server: LiveServer) -> None:
    answers = [
        requests.post(
            f"{server.url}/auth/login", json={"username": name, "password": "wrong-one"}, timeout=30
        )
        for name in ("bob", "nobody")
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json() == {"error": "Invalid username or password"}
    statuses = [
        requests.post(
            f"{server.url}/auth/login", json={"username": "bob", "password": "wrong"}, timeout=30
        ).status_code
        for _ in range(5)
    ]
    assert statuses[-1] == 429
    # Even the right password waits now.
    answer = requests.post(
        f"{server.url}/auth/login",
        json={"username": "bob", "password": PASSWORDS["bob"]},
        timeout=30,
    )
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) > 0


def test_rules_allow_exactly_what_they_match(server: LiveServer) -> None:
    bob = As(server, "bob")
    assert (
        bob(
            "POST",
            "/configure/model/slr/m",
            json={"features": ["x:int:1"], "predict": "y:int:1", "location": "m"},
        ).status_code
        == 200
    )
    answer = bob("DELETE", "/configure/model/m")
    assert answer.status_code == 403
    assert answer.json() == {"error": "Forbidden by the server's rules"}
    assert bob("DELETE", "/configure/model/mm").status_code == 404  # allowed, and not there


def test_registration_password_change_and_the_audit_log(server: LiveServer, tmp_path: Path) -> None:
    admin = As(server, "admin")
    # Closed registration: anonymous 401, a user 403, an admin creates.
    body = {"username": "carol", "password": "carol-password-1"}
    assert (
        requests.post(f"{server.url}/auth/registration", json=body, timeout=30).status_code == 401
    )
    bob = As(server, "bob")
    assert bob("POST", "/auth/registration", json=body).status_code == 403
    created = admin("POST", "/auth/registration", json=body)
    assert created.status_code == 201
    assert created.json() == {"username": "carol", "admin": False, "rules": []}
    assert admin("POST", "/auth/registration", json=body).status_code == 409
    PASSWORDS["carol"] = "carol-password-1"
    carol = As(server, "carol")
    changed = carol(
        "POST",
        "/auth/password",
        json={"password": "carol-password-1", "new_password": "carol-new-pass"},
    )
    assert changed.status_code == 200
    fresh = changed.json()["access_token"]
    answer = requests.get(
        f"{server.url}/auth/me", headers={"Authorization": f"Bearer {fresh}"}, timeout=30
    )
    assert answer.json()["username"] == "carol"

    lines = audit_lines(tmp_path / "audit.jsonl", "password_changed")
    text = (tmp_path / "audit.jsonl").read_text()
    for secret in (*PASSWORDS.values(), "carol-new-pass", admin.token, bob.token, fresh, SECRET):
        assert secret not in text
    requests_ = [line for line in lines if line["event"] == "request"]
    by_user = {(line["user"], line["resource"], line["status"]) for line in requests_}
    assert ("-", "auth/registration/-", 401) in by_user
    assert ("bob", "auth/registration/-", 403) in by_user
    assert ("admin", "auth/registration/-", 201) in by_user
    assert ("admin", "auth/registration/-", 409) in by_user
    events = {line["event"] for line in lines}
    assert {"login", "user_created", "password_changed"} <= events


def test_a_user_created_with_rules_of_their_own(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """createuser -rule while the server runs: the rules travel in each token of the user."""
    monkeypatch.setitem(PASSWORDS, "carl", "carl-password-1")
    monkeypatch.setitem(PASSWORDS, "dora", "dora-password-1")
    own = ("-rule", "list/models/get", "-rule", "source/shared/.*")
    result = create("createuser", "carl", tmp_path, "-password-stdin", *own)
    assert result.returncode == 0, result.stderr
    assert "with 2 rule(s) of its own" in result.stdout
    carl = As(server, "carl")
    assert carl("GET", "/list/models").status_code == 200
    refused = carl("GET", "/list/sources")
    assert refused.status_code == 403
    assert refused.json() == {"error": "Forbidden by this user's rules"}
    assert carl("GET", "/source/shared/record/k").status_code == 200  # the shared preload
    me = carl("GET", "/auth/me").json()
    assert me["rules"] == ["list/models/get", "source/shared/.*"]
    # createtoken's tokens carry them too.
    made = run_cli("createtoken", "-username", "carl", "-upload-dir", "data", cwd=tmp_path, env=ENV)
    assert made.returncode == 0, made.stderr
    headers = {"Authorization": f"Bearer {made.stdout.strip()}"}
    answer = requests.get(f"{server.url}/list/sources", headers=headers, timeout=30)
    assert answer.status_code == 403
    # A rule that is not a regular expression is a usage error; no user is made.
    bad = create("createuser", "dora", tmp_path, "-password-stdin", "-rule", "(unclosed")
    assert bad.returncode == 2
    assert "is not a regular expression" in bad.stderr
    assert (
        requests.post(
            f"{server.url}/auth/login",
            json={"username": "dora", "password": PASSWORDS["dora"]},
            timeout=30,
        ).status_code
        == 401
    )


def test_usage_errors(tmp_path: Path) -> None:
    result = run_cli("server", "-insecure", "-auth", "token", "-token-ttl", "25h", cwd=tmp_path)
    assert result.returncode == 2
    assert "-token-ttl 25h: tokens must expire within 24h" in result.stderr
    result = run_cli(
        "server",
        "-insecure",
        "-auth",
        "token",
        cwd=tmp_path,
        env={"DFFML_SERVICE_HTTP_SECRET_KEY": "short"},
    )
    assert result.returncode == 2
    assert "at least 32" in result.stderr
    (tmp_path / "data").mkdir()
    result = create("createuser", "bob", tmp_path, "-password-stdin")
    assert result.returncode == 0, result.stderr
    result = run_cli(
        "createtoken", "-username", "bob", "-upload-dir", "data", "-ttl", "25h", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "24h" in result.stderr
    result = run_cli("createtoken", "-username", "nobody", "-upload-dir", "data", cwd=tmp_path)
    assert result.returncode == 2


def test_createtoken_and_the_key_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    assert create("createuser", "bob", tmp_path, "-password-stdin").returncode == 0
    result = run_cli(
        "createtoken", "-username", "bob", "-upload-dir", "data", "-ttl", "8h", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    # The signing key sits beside the state store (data.state.sqlite3), never in the upload dir
    # or the working directory under a name of its own.
    key_file = tmp_path / "data.jwt-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.glob("*.jwt-key")) == ["data.jwt-key"]
    assert not list((tmp_path / "data").rglob("*.jwt-key"))
    with live_server("-insecure", "-upload-dir", "data", "-auth", "token", cwd=tmp_path) as live:
        answer = requests.get(
            f"{live.url}/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert answer.status_code == 200
        me = answer.json()
        assert me["username"] == "bob"
        assert 8 * 3600 - 120 < me["expires_at"] - time.time() <= 8 * 3600
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.post(f"{live.url}/auth/logout", headers=headers, timeout=30).ok
    # The revocation is in the state store: a restarted server still refuses the token.
    with live_server("-insecure", "-upload-dir", "data", "-auth", "token", cwd=tmp_path) as live:
        answer = requests.get(f"{live.url}/auth/me", headers=headers, timeout=30)
        assert answer.status_code == 401


def test_a_restart_gives_each_user_back_their_own_labels(tmp_path: Path) -> None:
    """Saved labels and contexts keep their owner: after a restart bob's and alice's
    ``people`` are each their own again, over their own files, and still hidden from the
    other; the operator's shared preload is untouched."""
    (tmp_path / "data").mkdir()
    for name in ("bob", "alice"):
        assert create("createuser", name, tmp_path, "-password-stdin").returncode == 0
    args = ("-insecure", "-upload-dir", "data", "-auth", "token", "-sources", "shared=memory")
    rows = {"bob": b"x\n1\n2\n", "alice": b"x\n7\n8\n9\n"}
    with live_server(*args, cwd=tmp_path, env=ENV) as live:
        for name, data in rows.items():
            user = As(live, name)
            files = {"file": ("p.csv", data)}
            assert user("POST", "/service/upload/p.csv", files=files).status_code == 200
            answer = user("POST", "/configure/source/csv/people", json={"filename": "p.csv"})
            assert answer.status_code == 200, answer.text
            assert user("GET", "/context/source/people/mine").status_code == 200
        bob = As(live, "bob")
        assert bob("POST", "/configure/source/csv/only-bob", json={"filename": "p.csv"}).ok
    with live_server(*args, cwd=tmp_path, env=ENV) as live:
        bob, alice = As(live, "bob"), As(live, "alice")
        assert bob("GET", "/source/mine/record/1").json()["features"] == {"x": 2}
        assert alice("GET", "/source/mine/record/2").json()["features"] == {"x": 9}
        assert bob("GET", "/source/mine/record/2").json() == {"key": "2"}
        mine = bob("GET", "/labels").json()["source"]
        assert mine["people"]["config"] == {"filename": "p.csv"}
        assert mine["people"]["contexts"] == ["mine"]
        assert set(mine) == {"people", "only-bob", "shared"}
        assert mine["shared"]["preloaded"] is True
        assert set(alice("GET", "/labels").json()["source"]) == {"people", "shared"}
        # Still alice's own: bob cannot release it, alice can; bob's stays.
        answer = alice("DELETE", "/context/source/mine")
        assert answer.status_code == 200, answer.text
        assert alice("GET", "/source/mine/record/2").status_code == 404
        assert bob("GET", "/source/mine/record/1").status_code == 200
        assert "could not" not in live.stderr()
