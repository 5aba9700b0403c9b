"""create_app(settings): the whole service wired together. No I/O happens at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp_cors
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from service.auth import setup as auth_setup
from service.contexts import ContextStore
from service.errors import SetupError
from service.handlers.static import js_client, static_handler
from service.handlers.uploads import upload
from service.keys import (
    CURSORS,
    EXECUTOR,
    LABELS,
    METRICS,
    OPENAPI,
    READINESS,
    REGISTRY,
    SANDBOX,
    SETTINGS,
    STATE,
    STORE,
    TASKS,
    UPLOADS,
    WORKERS,
)
from service.middlewares import add_no_cache_headers, errors_middleware
from service.observability.gauges import core_gauges, task_gauges
from service.observability.metrics import Metrics
from service.observability.middleware import observe_middleware
from service.observability.ratelimit import RateLimit
from service.observability.readiness import Readiness
from service.observability.requestid import add_request_id_header
from service.openapi.generator import ApiSpec
from service.openapi.versions import versioned
from service.pipelines.wiring import install as install_pipelines
from service.plugins.base import Kind
from service.plugins.registry import Registry
from service.plugins.sources import spool
from service.routes import API_ROUTES, DOCS_ROUTES, UI_ROUTES
from service.sandbox import Sandbox, sweep_temporaries
from service.settings import Redirect, Settings
from service.state import StateError, StateStore
from service.state.labels import Labels
from service.state.location import StateLocationError, state_path
from service.state.restore import restore
from service.streaming import CursorStore, running
from service.tasks.executor import Executor, LocalExecutor
from service.tasks.manager import TaskManager
from service.tasks.repository import TaskRepository
from service.uploads import UploadDir
from service.workers import Workers

log = logging.getLogger(__name__)


def create_app(settings: Settings, registry: Registry | None = None) -> web.Application:
    """The application for ``settings``; ``registry`` replaces entry-point discovery (tests)."""
    metrics = Metrics(enabled=settings.metrics == "on")
    limit = RateLimit.from_settings(settings)
    guarded = auth_setup.needed(settings)
    # Issue 14: tokens, endpoint rules, allowed hosts, audit log (service/auth/).
    try:
        guard = auth_setup.build_guard(settings, API_ROUTES, limit) if guarded else None
    except auth_setup.AuthSetupError as exc:
        raise SetupError(str(exc)) from None
    # Every refusal of the handlers, and of the check it makes first, becomes the JSON
    # envelope. That check is the guard's admission (which checks the rate limit once it knows
    # the user), else the rate limit.
    check = guard.admit if guard is not None else limit.check if limit is not None else None
    errors = errors_middleware(check)
    middlewares = [
        # Outermost: request id, metrics, access log and audit line see every answer,
        # refusals included.
        observe_middleware(
            metrics,
            upload_handler=upload,
            access_log=settings.access_log == "on",
            audit=guard.audit_finished if guard is not None and guard.audit else None,
        ),
        errors,
    ]
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_size)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[READINESS] = Readiness()
    app.on_startup.append(app[READINESS].started)
    app.on_shutdown.append(app[READINESS].stopping)
    app.on_response_prepare.append(add_request_id_header)
    app[REGISTRY] = registry if registry is not None else Registry.from_entry_points()
    app[SANDBOX] = (
        # -auth token: each user's files under users/U/ (service/auth/scope.py)
        Sandbox(settings.upload_dir, per_user=settings.auth == "token")
        if settings.upload_dir is not None
        else None
    )
    app[STORE] = ContextStore(app[REGISTRY], max_labels=settings.max_labels)
    # The update spools' disk budget is one per process (service/plugins/sources/spool.py).
    spool.BUDGET.limit = settings.spool_max_bytes
    sandbox = app[SANDBOX]
    app[UPLOADS] = (
        UploadDir(sandbox, max_size=settings.upload_max_size) if sandbox is not None else None
    )
    app[CURSORS] = CursorStore(
        ttl=settings.iterkey_ttl,
        max_cursors=settings.iterkey_max,
        max_bytes=settings.iterkey_max_bytes,
    )
    app[STORE].on_context_close.append(_release_cursors(app[CURSORS]))
    app[WORKERS] = Workers(settings.module_workers, preload=app[REGISTRY].python_modules("module"))
    app[EXECUTOR] = _executor_for(settings, app[WORKERS])
    try:
        app[STATE] = StateStore(state_path(settings.state, settings.upload_dir))
    except StateLocationError as exc:
        raise SetupError(str(exc)) from None
    app.on_startup.append(_sweep_leftovers)
    TaskRepository.register(app[STATE])
    Labels.register(app[STATE])
    app[LABELS] = Labels(app[STATE])
    app[TASKS] = TaskManager(
        TaskRepository(app[STATE]),
        queue=settings.task_queue,
        running=settings.task_workers,
        ttl=settings.task_ttl,
    )
    # First of the shutdown hooks: tasks the stop cuts off are recorded as interrupted.
    app.on_shutdown.insert(0, _stopping_tasks)
    app.on_shutdown.append(_stop_workers)
    core_gauges(metrics, app[STORE], app[CURSORS], app[WORKERS])
    task_gauges(metrics, app[TASKS])
    # First in, last out: the state store is open before anything is restored from it and
    # closes after everything that writes to it.
    app.cleanup_ctx.append(_state)
    app.cleanup_ctx.append(_workers)
    app.cleanup_ctx.append(_executor)
    app.cleanup_ctx.append(_contexts)
    # Registered after _contexts so it is cleaned up first: cursors close before the
    # contexts they read from.
    app.cleanup_ctx.append(_cursors)
    # After _contexts, so tasks stop before the contexts they use close.
    app.cleanup_ctx.append(_tasks)
    # After the state store, executor and contexts: runs start once those are up and stop
    # (interrupted, retryable) before any of them closes.
    install_pipelines(app)
    if not settings.allow_caching:
        app.on_response_prepare.append(add_no_cache_headers)
    if guard is not None:
        auth_setup.install(app, guard)

    app.router.add_routes(API_ROUTES)
    # Every route again under /v1 (the unversioned paths stay for DFFML clients).
    app.router.add_routes(versioned(API_ROUTES))
    app[OPENAPI] = ApiSpec(API_ROUTES, app[REGISTRY], settings)
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
    return app


async def _contexts(app: web.Application) -> AsyncIterator[None]:
    """Preload the operator's plugins at start-up; close every plugin and context at shutdown."""
    store = app[STORE]
    try:
        for preload in app[SETTINGS].preloads:
            await store.configure(
                preload.kind,
                preload.plugin,
                preload.label,
                preload.config,
                resolve_path=_operator_path,
                from_cli=preload.from_cli,
            )
            await store.open_context(preload.kind, preload.label, preload.label)
            app[LABELS].preloaded(preload.kind, preload.plugin, preload.label, preload.config)
        # Then what clients configured before the last stop, where the preloads left room.
        await restore(store, app[LABELS], app[SANDBOX])
        yield
    finally:
        await store.aclose()


async def _state(app: web.Application) -> AsyncIterator[None]:
    store = app[STATE]
    try:
        await store.open()
    except StateError as exc:
        raise SetupError(f"-state: {exc}") from None
    try:
        yield
    finally:
        await store.aclose()


def _executor_for(settings: Settings, workers: Workers) -> Executor:
    """-executor: the local worker pool, or a Dask cluster (the optional extra, imported only
    when chosen; the CLI has checked it is installed)."""
    if settings.executor == "local":
        return LocalExecutor(workers)
    from service.tasks.dask_executor import DaskExecutor

    address = None if settings.executor == "dask" else settings.executor.removeprefix("dask://")
    return DaskExecutor(
        address,
        workers=settings.dask_workers,
        upload_dir=settings.upload_dir,
        connect_timeout=settings.dask_timeout,
    )


async def _executor(app: web.Application) -> AsyncIterator[None]:
    executor = app[EXECUTOR]
    await executor.start()
    try:
        yield
    finally:
        await executor.aclose()


async def _tasks(app: web.Application) -> AsyncIterator[None]:
    tasks = app[TASKS]
    await tasks.start()
    try:
        yield
    finally:
        await tasks.aclose()


async def _stopping_tasks(app: web.Application) -> None:
    app[TASKS].stopping()


async def _cursors(app: web.Application) -> AsyncIterator[None]:
    async with running(app[CURSORS]):
        yield


def _release_cursors(cursors: CursorStore) -> Callable[[Kind, str], Awaitable[None]]:
    async def release(kind: Kind, ctx_label: str) -> None:
        await cursors.release_owner((kind, ctx_label))

    return release


async def _sweep_leftovers(app: web.Application) -> None:
    """Half-written files a killed server left in the upload dir (never listed or served)."""
    sandbox = app[SANDBOX]
    if sandbox is not None:
        await asyncio.to_thread(sweep_temporaries, sandbox.root)


async def _stop_workers(app: web.Application) -> None:
    """Kill running module functions as shutdown begins: their requests answer 503 at once
    instead of holding shutdown up for as long as -module-timeout."""
    app[WORKERS].stop()


async def _workers(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[WORKERS].aclose()


def _operator_path(path: str) -> Path:
    """Paths the operator names (CLI, -config) may point anywhere; relative to the cwd."""
    return Path(path).expanduser().absolute()


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
