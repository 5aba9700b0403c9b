"""The outermost middleware: request id, metrics, the access log and the audit line of every
request.

It runs outside the error middleware, so it sees every answer as the client gets it (refusals
included) and sends unprepared responses itself: the bytes and the time it records are those of
the whole response. What it needs of a route (its template, its metric children) is looked up
once per route and kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_urldispatcher import AbstractRoute

from service.observability.logs import AccessLog
from service.observability.metrics import UNMATCHED, Metrics, RouteMetrics
from service.observability.requestid import HEADER, REQUEST_ID, current, request_id

# (request, status, body bytes or None, seconds, request id): the audit log's hand-over.
Finished = Callable[[web.Request, int, "int | None", float, str], None]


class _Route:
    __slots__ = ("metrics", "template", "upload")

    def __init__(self, template: str, metrics: RouteMetrics | None, upload: bool) -> None:
        self.template = template
        self.metrics = metrics
        self.upload = upload


def observe_middleware(
    metrics: Metrics,
    *,
    upload_handler: Handler | None = None,
    access_log: bool = True,
    audit: Finished | None = None,
) -> Middleware:
    """``upload_handler``: the handler whose request bodies count as upload bytes;
    ``access_log``: write a line per request to the ``service.access`` logger (at INFO);
    ``audit``: called with each answer (the audit log's line, -audit-log), its size the body's
    as the handler made it (what was written when it streamed)."""
    access = AccessLog()
    routes: dict[tuple[AbstractRoute | None, str], _Route] = {}
    enabled = metrics.enabled
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

    def finish(
        rid: str,
        request: web.Request,
        route: _Route,
        status: int,
        sent: int,
        start: float,
        body: int | None,
    ) -> None:
        elapsed = clock() - start
        if enabled:
            metrics.in_flight -= 1
            numbers = route.metrics
            if numbers is not None:
                numbers.record(status, elapsed, sent)
                if route.upload:
                    metrics.upload_bytes += request.content.total_bytes
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
        if audit is not None:
            audit(request, status, body, elapsed, rid)

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request_id(request.headers.get(HEADER))
        request[REQUEST_ID] = rid
        current.set(rid)  # for log lines; no reset: the request's task has its own context
        start = clock()
        if enabled:
            metrics.in_flight += 1
        status = 500
        sent = 0
        body: int | None = None
        deferred = False
        try:
            response = await handler(request)
            status = response.status
            if response.prepared:  # streamed by the handler: what it wrote
                body = response.body_length
            else:
                if isinstance(response, web.Response):
                    # Sent here (preparing a Response twice is harmless; aiohttp's own
                    # attempt after us finds it done), so bytes and time are the whole answer.
                    try:
                        await response.prepare(request)
                        await response.write_eof()
                    except ConnectionResetError:
                        pass  # the client left
                    if audit is not None:  # prepare() set it, unless the body is chunked
                        length = response.headers.get(hdrs.CONTENT_LENGTH)
                        body = int(length) if length is not None else None
                else:
                    body = response.content_length  # a FileResponse's: None until it is sent
                    # A FileResponse cannot be prepared twice: aiohttp sends it after us, in
                    # this request's own task; count it once that task is done.
                    deferred = _finish_later(
                        lambda: finish(
                            rid,
                            request,
                            route_of(request),
                            status,
                            _file_bytes(response),
                            start,
                            body,
                        )
                    )
            sent = response.body_length
            return response
        except web.HTTPException as exc:  # redirects: aiohttp sends them
            status = exc.status
            raise
        finally:
            if not deferred:
                finish(rid, request, route_of(request), status, sent, start, body)

    return observe


def _finish_later(callback: Callable[[], None]) -> bool:
    task = asyncio.current_task()
    if task is None:
        return False
    task.add_done_callback(lambda _: callback())
    return True


def _file_bytes(response: web.StreamResponse) -> int:
    """Bytes a FileResponse sent: sendfile() bypasses the writer's count (headers only then),
    the fallback for TLS writes through it (headers and body)."""
    counted, body = response.body_length, response.content_length or 0
    return counted + body if counted < body else counted
