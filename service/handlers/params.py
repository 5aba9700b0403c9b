"""Parsing of URL parts shared by handlers."""

from __future__ import annotations

from aiohttp import web

from service.errors import BadRequest, NotFound
from service.plugins.base import KINDS, Kind

PLURALS = {kind + "s": kind for kind in KINDS}
# The largest offset a listing may skip: SQLite's INTEGER, beyond which the query itself fails.
OFFSET_MAX = 2**63 - 1


def kind(request: web.Request, name: str = "kind") -> Kind:
    value = request.match_info[name]
    for known in KINDS:
        if value == known:
            return known
    raise NotFound(f"Unknown plugin type {value!r} (use one of: {', '.join(KINDS)})")


def plural_kind(request: web.Request, name: str = "kinds") -> Kind:
    value = request.match_info[name]
    if value not in PLURALS:
        raise NotFound(f"Unknown plugin type {value!r} (use one of: {', '.join(PLURALS)})")
    return PLURALS[value]


def positive_int(request: web.Request, name: str, *, minimum: int = 1) -> int:
    raw = request.match_info[name]
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer >= {minimum}, got {raw!r}") from None
    if value < minimum:
        raise BadRequest(f"{name} must be an integer >= {minimum}, got {raw!r}")
    return value
