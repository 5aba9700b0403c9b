"""The outermost middleware: request id, metrics and the access log of every request.

It runs outside the error middleware, so it sees every answer as the client gets it (refusals
included) and sends unprepared responses itself: the bytes and the time it records are those of
the whole response. What it needs of a route (its template, its metric children) is looked up
once per route and kept.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_urldispatcher import AbstractRoute

from service.observability.logs import AccessLog
from service.observability.metrics import UNMATCHED, Metrics, RouteMetrics
from service.observability.requestid import HEADER, REQUEST_ID, current, request_id


class _Route:
    __slots__ = ("metrics", "template", "upload")

    def __init__(self, template: str, metrics: RouteMetrics | None, upload: bool) -> None:
        self.template = template
        self.metrics = metrics
        self.upload = upload


def observe_middleware(
    metrics: Metrics, *, upload_handler: Handler | None = None, access_log: bool = True
) -> Middleware:
    """``upload_handler``: the handler whose request bodies count as upload bytes;
    ``access_log``: write a line per request to the ``service.access`` logger (at INFO)."""
    access = AccessLog()
    routes: dict[tuple[AbstractRoute | None, str], _Route] = {}
    enabled = metrics.enabled
    in_flight = metrics.in_flight
    clock = time.perf_counter

    def route_of(request: web.Request) -> _Route:
        match_info = request.match_info
        route = None if match_info.http_exception is not None else match_info.route
        key = (route, request.method)
        found = routes.get(key)
        if found is None:
            resource = route.resource if route is not None else None
            template = resource.canonical if resource is not None else UNMATCHED
            found = _Route(
                template,
                metrics.route(template, request.method) if enabled else None,
                route is not None
                and upload_handler is not None
                and route.handler is upload_handler,
            )
            if len(routes) < 10_000:  # routes are few; methods of unmatched requests are not
                routes[key] = found
        return found

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request_id(request.headers.get(HEADER))
        request[REQUEST_ID] = rid
        token = current.set(rid)
        start = clock()
        status = 500
        sent = 0
        if enabled:
            in_flight.inc()
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                try:
                    await response.prepare(request)
                    await response.write_eof()
                except ConnectionResetError:
                    pass  # the client left; aiohttp's own attempt after us is a no-op
            sent = response.body_length
            return response
        except web.HTTPException as exc:  # redirects: aiohttp sends them
            status = exc.status
            raise
        finally:
            elapsed = clock() - start
            route = route_of(request)
            if enabled:
                in_flight.dec()
                children = route.metrics
                if children is not None:
                    children.count(status)
                    children.duration.observe(elapsed)
                    children.bytes.inc(sent)
                    if route.upload:
                        metrics.upload_bytes.inc(request.content.total_bytes)
            if access_log and access.enabled:
                # raw_path: as sent, percent-encoded, so a %0A cannot forge a log line.
                access.write(
                    rid,
                    request.remote or "-",
                    request.method,
                    request.raw_path,
                    route.template,
                    status,
                    sent,
                    elapsed,
                )
            current.reset(token)

    return observe
