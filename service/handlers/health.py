"""Liveness for load balancers and scripts."""

from __future__ import annotations

from aiohttp import web

from service import __version__
from service.jsonio import json_response


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "version": __version__})
