"""Prometheus metrics of one app, in a registry of its own (never the process-global one).

Per request the middleware (:mod:`service.observability.middleware`) adds to plain numbers of
the request's route, looked up once per route: labels are route templates
(``/source/{ctx}/record/{key}``), never raw paths, and one ``unmatched`` value for requests no
route answers, so the number of series stays bounded whatever clients send. Those numbers are
ints and floats, not prometheus-client metric objects: they are only written and read on the
event loop's thread (the middleware, and ``/metrics`` building its answer), so they need none of
the locks that make each ``Counter.inc()`` cost a microsecond or more, and a request pays a dict
lookup, a bisect and four additions. They become metric families when ``/metrics`` is scraped,
as what the server holds (iterkeys, labels, busy workers, and what other components register
with :meth:`Metrics.gauge`) is read from the live objects then; prometheus-client still does
the registry and the exposition format.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Seconds. Finer at the bottom: most routes answer in well under 10 ms.
LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05)
LATENCY_BUCKETS += (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# The le label values, written as prometheus-client writes them ("0.0005", "1.0").
_BOUNDS = (*(repr(bound) for bound in LATENCY_BUCKETS), "+Inf")
UNMATCHED = "unmatched"
# Methods outside these are one "other" value: clients may send any token as a method.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Samples = Iterable[tuple[tuple[str, ...], float]]


class RouteMetrics:
    """What the requests of one (route template, method) added up to."""

    __slots__ = ("by_status", "bytes", "in_bucket", "labels", "seconds")

    def __init__(self, route: str, method: str) -> None:
        self.labels = (route, method)
        self.by_status: dict[int, int] = {}
        # in_bucket[i]: requests that took at most LATENCY_BUCKETS[i] and more than the bound
        # before (the last: more than every bound); cumulated at scrape time.
        self.in_bucket = [0] * (len(LATENCY_BUCKETS) + 1)
        self.seconds = 0.0
        self.bytes = 0

    def record(self, status: int, elapsed: float, sent: int) -> None:
        by_status = self.by_status
        by_status[status] = by_status.get(status, 0) + 1
        self.in_bucket[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        self.seconds += elapsed
        self.bytes += sent

    def cumulative(self) -> list[tuple[str, float]]:
        total = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip(_BOUNDS, self.in_bucket, strict=True):
            total += count
            buckets.append((bound, total))
        return buckets


class Metrics:
    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry()
        # Requests being handled now, and upload body bytes received: the middleware adds.
        self.in_flight = 0
        self.upload_bytes = 0
        self._routes: dict[tuple[str, str], RouteMetrics] = {}
        self.registry.register(_RequestCollector(self))
        self._live = _LiveCollector()
        self.registry.register(self._live)

    def route(self, template: str, method: str) -> RouteMetrics:
        method = method if method in METHODS else "other"
        found = self._routes.get((template, method))
        if found is None:
            found = self._routes[(template, method)] = RouteMetrics(template, method)
        return found

    def routes(self) -> list[RouteMetrics]:
        return list(self._routes.values())

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


class _RequestCollector(Collector):
    """The request metrics, built from the middleware's numbers at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        routes = metrics.routes()
        requests = CounterMetricFamily(
            "http_requests",
            "Requests answered, by route template, method and status",
            labels=("route", "method", "status"),
        )
        duration = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Time from the request's arrival to the last byte of its response, by route template",
            labels=("route", "method"),
        )
        sent = CounterMetricFamily(
            "http_response_bytes",
            "Bytes of response bodies sent, by route template",
            labels=("route", "method"),
        )
        for route in routes:
            labels = list(route.labels)
            for status, count in sorted(route.by_status.items()):
                requests.add_metric([*labels, str(status)], count)
            duration.add_metric(labels, route.cumulative(), route.seconds)
            sent.add_metric(labels, route.bytes)
        yield requests
        yield duration
        yield GaugeMetricFamily(
            "http_requests_in_flight", "Requests being handled now", value=metrics.in_flight
        )
        yield sent
        yield CounterMetricFamily(
            "dffml_upload_bytes",
            "Bytes of upload request bodies received (multipart framing included)",
            value=metrics.upload_bytes,
        )
