"""/auth/users/{username}: an admin disables, enables or deletes a user.

The user's tokens stop working at once (service/auth/tokens.py ``block``); a deleted user's
name stays taken, so its files (users/NAME/) never pass to a new account.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.api.handlers.auth import NOT_ENABLED, caller_of, logins_of
from service.api.jsonio import json_response
from service.api.openapi import operation
from service.auth.accounts import ACTIVE, DELETED, DISABLED
from service.kernel.errors import Forbidden

ONLY_ADMINS = "Only admins manage users"
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string"},
        "status": {"enum": [ACTIVE, DISABLED, DELETED]},
    },
    "required": ["username", "status"],
}
RESPONSES: dict[int, dict[str, Any] | str] = {
    200: STATUS_SCHEMA,
    403: "The caller is not an admin",
    404: "No such user (or deleted already)",
    501: NOT_ENABLED,
}


async def _set(request: web.Request, status: str, event: str) -> web.Response:
    guard, logins = logins_of(request)
    if not caller_of(request).admin:
        raise Forbidden(ONLY_ADMINS)
    name = request.match_info["username"]
    await logins.set_status(name, status)
    guard.event(request, event, user=caller_of(request).name, target=name)
    return json_response({"username": name, "status": status})


@operation(
    "Disable a user: no login, every token refused at once", tags=("auth",), responses=RESPONSES
)
async def disable(request: web.Request) -> web.Response:
    return await _set(request, DISABLED, "user_disabled")


@operation("Enable a disabled user again", tags=("auth",), responses=RESPONSES)
async def enable(request: web.Request) -> web.Response:
    return await _set(request, ACTIVE, "user_enabled")


@operation(
    "Delete a user: tokens refused at once, the name never given again",
    tags=("auth",),
    responses=RESPONSES,
)
async def delete(request: web.Request) -> web.Response:
    return await _set(request, DELETED, "user_deleted")
