"""Gauges of what the server holds, read at scrape time from the live objects."""

from __future__ import annotations

from service.contexts import ContextStore
from service.observability.metrics import Metrics, Samples
from service.plugins.base import KINDS
from service.streaming import CursorStore
from service.workers import Workers


def core_gauges(
    metrics: Metrics, store: ContextStore, cursors: CursorStore, workers: Workers
) -> None:
    def labels() -> Samples:
        return [((kind,), len(store.labels(kind))) for kind in KINDS]

    def contexts() -> Samples:
        return [((kind,), len(store.context_labels(kind))) for kind in KINDS]

    metrics.gauge("dffml_labels", "Configured plugin labels, by kind", ("kind",), labels)
    metrics.gauge("dffml_contexts", "Open contexts, by kind", ("kind",), contexts)
    metrics.gauge(
        "dffml_iterkeys", "Iterkeys alive (paging cursors)", (), lambda: [((), len(cursors))]
    )
    metrics.gauge(
        "dffml_workers_busy",
        "Worker processes running a module function now",
        (),
        lambda: [((), workers.busy)],
    )
    metrics.gauge(
        "dffml_workers_limit", "Worker processes allowed at once", (), lambda: [((), workers.limit)]
    )
