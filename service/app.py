"""create_app(settings): the whole service wired together. No I/O happens at import.

The middlewares come first (they must exist before the application); then each capability joins
the app the same way, through ``install(app)`` of its module in service/wiring/, in order.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from service.api.handlers.uploads import upload
from service.api.keys import AUTH, METRICS, REGISTRY, SETTINGS
from service.api.middlewares import errors_middleware
from service.api.openapi.versions import unprefixed
from service.auth import crosssite
from service.kernel.errors import SetupError
from service.observability.metrics import Metrics
from service.observability.middleware import observe_middleware
from service.observability.ratelimit import RateLimit
from service.plugins.registry import Registry
from service.routes import API_ROUTES, INFERENCE_ROUTES
from service.settings import Settings
from service.wiring import auth, engine, http, observability, pipelines

# In this order: the engine's objects exist before what uses them, the HTTP surface is last
# (CORS wraps every route added before it).
CAPABILITIES = (engine, pipelines, observability, auth, http)
# What the error middleware calls on each request before its handler (a refusal raises).
Check = Callable[[web.Request], None]


def create_app(settings: Settings, registry: Registry | None = None) -> web.Application:
    """The application for ``settings``; ``registry`` replaces entry-point discovery (tests)."""
    metrics = Metrics(enabled=settings.metrics == "on")
    limit = RateLimit.from_settings(settings)
    # Tokens, endpoint rules, allowed hosts, audit log (service/auth/).
    try:
        routes = [*API_ROUTES, *unprefixed(INFERENCE_ROUTES)]
        guard = auth.build_guard(settings, routes, limit) if auth.needed(settings) else None
    except auth.AuthSetupError as exc:
        raise SetupError(str(exc)) from None
    # Every refusal of the handlers, and of the check it makes first, becomes the JSON
    # envelope. That check is the guard's admission (which checks the rate limit once it knows
    # the user), else the rate limit.
    check: Check | None = (
        guard.admit if guard is not None else limit.check if limit is not None else None
    )
    # -auth none: cross-site requests and foreign Host names refused first (crosssite.py).
    cross_site = crosssite.from_settings(settings)
    if cross_site is not None:
        check = _both(cross_site.check, check)
    middlewares = [
        # Outermost: request id, metrics, access log and audit line see every answer,
        # refusals included.
        observe_middleware(
            metrics,
            upload_handler=upload,
            access_log=settings.access_log == "on",
            audit=guard.audit_finished if guard is not None and guard.audit else None,
        ),
        errors_middleware(check),
    ]
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_size)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[REGISTRY] = registry if registry is not None else Registry.from_entry_points()
    if guard is not None:
        app[AUTH] = guard
    for capability in CAPABILITIES:
        capability.install(app)
    return app


def _both(first: Check, then: Check | None) -> Check:
    """``first``, then ``then`` (when there is one), as the error middleware's one check."""
    if then is None:
        return first

    def check(request: web.Request) -> None:
        first(request)
        then(request)

    return check
