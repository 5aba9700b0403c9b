"""The engine in the app: plugins, contexts, cursors, workers, the executor, state and tasks.

The order of the cleanup contexts is the order things open (and the reverse of how they close):
the state store first, then workers, the executor, the contexts (preloads and restored labels),
the cursors over them, and the tasks that use all of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from service.api.keys import (
    CURSORS,
    EXECUTOR,
    HOSTS,
    LABELS,
    REGISTRY,
    SANDBOX,
    SETTINGS,
    STATE,
    STORE,
    TASKS,
    UPLOADS,
    WORKERS,
)
from service.contexts import ContextStore
from service.engine.cursors import CursorStore, running
from service.engine.state import StateError, StateStore
from service.engine.state.hosts import Hosts
from service.engine.state.labels import Labels
from service.engine.state.location import StateLocationError, state_path
from service.engine.state.restore import restore
from service.engine.tasks.executor import Executor, LocalExecutor
from service.engine.tasks.manager import TaskManager
from service.engine.tasks.repository import TaskRepository
from service.engine.uploads import UploadDir
from service.engine.workers import Workers
from service.kernel.errors import SetupError
from service.kernel.sandbox import Sandbox, sweep_temporaries
from service.plugins.sources import spool
from service.sdk.base import Kind
from service.settings import Settings

log = logging.getLogger(__name__)


def install(app: web.Application) -> None:
    """Needs app[SETTINGS] and app[REGISTRY] (set by create_app)."""
    settings = app[SETTINGS]
    app[SANDBOX] = (
        # -auth token: each user's files under users/U/ (service/kernel/scope.py)
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
    Hosts.register(app[STATE])
    app[HOSTS] = Hosts(app[STATE])
    app[LABELS] = Labels(app[STATE])
    tasks = TaskRepository(app[STATE], app[HOSTS])
    app[HOSTS].sweepers.append(tasks.interrupt_unfinished)
    app[TASKS] = TaskManager(
        tasks,
        queue=settings.task_queue,
        running=settings.task_workers,
        ttl=settings.task_ttl,
    )
    # Early among the shutdown hooks (after readiness): tasks the stop cuts off are recorded as
    # interrupted.
    app.on_shutdown.insert(0, _stopping_tasks)
    app.on_shutdown.append(_stop_workers)
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
    hosts, beating = app[HOSTS], None
    try:
        if hosts.shared:  # several servers on one store: say this one is here
            await hosts.beat()
            beating = asyncio.create_task(hosts.keep_beating(), name="state-hosts")
        yield
    finally:
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            try:
                await hosts.leave()
            except Exception:  # the database is gone: the others find this host gone later
                log.warning("cannot leave the shared state store", exc_info=True)
        await store.aclose()


def _executor_for(settings: Settings, workers: Workers) -> Executor:
    """-executor: the local worker pool, or a Dask cluster (the optional extra, imported only
    when chosen; the CLI has checked it is installed)."""
    if settings.executor == "local":
        return LocalExecutor(workers)
    from service.engine.tasks.dask_executor import DaskExecutor

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
