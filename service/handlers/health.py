"""Liveness for load balancers and scripts."""

from __future__ import annotations

from aiohttp import web

from service import __version__
from service.jsonio import json_response
from service.openapi import operation
from service.openapi.versions import API_VERSION

HEALTH_SCHEMA = {
    "type": "object",
    "properties": {
        "status": {"const": "ok"},
        "version": {"type": "string", "description": "The server's release"},
        "api_version": {"type": "string", "description": "The API version (paths under /v1)"},
    },
    "required": ["status", "version", "api_version"],
}


@operation(
    "The server answers, with its release and API version",
    tags=("health",),
    responses={200: HEALTH_SCHEMA},
)
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "version": __version__, "api_version": API_VERSION})
