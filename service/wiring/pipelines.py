"""Pipelines in the app: their schema in the state store, and a runner while the app runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from service.api.keys import EXECUTOR, HOSTS, PIPELINES, SANDBOX, SETTINGS, STATE, STORE
from service.engine.pipelines import repository
from service.engine.pipelines.runner import Runner


def install(app: web.Application) -> None:
    """Call in create_app after the state store and the executor are set up."""
    repository.register(app[STATE])
    sandbox = app[SANDBOX]
    if sandbox is None:  # pipelines read and write files: they need -upload-dir
        app[PIPELINES] = None
        return
    runs = repository.Repository(app[STATE], app[HOSTS])
    app[HOSTS].sweepers.append(runs.interrupt_all)
    app[PIPELINES] = Runner(
        runs,
        app[STORE],
        sandbox,
        app[EXECUTOR],
        timeout=app[SETTINGS].module_timeout,
    )
    app.on_shutdown.append(_stop)
    app.cleanup_ctx.append(_runner)


async def _runner(app: web.Application) -> AsyncIterator[None]:
    runner = app[PIPELINES]
    assert runner is not None
    await runner.start()
    try:
        yield
    finally:
        await runner.stop()


async def _stop(app: web.Application) -> None:
    """As shutdown begins: running runs end FAILED 'interrupted' (retryable after restart)."""
    runner = app[PIPELINES]
    if runner is not None:
        await runner.stop()
