"""The HTTP surface in the app: the route table (and /v1), the OpenAPI document, api.js, the
dashboard and docs pages, -redirect, -static and CORS. Installed last: CORS wraps every route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_cors
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from service.api.keys import OPENAPI, REGISTRY, SETTINGS
from service.api.middlewares import add_no_cache_headers
from service.api.openapi.generator import ApiSpec
from service.api.openapi.versions import versioned
from service.kernel.errors import SetupError
from service.kernel.sandbox import Sandbox
from service.routes import API_ROUTES, DOCS_ROUTES, INFERENCE_ROUTES, UI_ROUTES
from service.settings import Redirect
from service.web.static_files import js_client, static_handler


def install(app: web.Application) -> None:
    settings = app[SETTINGS]
    if not settings.allow_caching:
        app.on_response_prepare.append(add_no_cache_headers)
    app.router.add_routes(API_ROUTES)
    # Every route again under /v1 (the unversioned paths stay for DFFML clients).
    app.router.add_routes(versioned(API_ROUTES))
    # The Open Inference Protocol's paths carry their own version: no /v1 alias.
    app.router.add_routes(INFERENCE_ROUTES)
    app[OPENAPI] = ApiSpec(API_ROUTES, app[REGISTRY], settings, own_version=INFERENCE_ROUTES)
    if settings.js:
        app.router.add_get("/api.js", js_client)
    if settings.ui:
        app.router.add_routes(UI_ROUTES)
    app.router.add_routes(DOCS_ROUTES)
    for redirect in settings.redirects:
        _add_redirect(app, redirect)
    if settings.static is not None:
        app.router.add_get("/{path:.*}", static_handler(Sandbox(settings.static)))
    if settings.cors_domains:
        _enable_cors(app, settings.cors_domains)


def _add_redirect(app: web.Application, redirect: Redirect) -> None:
    where = f"-redirect {redirect.method} {redirect.source}"
    # aiohttp only notices a clash with the resource added last; an earlier route would silently
    # win over the redirect, so look for one.
    taken = any(
        route.method in (redirect.method, hdrs.METH_ANY)
        and route.resource is not None
        and route.resource.canonical == redirect.source
        for route in app.router.routes()
    )
    if taken:
        raise SetupError(f"{where}: already answered by the API or another -redirect")
    try:
        app.router.add_route(redirect.method, redirect.source, _redirect_to(redirect))
    except ValueError as exc:  # not a usable route path
        raise SetupError(f"{where}: {exc}") from None


def _redirect_to(redirect: Redirect) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        # 307, as the original answers: the client repeats the method and body (a POST stays one).
        raise web.HTTPTemporaryRedirect(redirect.destination)

    return handler


def _enable_cors(app: web.Application, domains: tuple[str, ...]) -> None:
    options: dict[str, Any] = {
        domain: aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
            allow_credentials=False, expose_headers="*", allow_headers="*", allow_methods="*"
        )
        for domain in domains
    }
    cors = aiohttp_cors.setup(app, defaults=options)
    for route in list(app.router.routes()):
        cors.add(route)
    app.on_response_prepare.append(_cors_for_unrouted(domains))


def _cors_for_unrouted(
    domains: tuple[str, ...],
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """Let a listed origin read the JSON 404/405 of a path or method no route answers.

    aiohttp-cors only handles requests that reached one of its routes; without this a browser
    client that calls a wrong URL sees an opaque CORS failure instead of the error envelope.
    """
    allowed = frozenset(domains)

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get(hdrs.ORIGIN)
        if (
            origin is None
            or hdrs.ACCESS_CONTROL_ALLOW_ORIGIN in response.headers
            or request.match_info.http_exception is None  # routed: aiohttp-cors decided
            or not ("*" in allowed or origin in allowed)
        ):
            return
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        response.headers.add(hdrs.VARY, hdrs.ORIGIN)

    return add
