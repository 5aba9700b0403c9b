"""Prometheus metrics of one app, in a registry of its own (never the process-global one).

Per request the middleware (:mod:`service.observability.middleware`) touches children it looked
up once per route: labels are route templates (``/source/{ctx}/record/{key}``), never raw
paths, and one ``unmatched`` value for requests no route answers, so the number of series stays
bounded whatever clients send. What the server holds (iterkeys, labels, busy workers, and what
other components register with :meth:`Metrics.gauge`) is read from the live objects at scrape
time and costs nothing per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Seconds. Finer at the bottom: most routes answer in well under 10 ms.
LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05)
LATENCY_BUCKETS += (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED = "unmatched"
# Methods outside these are one "other" value: clients may send any token as a method.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Samples = Iterable[tuple[tuple[str, ...], float]]


class RouteMetrics:
    """The children of one (route template, method): found once, used by every request."""

    def __init__(self, metrics: Metrics, route: str, method: str) -> None:
        self.labels = (route, method)
        self.duration = metrics.duration.labels(route, method)
        self.bytes = metrics.response_bytes.labels(route, method)
        self._requests = metrics.requests
        self._by_status: dict[int, Any] = {}

    def count(self, status: int) -> None:
        child = self._by_status.get(status)
        if child is None:
            child = self._by_status[status] = self._requests.labels(*self.labels, str(status))
        child.inc()


class Metrics:
    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests",
            "Requests answered, by route template, method and status",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to the last byte of its response, by route template",
            ("route", "method"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "Requests being handled now", registry=self.registry
        )
        self.response_bytes = Counter(
            "http_response_bytes",
            "Bytes of response bodies sent, by route template",
            ("route", "method"),
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "dffml_upload_bytes",
            "Bytes of upload request bodies received (multipart framing included)",
            registry=self.registry,
        )
        self._live = _LiveCollector()
        self.registry.register(self._live)
        self._routes: dict[tuple[str, str], RouteMetrics] = {}

    def route(self, template: str, method: str) -> RouteMetrics:
        method = method if method in METHODS else "other"
        found = self._routes.get((template, method))
        if found is None:
            found = self._routes[(template, method)] = RouteMetrics(self, template, method)
        return found

    def gauge(
        self, name: str, documentation: str, labels: tuple[str, ...], read: ReadSamples
    ) -> None:
        """Register a gauge read at scrape time: ``read()`` gives ``(label values, value)``
        pairs (``((), n)`` for a gauge without labels). For state other components hold:
        ``metrics.gauge("dffml_tasks", "Tasks by status", ("status",), tasks.count_by_status)``.
        A ``read`` that raises is logged and its gauge left out of that scrape."""
        self._live.add(name, documentation, labels, read)

    def counter(
        self, name: str, documentation: str, labels: tuple[str, ...], read: ReadSamples
    ) -> None:
        """Register a counter read at scrape time, as ``gauge`` does, for a count another
        component keeps that only grows (``name`` without ``_total``: the exposition adds it)."""
        self._live.add(name, documentation, labels, read, CounterMetricFamily)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


ReadSamples = Callable[[], Samples]
Family = type[GaugeMetricFamily] | type[CounterMetricFamily]


class _LiveCollector(Collector):
    def __init__(self) -> None:
        self._gauges: list[tuple[str, str, tuple[str, ...], ReadSamples, Family]] = []

    def add(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        read: ReadSamples,
        family: Family = GaugeMetricFamily,
    ) -> None:
        if any(existing == name for existing, *_ in self._gauges):
            raise ValueError(f"gauge {name!r} is registered already")
        self._gauges.append((name, documentation, labels, read, family))

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are only known once registered; nothing to check up front

    def collect(self) -> Iterator[Metric]:
        for name, documentation, labels, read, make in self._gauges:
            family = make(name, documentation, labels=labels)
            try:
                for values, value in read():
                    family.add_metric(list(values), value)
            except Exception:
                log.exception("reading gauge %s for /metrics failed", name)
                continue
            yield family
