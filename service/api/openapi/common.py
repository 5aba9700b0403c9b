"""Statuses any route may answer, whatever its handler does: added to every operation.

A layer that can refuse any request (a middleware: rate limit, auth, rules) lists its refusal
here once, instead of every route declaring it. ``applies`` decides from the running server's
settings whether the status can happen at all, so the spec of a server without -rate-limit does
not promise a 429 it never sends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from service.settings import Settings


@dataclasses.dataclass(frozen=True)
class CommonError:
    status: int
    description: str
    applies: Callable[[Settings], bool] = lambda settings: True
    # Response headers sent with it: name -> (description, schema).
    headers: tuple[tuple[str, str], ...] = ()
    # Only on operations that read a request body (413 from the body size limit).
    needs_body: bool = False


COMMON_ERRORS: list[CommonError] = [
    CommonError(
        413, "The request body is larger than -max-body-size or the upload limit", needs_body=True
    ),
    CommonError(
        429,
        "More requests than -rate-limit allows from this client; retry after Retry-After seconds",
        applies=lambda settings: settings.rate_limit is not None,
        headers=(("Retry-After", "Seconds until a request will be accepted again"),),
    ),
    CommonError(500, "A bug in the server or a plugin: the traceback is in the server's log"),
    # Issue 14 (docs/auth.md): the guard middleware.
    CommonError(
        400,
        "The Host header is not one of -allowed-hosts",
        applies=lambda settings: bool(getattr(settings, "allowed_hosts", ())),
    ),
    CommonError(
        401,
        "No Bearer token, or one that is malformed, expired, tampered or revoked (-auth token)",
        applies=lambda settings: getattr(settings, "auth", "none") == "token",
        headers=(("WWW-Authenticate", 'Bearer, or Bearer error="invalid_token"'),),
    ),
    CommonError(
        403,
        "Forbidden by the server's rules (-rule), or a shared resource only admins change",
        applies=lambda settings: (
            bool(getattr(settings, "rule", ())) or getattr(settings, "auth", "none") == "token"
        ),
    ),
]
