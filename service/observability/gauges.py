"""Gauges of what the server holds, read at scrape time from the live objects."""

from __future__ import annotations

from service.contexts import ContextStore
from service.engine.batching import Batching
from service.engine.cursors import CursorStore
from service.engine.tasks.manager import TaskManager
from service.engine.workers import Workers
from service.observability.metrics import Metrics, Samples
from service.sdk.base import KINDS


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


TASK_STATUSES = ("PENDING", "RUNNING")
FINAL_STATUSES = ("SUCCESS", "FAILURE", "CANCELLED")


def task_gauges(metrics: Metrics, tasks: TaskManager) -> None:
    """Tasks by kind and status: those queued or running now (a gauge), those ended since start
    (a counter), and the queue against its -task-queue limit."""

    def active() -> Samples:
        counts = tasks.active_by_status()
        kinds = sorted({kind for kind, _ in counts} | {kind for kind, _ in tasks.finished})
        return [((k, s), counts.get((k, s), 0)) for k in kinds for s in TASK_STATUSES]

    def finished() -> Samples:
        return [((kind, status), n) for (kind, status), n in sorted(tasks.finished.items())]

    def queued() -> Samples:
        return [((), sum(n for (_, s), n in tasks.active_by_status().items() if s == "PENDING"))]

    metrics.gauge(
        "dffml_tasks", "Tasks queued or running now, by kind and status", ("kind", "status"), active
    )
    metrics.counter(
        "dffml_tasks_finished",
        "Tasks ended since start, by kind and final status",
        ("kind", "status"),
        finished,
    )
    metrics.gauge("dffml_task_queue_length", "Tasks waiting for a slot (PENDING)", (), queued)
    metrics.gauge(
        "dffml_task_queue_limit",
        "Tasks allowed to wait at once (-task-queue)",
        (),
        lambda: [((), tasks.queue_limit)],
    )


def batching_gauges(metrics: Metrics, batching: Batching) -> None:
    """Adaptive batching (docs/inference.md#batching): mean batch size is
    records / batches, mean queue time queue_seconds / requests."""
    stats = batching.stats
    metrics.counter(
        "dffml_batches", "Model calls made for batches", (), lambda: [((), stats.batches)]
    )
    metrics.counter(
        "dffml_batch_records", "Records predicted in batches", (), lambda: [((), stats.records)]
    )
    metrics.counter(
        "dffml_batch_requests", "Requests answered from batches", (), lambda: [((), stats.requests)]
    )
    metrics.counter(
        "dffml_batch_queue_seconds",
        "Seconds requests waited for their batch, summed",
        (),
        lambda: [((), stats.queue_seconds)],
    )
    metrics.counter(
        "dffml_batch_refused",
        "Requests refused with 503: the batch queue was full",
        (),
        lambda: [((), stats.refused)],
    )
    metrics.gauge(
        "dffml_batch_largest",
        "Records of the largest batch so far",
        (),
        lambda: [((), stats.largest)],
    )
    metrics.gauge(
        "dffml_batch_waiting",
        "Records waiting to be batched now",
        (),
        lambda: [((), batching.waiting())],
    )
