"""/metrics: Prometheus' text format, unless the server runs with -metrics off."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from service.api.keys import METRICS
from service.api.openapi import Response, operation
from service.kernel.errors import NotFound


@operation(
    "Metrics in Prometheus' text format",
    tags=("meta",),
    responses={
        200: Response("The metrics", {CONTENT_TYPE_LATEST.split(";")[0]: {"type": "string"}}),
        404: "The server runs with -metrics off",
    },
)
async def metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    if not metrics.enabled:
        raise NotFound("Metrics are off (-metrics off)")
    response = web.Response(body=metrics.exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
