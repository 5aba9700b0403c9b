"""Typed application state: every web.AppKey the app uses, and nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from service.contexts import ContextStore
from service.observability.metrics import Metrics
from service.observability.readiness import Readiness
from service.openapi.generator import ApiSpec
from service.pipelines.runner import Runner
from service.plugins.registry import Registry
from service.sandbox import Sandbox
from service.settings import Settings
from service.state import StateStore
from service.state.labels import Labels
from service.streaming import CursorStore
from service.tasks.executor import Executor
from service.tasks.manager import TaskManager
from service.uploads import UploadDir
from service.workers import Workers

if TYPE_CHECKING:
    from service.auth.guard import Guard

SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", Registry)
STORE = web.AppKey("store", ContextStore)
CURSORS = web.AppKey("cursors", CursorStore)
# None when the server runs without -upload-dir.
SANDBOX: web.AppKey[Sandbox | None] = web.AppKey("sandbox")
# The upload directory's files (/service/upload, /service/files); None without -upload-dir.
UPLOADS: web.AppKey[UploadDir | None] = web.AppKey("uploads")
# Worker processes that run module functions.
WORKERS = web.AppKey("workers", Workers)
# The durable state store (SQLite, -state); opened before the contexts are restored.
STATE = web.AppKey("state", StateStore)
# Where long work runs (the local worker pool; a Dask cluster with -executor).
EXECUTOR: web.AppKey[Executor] = web.AppKey("executor")
# The OpenAPI document of this server (/openapi.json, /docs, /redoc), built on first use.
OPENAPI = web.AppKey("openapi", ApiSpec)
# Prometheus metrics of this app (/metrics); other components add gauges with .gauge().
METRICS = web.AppKey("metrics", Metrics)
# /health/ready: hold() it while start-up work that runs after the app started is unfinished.
READINESS = web.AppKey("readiness", Readiness)
# Async work (?async=1): tasks, their progress and results (issue 11).
TASKS = web.AppKey("tasks", TaskManager)
# What clients configured (saved in the state store, restored at start) and restore errors.
LABELS = web.AppKey("labels", Labels)
# Pipelines, runs and jobs (service/pipelines); None without -upload-dir.
PIPELINES: web.AppKey[Runner | None] = web.AppKey("pipelines")
# Issue 14: the request guard (tokens, rules, audit log); what it found of each request is
# under its own key (service/auth/guard.py: user_of, token_of).
AUTH: web.AppKey[Guard] = web.AppKey("auth")
