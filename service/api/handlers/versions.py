"""Model versions and aliases: list them, point an alias at one (docs/inference.md#versions)."""

from __future__ import annotations

from aiohttp import web

from service.api.jsonio import json_response, read_json_object
from service.api.keys import STORE, VERSIONS
from service.api.openapi import Body, operation
from service.api.openapi.shapes import NO_MODEL
from service.engine import versions
from service.sdk.base import ModelContext

_VERSION = {
    "type": "object",
    "properties": {
        "version": {"type": "integer"},
        "trained": {"type": "string"},
        "sources": {"type": "array", "items": {"type": "string"}},
        "score": {"type": ["number", "null"]},
    },
    "required": ["version", "trained", "sources"],
}
VERSIONS_SCHEMA = {
    "type": "object",
    "properties": {
        "versions": {"type": "array", "items": _VERSION},
        "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
    "required": ["versions", "aliases"],
}


async def model(request: web.Request, label: str) -> ModelContext:
    """The model context ``label`` names: ``ctx``, or ``ctx@version`` / ``ctx@alias``."""
    return await versions.model(request.app[STORE], request.app[VERSIONS], label)


@operation(
    "The versions kept of a model with a location, and its aliases",
    tags=("models",),
    responses={200: VERSIONS_SCHEMA, 404: NO_MODEL},
)
async def list_versions(request: web.Request) -> web.Response:
    context = request.app[STORE].model(request.match_info["ctx"])
    return json_response(await request.app[VERSIONS].listing(context))


@operation(
    "Point an alias (champion, ...) at a version; 'latest' moves with each training",
    tags=("models",),
    params={"alias": {"type": "string", "pattern": versions.ALIAS.pattern}},
    body=Body.json(
        {"type": "object", "properties": {"version": {"type": "integer"}}, "required": ["version"]}
    ),
    responses={
        200: VERSIONS_SCHEMA,
        400: "Not an alias name, or a model without a location",
        403: "The model is shared by the operator: only admins change it",
        404: NO_MODEL + ", or no such version",
    },
)
async def set_alias(request: web.Request) -> web.Response:
    # Moving an alias changes what every client of the model predicts with: as training does,
    # it is refused to a user when the model is shared.
    context = request.app[STORE].changeable_model(request.match_info["ctx"])
    body = await read_json_object(request)
    answer = await request.app[VERSIONS].alias(
        context, request.match_info["alias"], body.get("version")
    )
    return json_response(answer)
