"""The API contract over HTTP: /openapi.json (and the pages that render it)."""

from __future__ import annotations

from aiohttp import web

from service.keys import OPENAPI
from service.openapi import Response, operation


@operation(
    "This API's OpenAPI 3.1 document",
    tags=("meta",),
    responses={200: Response("The spec", {"application/json": {"type": "object"}})},
)
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI].json(), content_type="application/json")
