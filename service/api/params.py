"""Parsing of URL parts shared by handlers."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from service.kernel.errors import BadRequest, NotFound
from service.sdk.base import KINDS, Kind

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


# How the listing routes word a bad limit or offset; each route keeps its own (clients and tests
# match the text). Placeholders: name, minimum, maximum, text.
INTEGER_FROM_TO = "'{name}' must be an integer from {minimum} to {maximum}, got {text!r}"
WHOLE_BETWEEN = "'{name}' must be a whole number between {minimum} and {maximum}, got {text!r}"


def query_integer(
    query: Mapping[str, str],
    name: str,
    *,
    default: int,
    minimum: int,
    maximum: int,
    message: str = INTEGER_FROM_TO,
) -> int:
    """``query[name]`` as an integer in [minimum, maximum] (``default`` when absent), else 400
    ``message``. Only ASCII decimal digits count: no sign, spaces, underscores or other scripts'
    digits (``int()`` would take ``" 5"``, ``"1_0"`` and ``"٣"``; ``"²"`` passes ``isdigit``)."""
    text = query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not minimum <= int(text) <= maximum:
        raise BadRequest(message.format(name=name, minimum=minimum, maximum=maximum, text=text))
    return int(text)
