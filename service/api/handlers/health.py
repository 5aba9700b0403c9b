"""Health for load balancers, orchestrators and scripts: /health, /health/live, /health/ready."""

from __future__ import annotations

from aiohttp import web

from service import __version__
from service.api.jsonio import json_response
from service.api.keys import READINESS
from service.api.openapi import operation
from service.api.openapi.versions import API_VERSION
from service.kernel.errors import Unavailable

HEALTH_SCHEMA = {
    "type": "object",
    "properties": {
        "status": {"const": "ok"},
        "version": {"type": "string", "description": "The server's release"},
        "api_version": {"type": "string", "description": "The API version (paths under /v1)"},
    },
    "required": ["status", "version", "api_version"],
}


def _status(value: str) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {"status": {"const": value}},
        "required": ["status"],
    }


@operation(
    "The server answers, with its release and API version",
    tags=("health",),
    responses={200: HEALTH_SCHEMA},
)
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "version": __version__, "api_version": API_VERSION})


@operation(
    "Liveness: the process answers (never rate limited)",
    tags=("health",),
    responses={200: _status("live")},
    common=False,
)
async def live(request: web.Request) -> web.Response:
    return json_response({"status": "live"})


@operation(
    "Readiness: 200 once start-up (preloads, state restore) is done, 503 before and once"
    " shutdown begins",
    tags=("health",),
    responses={200: _status("ready"), 503: "Not ready: starting, or shutting down"},
    common=False,
)
async def ready(request: web.Request) -> web.Response:
    readiness = request.app[READINESS]
    if not readiness.ready:
        raise Unavailable(f"Not ready: {readiness.reason}")
    return json_response({"status": "ready"})
