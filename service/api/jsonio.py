"""JSON bodies in and out of aiohttp: the one place request bodies are parsed and responses written.

The encoding itself (orjson, its options) is :mod:`service.kernel.jsoncodec`, which the engine
uses too for what it writes to files.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from service.kernel.errors import BadRequest, RequestTimeout
from service.kernel.jsoncodec import dumps, type_name

JSON_TYPE = "application/json"


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type=JSON_TYPE)


OK: dict[str, None] = {"error": None}


def ok() -> web.Response:
    return json_response(OK)


async def read_body(request: web.Request) -> bytes:
    """The raw request body, within -body-timeout and -max-body-size."""
    # Imported here: service.api.keys imports what imports this module.
    from service.api.keys import SETTINGS

    timeout = request.app[SETTINGS].body_timeout
    try:
        return await asyncio.wait_for(request.read(), timeout)
    except asyncio.TimeoutError:
        raise RequestTimeout(
            f"Request body not received within {timeout:g} s (-body-timeout)"
        ) from None


async def read_json(request: web.Request, *, default: Any = ...) -> Any:
    """Parse the request body as JSON; an empty body gives ``default`` when one is provided."""
    body = await read_body(request)
    if not body.strip():
        if default is not ...:
            return default
        raise BadRequest("Request body must be JSON, got an empty body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON body: {exc}") from None


async def read_json_object(request: web.Request, *, default: Any = ...) -> dict[str, Any]:
    value = await read_json(request, default=default)
    if not isinstance(value, dict):
        raise BadRequest(f"Request body must be a JSON object, got {type_name(value)}")
    return value


async def read_json_list(request: web.Request) -> list[Any]:
    value = await read_json(request)
    if not isinstance(value, list):
        raise BadRequest(f"Request body must be a JSON list, got {type_name(value)}")
    return value
