"""/auth/*: registration, login, who am I, logout, password change."""

from __future__ import annotations

from aiohttp import web

from service.api.jsonio import json_response, ok, read_json_object
from service.api.keys import AUTH
from service.api.openapi import ERROR_SCHEMA, OK_SCHEMA, Body, Response, operation
from service.auth.guard import Guard, token_of, user_of
from service.auth.logins import Logins, token_body
from service.auth.passwords import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS
from service.auth.rules import MAX_RULE_CHARS, MAX_USER_RULES
from service.kernel.errors import Forbidden, NotAllowed, Unauthorized
from service.kernel.users import USERNAME, User

NEEDS_TOKEN_AUTH = "Users need the server started with -auth token"

CREDENTIALS = {
    "type": "object",
    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
    "required": ["username", "password"],
}
# What registration accepts, as the spec tells generated clients: a user name as
# service/kernel/users.py checks it, a password as service/auth/passwords.py does (its bound is in
# UTF-8 bytes; a quarter of it in characters always fits).
NEW_PASSWORD = {
    "type": "string",
    "minLength": MIN_PASSWORD_CHARS,
    "maxLength": MAX_PASSWORD_BYTES // 4,
}
# A user's own endpoint rules (docs/auth.md#a-users-own-rules).
USER_RULES = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": MAX_RULE_CHARS},
    "maxItems": MAX_USER_RULES,
}
NEW_CREDENTIALS = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "pattern": USERNAME.pattern},
        "password": NEW_PASSWORD,
        "rules": USER_RULES,
    },
    "required": ["username", "password"],
}
TOKEN = {
    "type": "object",
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"const": "Bearer"},
        "expires_in": {"type": "integer"},
    },
    "required": ["access_token", "token_type", "expires_in"],
}
USER_PROPERTIES = {
    "username": {"type": "string"},
    "admin": {"type": "boolean"},
    "rules": {"type": "array", "items": {"type": "string"}},
}
USER_SCHEMA = {
    "type": "object",
    "properties": USER_PROPERTIES,
    "required": ["username", "admin", "rules"],
}
NOT_ENABLED = "The server runs with -auth none"


def logins_of(request: web.Request) -> tuple[Guard, Logins]:
    guard = request.app.get(AUTH)
    if guard is None or guard.logins is None:
        raise NotAllowed(NEEDS_TOKEN_AUTH)
    return guard, guard.logins


def caller_of(request: web.Request) -> User:
    user = user_of(request)
    if user is None:  # only on public routes, which these are not
        raise Unauthorized("Authorization: Bearer <token> required")
    return user


@operation(
    "Create a user (open registration, or an admin's token)",
    tags=("auth",),
    responses={
        201: USER_SCHEMA,
        400: "The user name, password or rules are not acceptable",
        401: "No token (registration is closed)",
        403: "Registration is closed, or rules are given, and the caller is not an admin",
        409: "The user exists (also under another case), or the name was a deleted user's",
        429: Response(
            "Too many registrations from this address (without an admin's token)",
            {"application/json": ERROR_SCHEMA},
            headers={"Retry-After": {"type": "integer"}},
        ),
        501: NOT_ENABLED,
    },
    body=Body.json(NEW_CREDENTIALS),
)
async def registration(request: web.Request) -> web.Response:
    """Open registration: anyone; closed: an admin's token creates the user. Only an admin
    gives a user rules of their own (a regular expression is trusted code: one that
    backtracks badly would stall the server on that user's requests)."""
    guard, logins = logins_of(request)
    caller = guard.user_if_any(request)  # open registration is a public route
    admin = caller is not None and caller.admin
    if not guard.registration_open and not admin:  # closed: the guard asked for a token
        raise Forbidden("Registration is closed: only admins create users")
    body = await read_json_object(request)
    rules = body.get("rules", [])
    if rules != [] and not admin:
        raise Forbidden("Only an admin gives a user rules")
    user = await logins.create(
        body.get("username"),
        body.get("password"),
        rules=rules,
        address=None if admin else request.remote or "-",
    )
    guard.event(request, "user_created", user=user.name)
    return json_response(_user_json(user), status=201)


def _user_json(user: User) -> dict[str, object]:
    return {"username": user.name, "admin": user.admin, "rules": list(user.rules)}


@operation(
    "Log in: an access token for a user name and password",
    tags=("auth",),
    responses={
        200: TOKEN,
        400: "Not a user name and password",
        401: "Invalid username or password",
        429: Response(
            "Too many failed logins for this user or address",
            {"application/json": ERROR_SCHEMA},
            headers={"Retry-After": {"type": "integer"}},
        ),
        501: NOT_ENABLED,
    },
    body=Body.json(CREDENTIALS),
)
async def login(request: web.Request) -> web.Response:
    guard, logins = logins_of(request)
    body = await read_json_object(request)
    name = body.get("username")
    address = request.remote or "-"
    try:
        user, issued = await logins.login(name, body.get("password"), address)
    except Exception as exc:
        shown = name if isinstance(name, str) and len(name) <= 64 else "?"
        guard.event(request, "login_failed", user=shown, reason=type(exc).__name__)
        raise
    guard.event(request, "login", user=user.name, jti=issued.jti)
    return json_response(token_body(issued))


@operation(
    "The user of this token",
    tags=("auth",),
    responses={
        200: {
            **USER_SCHEMA,
            "properties": {**USER_PROPERTIES, "expires_at": {"type": "number"}},
        },
        501: NOT_ENABLED,
    },
)
async def me(request: web.Request) -> web.Response:
    logins_of(request)
    user = caller_of(request)
    _, expires_at = token_of(request)
    return json_response({**_user_json(user), "expires_at": expires_at})


@operation(
    "Revoke this token until it expires",
    tags=("auth",),
    responses={200: OK_SCHEMA, 501: NOT_ENABLED},
)
async def logout(request: web.Request) -> web.Response:
    guard, logins = logins_of(request)
    user = caller_of(request)
    jti, expires_at = token_of(request)
    await logins.logout(jti, expires_at)
    guard.event(request, "logout", user=user.name, jti=jti)
    return ok()


@operation(
    "Change the password; older tokens stop working",
    tags=("auth",),
    responses={
        200: TOKEN,
        400: "The current password is wrong or the new one is not acceptable",
        501: NOT_ENABLED,
    },
    body=Body.json(
        {
            "type": "object",
            "properties": {
                "password": {"type": "string"},
                "new_password": NEW_PASSWORD,
            },
            "required": ["password", "new_password"],
        }
    ),
)
async def password(request: web.Request) -> web.Response:
    """``{"password": current, "new_password": …}``; answers a fresh token, the old ones die."""
    guard, logins = logins_of(request)
    user = caller_of(request)
    body = await read_json_object(request)
    issued = await logins.change_password(user, body.get("password"), body.get("new_password"))
    guard.event(request, "password_changed", user=user.name)
    return json_response(token_body(issued))
