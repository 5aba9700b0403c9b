"""JSON in and out of the wire, with orjson. One place decides how bodies are parsed and written."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from service.errors import BadRequest, RequestTimeout

JSON_TYPE = "application/json"
_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_DUMP_OPTIONS)


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type=JSON_TYPE)


OK: dict[str, None] = {"error": None}


def ok() -> web.Response:
    return json_response(OK)


async def read_json(request: web.Request, *, default: Any = ...) -> Any:
    """Parse the request body as JSON; an empty body gives ``default`` when one is provided."""
    # Imported here: service.keys imports what imports this module.
    from service.keys import SETTINGS

    timeout = request.app[SETTINGS].body_timeout
    try:
        body = await asyncio.wait_for(request.read(), timeout)
    except asyncio.TimeoutError:
        raise RequestTimeout(
            f"Request body not received within {timeout:g} s (-body-timeout)"
        ) from None
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


def type_name(value: Any) -> str:
    """JSON's name for the type of a parsed value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
