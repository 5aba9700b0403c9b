"""Users: names matched whole, disabling and deleting (admin route and CLI) with tokens refused
at once, deleted names never reused, registration throttled without starving logins, and
-jwks identities held to the same name rules."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from service.api.keys import AUTH
from service.auth.logins import REGISTRATIONS
from tests.conftest import MakeClient
from tests.live import live_server, user_command

SECRET = b"u" * 32
ISS = AUD = "dffml-service-http"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _login(client: Any, name: str, password: str) -> Any:
    return await client.post("/auth/login", json={"username": name, "password": password})


async def _token(client: Any, name: str, password: str) -> dict[str, str]:
    response = await _login(client, name, password)
    assert response.status == 200, await response.text()
    return _bearer((await response.json())["access_token"])


@pytest.fixture
async def client(make_client: MakeClient) -> Any:
    client = await make_client(auth="token", secret_key=SECRET, registration="open")
    logins = client.app[AUTH].logins
    await logins.create("admin", "admin-password-1", admin=True)
    await logins.create("bob", "bob-password-1")
    return client


async def test_a_name_with_a_trailing_newline_or_another_case_is_refused(client: Any) -> None:
    for name in ("admin\n", "bob\n", "bob\r\n", ".", "../x"):
        response = await client.post(
            "/auth/registration", json={"username": name, "password": "password-123"}
        )
        assert response.status == 400, name
        assert (await response.json())["error"].startswith("username must match")
    for name in ("Bob", "BOB", "ADMIN"):
        response = await client.post(
            "/auth/registration", json={"username": name, "password": "password-123"}
        )
        assert response.status == 409, name
    # The name as it was created logs in; another case is not that user.
    assert (await _login(client, "bob", "bob-password-1")).status == 200
    assert (await _login(client, "Bob", "bob-password-1")).status == 401


async def test_an_admin_disables_enables_and_deletes_a_user_and_its_tokens_follow_at_once(
    client: Any,
) -> None:
    admin = await _token(client, "admin", "admin-password-1")
    bob = await _token(client, "bob", "bob-password-1")
    assert (await client.get("/list/models", headers=bob)).status == 200  # seen, then kept

    # Only admins; unknown users are 404.
    assert (await client.post("/auth/users/admin/disable", headers=bob)).status == 403
    assert (await client.post("/auth/users/nobody/disable", headers=admin)).status == 404

    answer = await client.post("/auth/users/bob/disable", headers=admin)
    assert (answer.status, await answer.json()) == (200, {"username": "bob", "status": "disabled"})
    refused = await client.get("/list/models", headers=bob)
    assert (refused.status, await refused.json()) == (401, {"error": "Invalid or expired token"})
    assert (await _login(client, "bob", "bob-password-1")).status == 401

    assert (await client.post("/auth/users/bob/enable", headers=admin)).status == 200
    assert (await client.get("/list/models", headers=bob)).status == 200

    deleted = await client.delete("/auth/users/bob", headers=admin)
    assert (deleted.status, await deleted.json()) == (200, {"username": "bob", "status": "deleted"})
    assert (await client.get("/list/models", headers=bob)).status == 401
    assert (await _login(client, "bob", "bob-password-1")).status == 401
    # Deleted stays deleted, and the name (with its users/bob/ files) is never handed over.
    assert (await client.post("/auth/users/bob/enable", headers=admin)).status == 404
    for name, headers in (("bob", admin), ("bob", {}), ("Bob", {})):
        again = await client.post(
            "/auth/registration",
            json={"username": name, "password": "new-password-1"},
            headers=headers,
        )
        assert again.status == 409
        assert "deleted user" in (await again.json())["error"]


async def test_registration_is_throttled_per_address_and_never_holds_up_logins(
    client: Any,
) -> None:
    logins = client.app[AUTH].logins
    # Every slot for new passwords taken: a registration waits, a login does not.
    slots = logins.passwords._new_slots
    await slots.acquire()
    try:
        waiting = asyncio.ensure_future(
            client.post(
                "/auth/registration", json={"username": "carol", "password": "carol-password"}
            )
        )
        assert (await _login(client, "bob", "bob-password-1")).status == 200
        assert not waiting.done()
    finally:
        slots.release()
    assert (await waiting).status == 201

    for i in range(REGISTRATIONS - 1):  # carol was the first
        response = await client.post(
            "/auth/registration", json={"username": f"user{i}", "password": "password-123"}
        )
        assert response.status == 201
    refused = await client.post(
        "/auth/registration", json={"username": "one-more", "password": "password-123"}
    )
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert (await refused.json())["error"].startswith("Too many registrations")
    # An admin still creates users, and logins are untouched.
    admin = await _token(client, "admin", "admin-password-1")
    created = await client.post(
        "/auth/registration",
        json={"username": "by-admin", "password": "password-123"},
        headers=admin,
    )
    assert created.status == 201
    assert (await _login(client, "one-more", "password-123")).status == 401
    assert (await _login(client, "by-admin", "password-123")).status == 200


async def test_a_jwks_sub_that_is_not_a_user_name_is_refused(
    make_client: MakeClient, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    client = await make_client(
        auth="token",
        secret_key=SECRET,
        jwks=jwks,
        jwks_issuer="https://idp.example",
        upload_dir=tmp_path / "data",
    )
    (tmp_path / "data" / "users" / "alice").mkdir(parents=True, exist_ok=True)

    def token(sub: object) -> dict[str, str]:
        now = int(time.time())
        claims = {"sub": sub, "iat": now, "nbf": now, "exp": now + 600, "jti": f"j-{sub!r}"}
        claims.update(iss="https://idp.example", aud=AUD)
        return _bearer(jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"}))

    assert (await client.get("/service/files", headers=token("alice"))).status == 200
    for sub in (".", "..", "../alice", "alice\n", "a/b", "x" * 500, "é", "a\u2028b"):
        response = await client.get("/service/files", headers=token(sub))
        assert response.status == 401, sub[:20]
        assert await response.json() == {"error": "Invalid or expired token"}


def _cli(
    command: str, name: str, cwd: Path, password: str = ""
) -> subprocess.CompletedProcess[str]:
    return user_command(
        command,
        name,
        cwd,
        password=password or None,
        env={"DFFML_SERVICE_HTTP_SECRET_KEY": SECRET.decode()},
    )


def _until_status(url: str, headers: dict[str, str], status: int) -> None:
    """Until the server answers ``status`` (the CLI's change reaches it within a second)."""
    deadline = time.monotonic() + 30
    while True:
        got = requests.get(url, headers=headers, timeout=30).status_code
        if got == status:
            return
        assert time.monotonic() < deadline, f"still {got}, not {status}"
        time.sleep(0.05)


def test_the_cli_disables_enables_and_deletes_a_user_the_running_server_follows(
    tmp_path: Path,
) -> None:
    (tmp_path / "data").mkdir()
    created = _cli("createuser", "bob", tmp_path, "bob-password-1")
    assert created.returncode == 0, created.stderr
    env = {"DFFML_SERVICE_HTTP_SECRET_KEY": SECRET.decode()}
    with live_server(
        "-insecure", "-upload-dir", "data", "-auth", "token", cwd=tmp_path, env=env
    ) as server:
        login = requests.post(
            f"{server.url}/auth/login",
            json={"username": "bob", "password": "bob-password-1"},
            timeout=30,
        )
        bob = _bearer(login.json()["access_token"])
        url = f"{server.url}/list/models"
        assert requests.get(url, headers=bob, timeout=30).status_code == 200

        disabled = _cli("disableuser", "bob", tmp_path)
        assert disabled.returncode == 0, disabled.stderr
        assert "disabled" in disabled.stdout
        _until_status(url, bob, 401)
        assert _cli("createtoken", "bob", tmp_path).returncode == 2

        assert _cli("enableuser", "bob", tmp_path).returncode == 0
        _until_status(url, bob, 200)

        assert _cli("deleteuser", "bob", tmp_path).returncode == 0
        _until_status(url, bob, 401)
        again = _cli("createuser", "bob", tmp_path, "other-password-1")
        assert again.returncode == 2
        assert "deleted user" in again.stderr
        missing = _cli("deleteuser", "nobody", tmp_path)
        assert missing.returncode == 2
        assert "no user 'nobody'" in missing.stderr
