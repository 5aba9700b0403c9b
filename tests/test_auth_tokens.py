"""-auth token: which tokens are accepted, and how every refusal looks on the wire."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from service.api.keys import AUTH
from service.auth import accounts, secret
from service.auth.tokens import LEEWAY, Tokens, load_jwks
from service.engine.state import StateStore
from service.kernel.users import User
from tests.conftest import MakeClient

SECRET = b"k" * 40
ISS = AUD = "dffml-service-http"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "bob", "iat": now, "nbf": now, "exp": now + 600, "jti": "j1"}
    base.update(iss=ISS, aud=AUD)
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def client(make_client: MakeClient) -> Any:
    return await make_client(auth="token", secret_key=SECRET)


async def test_no_token_is_401_with_a_bearer_challenge(client: Any) -> None:
    for headers in ({}, {"Authorization": "Basic Ym9iOnB3"}, {"Authorization": "Bearer "}):
        response = await client.get("/list/models", headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert await response.json() == {"error": "Authorization: Bearer <token> required"}


async def test_an_issued_token_is_accepted_until_revoked(client: Any) -> None:
    tokens: Tokens = client.app[AUTH].tokens
    issued = tokens.issue(User("bob"))
    assert issued.expires_in == 3600
    response = await client.get("/list/models", headers=bearer(issued.token))
    assert response.status == 200
    # Verified once, then served from the cache: revocation still wins.
    tokens.revoke(issued.jti, issued.expires_at)
    response = await client.get("/list/models", headers=bearer(issued.token))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert await response.json() == {"error": "Invalid or expired token"}


async def test_a_token_seen_before_is_refused_once_it_expires(client: Any) -> None:
    tokens: Tokens = client.app[AUTH].tokens
    issued = tokens.issue(User("bob"))
    for _ in range(2):  # verified, then the guard's table answers
        assert (await client.get("/list/models", headers=bearer(issued.token))).status == 200
    tokens.clock = lambda: issued.expires_at + LEEWAY + 1
    response = await client.get("/list/models", headers=bearer(issued.token))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_a_password_change_refuses_the_tokens_issued_before_it(client: Any) -> None:
    await client.app[AUTH].logins.create("bob", "bob-password-1")
    earlier = int(time.time()) - 10
    old = jwt.encode(claims(iat=earlier, nbf=earlier), SECRET)
    assert (await client.get("/auth/me", headers=bearer(old))).status == 200
    change = {"password": "bob-password-1", "new_password": "bob-password-2"}
    changed = await client.post("/auth/password", json=change, headers=bearer(old))
    assert changed.status == 200
    response = await client.get("/auth/me", headers=bearer(old))  # seen before, refused now
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    fresh = (await changed.json())["access_token"]
    assert (await client.get("/auth/me", headers=bearer(fresh))).status == 200


def _rs256_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: jwt.encode(claims(exp=int(time.time()) - 120), SECRET), id="expired"),
        pytest.param(
            lambda: jwt.encode(claims(nbf=int(time.time()) + 600), SECRET), id="not-yet-valid"
        ),
        pytest.param(lambda: jwt.encode(claims(), b"x" * 40), id="other-key"),
        pytest.param(lambda: _tampered(jwt.encode(claims(), SECRET)), id="tampered"),
        pytest.param(lambda: jwt.encode(claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(lambda: jwt.encode(claims(), _rs256_key(), algorithm="RS256"), id="rs256"),
        pytest.param(lambda: jwt.encode(claims(jti=None), SECRET), id="no-jti"),
        pytest.param(lambda: jwt.encode(claims(exp=None), SECRET), id="no-exp"),
        pytest.param(lambda: jwt.encode(claims(iss="evil"), SECRET), id="wrong-iss"),
        pytest.param(lambda: jwt.encode(claims(aud="other"), SECRET), id="wrong-aud"),
        pytest.param(lambda: jwt.encode(claims(sub=""), SECRET), id="empty-sub"),
        pytest.param(
            lambda: jwt.encode(claims(exp=int(time.time()) + 25 * 3600), SECRET), id="over-24h"
        ),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
        pytest.param(lambda: "\u00e9" * 20, id="non-ascii"),
    ],
)
async def test_bad_tokens_are_invalid_token(client: Any, make_token: Any) -> None:
    response = await client.get("/list/models", headers=bearer(make_token()))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert await response.json() == {"error": "Invalid or expired token"}


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    body = json.loads(jwt.utils.base64url_decode(payload))
    body["sub"] = "admin"
    forged = jwt.utils.base64url_encode(json.dumps(body).encode()).decode()
    return f"{header}.{forged}.{signature}"


async def test_health_needs_no_token_and_admin_claim_comes_only_from_our_key(
    client: Any,
) -> None:
    assert (await client.get("/health")).status == 200
    tokens: Tokens = client.app[AUTH].tokens
    verified = tokens.verify(tokens.issue(User("root", admin=True)).token)
    assert verified.user == User("root", admin=True)


@pytest.mark.parametrize("rules", ["source/.*", [1], ["(unclosed"], [""]])
async def test_a_token_with_malformed_rules_is_refused(client: Any, rules: Any) -> None:
    token = jwt.encode(claims(rul=rules), SECRET)
    response = await client.get("/list/models", headers=bearer(token))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_users_made_before_users_had_rules_have_none(tmp_path: Path) -> None:
    """A state file of the first schema is migrated: its users keep working, rules ()."""
    path = tmp_path / "state.db"
    old = StateStore(path)
    old.register_schema(accounts.COMPONENT, accounts.MIGRATIONS[:1])
    await old.open()
    await old.execute(
        "INSERT INTO auth_users (name, password_hash, admin, created, password_changed)"
        " VALUES ('bob', 'h', 0, 0, 0)"
    )
    await old.aclose()
    new = StateStore(path)
    accounts.Accounts.register(new)
    await new.open()
    try:
        account = await accounts.Accounts(new).get("bob")
        assert account is not None
        assert account.user == User("bob", rules=())
    finally:
        await new.aclose()


def test_token_ttl_is_capped_at_24h() -> None:
    tokens = Tokens(SECRET, issuer=ISS, audience=AUD, ttl=3600)
    with pytest.raises(ValueError, match="24 h"):
        tokens.issue(User("bob"), ttl=25 * 3600)


def test_revocations_are_kept_only_while_the_token_could_be_used() -> None:
    tokens = Tokens(SECRET, issuer=ISS, audience=AUD, ttl=60)
    issued = tokens.issue(User("bob"))
    assert tokens.verify(issued.token).user.name == "bob"
    tokens.revoke("long-gone", time.time() - 3600)
    tokens.revoke(issued.jti, issued.expires_at)
    assert set(tokens.revoked) == {issued.jti}


async def test_jwks_accepts_rs256_tokens_of_its_issuer_only(
    make_client: MakeClient, tmp_path: Path
) -> None:
    key = _rs256_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    client = await make_client(
        auth="token", secret_key=SECRET, jwks=jwks, jwks_issuer="https://idp.example"
    )
    good = jwt.encode(
        claims(iss="https://idp.example", adm=True, rul=["nothing"]),
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    response = await client.get("/list/models", headers=bearer(good))
    assert response.status == 200
    # Never admin from outside, and no rules of a user of this server's.
    assert client.app[AUTH].tokens.verify(good).user == User("bob")
    for bad in (
        jwt.encode(claims(), key, algorithm="RS256", headers={"kid": "k1"}),  # our iss
        jwt.encode(claims(iss="https://idp.example"), _rs256_key(), algorithm="RS256"),
    ):
        assert (await client.get("/list/models", headers=bearer(bad))).status == 401
    assert load_jwks(jwks).keys[0].key_id == "k1"


def test_key_file_is_made_0600_once_and_refused_when_others_can_read_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "key"
    first = secret.load_or_create(path)
    assert len(first) >= secret.MIN_SECRET_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret.load_or_create(path) == first
    os.chmod(path, 0o640)
    with pytest.raises(secret.SecretError, match="chmod 600"):
        secret.load_or_create(path)
    with pytest.raises(secret.SecretError, match="at least 32"):
        secret.from_environment("short")


async def test_every_route_of_the_table_but_the_public_ones_needs_a_token(client: Any) -> None:
    """Generic over service/routes.py: a route added later is guarded without a list."""
    from service.routes import API_ROUTES

    public = {("GET", "/health"), ("POST", "/auth/login"), ("GET", "/openapi.json")}
    checked = 0
    for route in API_ROUTES:
        if (route.method, route.path) in public or route.path.startswith("/health"):
            continue
        path = re.sub(
            r"\{(\w+)(:[^}]*)?\}", lambda m: "model" if m[1] == "kind" else "x", route.path
        )
        for prefix in ("", "/v1"):
            response = await client.request(route.method, prefix + path)
            if prefix and response.status == 404:
                continue  # no /v1 alias on this build
            assert response.status == 401, (route.method, prefix + path, response.status)
            checked += 1
    assert checked >= len(API_ROUTES) - len(public)


async def test_pages_are_public_and_other_routes_outside_the_table_are_not(
    make_client: MakeClient,
) -> None:
    client = await make_client(auth="token", secret_key=SECRET, js=True)
    assert (await client.get("/api.js")).status == 200
    assert (await client.get("/ui")).status in (200, 301, 302, 307, 308)
    assert (await client.get("/openapi.json")).status == 200
    assert (await client.get("/no/such/route")).status == 404


async def test_user_routes_answer_501_without_auth(make_client: MakeClient) -> None:
    client = await make_client()
    for path in ("/auth/login", "/auth/registration", "/auth/logout", "/auth/password"):
        response = await client.post(path, json={"username": "a", "password": "b"})
        assert response.status == 501
        assert await response.json() == {"error": "Users need the server started with -auth token"}
    assert (await client.get("/auth/me")).status == 501
