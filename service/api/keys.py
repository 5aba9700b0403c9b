"""Typed application state: every web.AppKey the app uses, and nothing else.

It imports nothing of the service at run time (the types are for the checker only), so any module
of the HTTP layer can use the keys without loading the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from service.api.openapi.generator import ApiSpec
    from service.auth.guard import Guard
    from service.contexts import ContextStore
    from service.engine.cursors import CursorStore
    from service.engine.pipelines.runner import Runner
    from service.engine.state import StateStore
    from service.engine.state.hosts import Hosts
    from service.engine.state.labels import Labels
    from service.engine.tasks.executor import Executor
    from service.engine.tasks.manager import TaskManager
    from service.engine.uploads import UploadDir
    from service.engine.workers import Workers
    from service.kernel.sandbox import Sandbox
    from service.observability.metrics import Metrics
    from service.observability.readiness import Readiness
    from service.plugins.registry import Registry
    from service.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
REGISTRY: web.AppKey[Registry] = web.AppKey("registry")
STORE: web.AppKey[ContextStore] = web.AppKey("store")
CURSORS: web.AppKey[CursorStore] = web.AppKey("cursors")
# None when the server runs without -upload-dir.
SANDBOX: web.AppKey[Sandbox | None] = web.AppKey("sandbox")
# The upload directory's files (/service/upload, /service/files); None without -upload-dir.
UPLOADS: web.AppKey[UploadDir | None] = web.AppKey("uploads")
# Worker processes that run module functions.
WORKERS: web.AppKey[Workers] = web.AppKey("workers")
# The durable state store (SQLite, -state); opened before the contexts are restored.
STATE: web.AppKey[StateStore] = web.AppKey("state")
# The servers sharing the state store (service/engine/state/hosts.py).
HOSTS: web.AppKey[Hosts] = web.AppKey("hosts")
# Where long work runs (the local worker pool; a Dask cluster with -executor).
EXECUTOR: web.AppKey[Executor] = web.AppKey("executor")
# The OpenAPI document of this server (/openapi.json, /docs, /redoc), built on first use.
OPENAPI: web.AppKey[ApiSpec] = web.AppKey("openapi")
# Prometheus metrics of this app (/metrics); other components add gauges with .gauge().
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
# /health/ready: hold() it while start-up work that runs after the app started is unfinished.
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
# Async work (?async=1): tasks, their progress and results .
TASKS: web.AppKey[TaskManager] = web.AppKey("tasks")
# What clients configured (saved in the state store, restored at start) and restore errors.
LABELS: web.AppKey[Labels] = web.AppKey("labels")
# Pipelines, runs and jobs (service/pipelines); None without -upload-dir.
PIPELINES: web.AppKey[Runner | None] = web.AppKey("pipelines")
# The request guard (tokens, rules, audit log); what it found of each request is
# under its own key (service/auth/guard.py: user_of, token_of).
AUTH: web.AppKey[Guard] = web.AppKey("auth")
