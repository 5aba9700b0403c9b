"""The one place exceptions become the JSON error envelope, plus response headers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from service.api.headers import check_headers
from service.api.jsonio import json_response
from service.kernel.errors import ServiceError

log = logging.getLogger(__name__)

NO_CACHE = {
    "Pragma": "no-cache",
    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
    "Expires": "-1",
}


def errors_middleware(
    check: Callable[[web.Request], None] | None = None,
) -> Middleware:
    """The error middleware; request headers that are not text are refused first
    (service/api/headers.py); ``check`` (the auth guard's admission, else the rate limit) is
    called on each request first, inside it, so its refusals become the envelope too without
    a middleware layer of their own. Context variables it sets (the caller's scope) need no
    reset: aiohttp runs each request in a task of its own, with its own copy of the context
    (web_protocol.py, aiohttp#3406), which ends with the request."""

    @web.middleware
    async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            check_headers(request)
            if check is not None:
                check(request)
            return await handler(request)
        except ServiceError as exc:
            response = json_response({"error": exc.message}, status=exc.status)
            if exc.headers:
                response.headers.update(exc.headers)
            return response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise  # redirects keep aiohttp's own response
            response = json_response({"error": exc.text or exc.reason}, status=exc.status)
            for name in ("Allow", "Location", "Retry-After"):
                if name in exc.headers:
                    response.headers[name] = exc.headers[name]
            return response
        except web.RequestPayloadError as exc:
            # The body cannot be read as sent (Content-Encoding it does not have, broken
            # chunking): the client's fault, whichever handler was reading it.
            detail = getattr(exc.__cause__, "message", None) or str(exc)
            return json_response({"error": f"Invalid request body: {detail}"}, status=400)
        except Exception:
            log.exception("Unhandled error on %s %s", request.method, request.path)
            return json_response({"error": "Internal Server Error"}, status=500)

    return error_middleware


# Without a check: for apps that limit nothing, and tests.
error_middleware = errors_middleware()


async def add_no_cache_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: covers streamed, static and error responses alike."""
    response.headers.update(NO_CACHE)
