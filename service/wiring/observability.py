"""Observability in the app: readiness, the request id header and the gauges of /metrics.

The observe middleware itself (request ids, metrics, access log) is built by create_app: it
must exist before the application does.
"""

from __future__ import annotations

from aiohttp import web

from service.api.keys import BATCHING, CURSORS, METRICS, READINESS, STORE, TASKS, WORKERS
from service.observability.gauges import batching_gauges, core_gauges, task_gauges
from service.observability.readiness import Readiness
from service.observability.requestid import add_request_id_header


def install(app: web.Application) -> None:
    """After the engine (the gauges read its objects)."""
    app[READINESS] = Readiness()
    app.on_startup.append(app[READINESS].started)
    # First of the shutdown hooks: /health/ready says 503 before anything stops.
    app.on_shutdown.insert(0, app[READINESS].stopping)
    app.on_response_prepare.append(add_request_id_header)
    core_gauges(app[METRICS], app[STORE], app[CURSORS], app[WORKERS])
    task_gauges(app[METRICS], app[TASKS])
    batching_gauges(app[METRICS], app[BATCHING])
