"""What logging and observability cost: default log vs -log 30; metrics + request ids + rate
limiter on vs off, all in one run.

    python benchmarks/observability.py [--rounds 3] [--duration 5] [--connections 16]

Four servers of this checkout run side by side on 127.0.0.1, each with the same CSV source s1
(and an slr model m1 trained on it):

    default   the defaults: -log INFO (access log on), metrics on
    log30     -log 30 (no access log), metrics on
    on        -log 30, metrics on, -rate-limit 1000000/s (a bucket check per request, never a 429)
    off       -log 30, -metrics off, no rate limit

Each round drives every (workload, server) pair once, in an order that rotates between rounds,
so slow drift of a shared machine spreads over all of them. Printed per pair: the median
requests/s over the rounds with its range, and the server's CPU per request (user + system
from /proc). Request ids cannot be switched off (every answer carries one), so "off" still makes
them; their own cost, and that of the metrics update and the rate-limit check, is measured
in-process at the end. Figures, not tests: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import data, load  # noqa: E402
from benchmarks.servers import Server, start_this  # noqa: E402

ROWS = 10_000
PREDICT_BODY = b'{"0": {"features": {"Years": 5}}, "1": {"features": {"Years": 7}}}'
CONFIGS: dict[str, tuple[str, ...]] = {
    "default": (),
    "log30": ("-log", "30"),
    "on": ("-log", "30", "-rate-limit", "1000000/s"),
    "off": ("-log", "30", "-metrics", "off"),
}
WORKLOADS = ("record/{key}", "predict/0")


@dataclass
class Sample:
    rate: float
    cpu_us: float
    errors: int


@dataclass
class Cell:
    samples: list[Sample] = field(default_factory=list)

    def rates(self) -> list[float]:
        return [s.rate for s in self.samples]

    def cpus(self) -> list[float]:
        return [s.cpu_us for s in self.samples]


def start(name: str, work: Path, csv: Path, extra: tuple[str, ...]) -> Server:
    server = start_this(work / name, csv, True, True, name=name, log_level=None, extra=extra)
    call(server, "POST", "/model/m1/train", b'["s1"]')
    return server


def call(server: Server, method: str, path: str, body: bytes | None = None) -> bytes:
    req = urllib.request.Request(server.url + path, data=body, method=method)
    with urllib.request.urlopen(req, timeout=600) as response:
        return bytes(response.read())


def spec(workload: str, duration: float, connections: int) -> load.Load:
    if workload == "record/{key}":
        return load.Load(
            "random_key",
            "/source/s1/record/",
            keys=ROWS,
            duration=duration,
            connections=connections,
        )
    return load.Load(
        "fixed",
        "/model/m1/predict/0",
        method="POST",
        body=PREDICT_BODY,
        duration=duration,
        connections=connections,
    )


def measure(server: Server, workload: load.Load, driver: str) -> Sample:
    before = server.cpu_seconds()
    result = load.run(server.url, workload, driver)
    cpu = server.cpu_seconds() - before
    return Sample(
        rate=result.rate,
        cpu_us=cpu / result.requests * 1e6 if result.requests else float("nan"),
        errors=result.errors,
    )


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def in_process_costs(repeat: int = 200_000) -> dict[str, float]:
    """CPU µs per request of each per-request step, measured in-process: what the end-to-end
    ratios above cannot resolve on a shared machine, whose noise is larger than these."""
    from aiohttp.test_utils import make_mocked_request

    from service.observability.metrics import Metrics
    from service.observability.ratelimit import RateLimit, TokenBuckets
    from service.observability.requestid import request_id

    metrics = Metrics()
    route = metrics.route("/source/{ctx}/record/{key}", "GET")
    limit = RateLimit(TokenBuckets(1_000_000.0, 1_000_000, 100_000))
    request = make_mocked_request("GET", "/source/s1/record/1")

    def metrics_update() -> None:
        metrics.in_flight += 1
        metrics.in_flight -= 1
        route.record(200, 0.0007, 120)

    steps: dict[str, Callable[[], object]] = {
        "request id": lambda: request_id(None),
        "metrics update": metrics_update,
        "rate-limit check": lambda: limit.check(request),
    }
    costs = {}
    for name, step in steps.items():
        started = time.process_time()
        for _ in range(repeat):
            step()
        costs[name] = (time.process_time() - started) / repeat * 1e6
    return costs


def spread(values: list[float], spec: str) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:{spec}} [{min(values):{spec}}-{max(values):{spec}}]"


def ratio(a: list[float], b: list[float]) -> str:
    if not a or not b:
        return "-"
    pairs = sorted(x / y for x, y in zip(a, b, strict=False) if y)
    if not pairs:
        return "-"
    return f"{statistics.median(pairs):.2f} [{pairs[0]:.2f}-{pairs[-1]:.2f}]"


@contextmanager
def servers(work: Path, csv: Path) -> Iterator[dict[str, Server]]:
    with ExitStack() as stack:
        running: dict[str, Server] = {}
        for name, extra in CONFIGS.items():
            server = start(name, work, csv, extra)
            stack.callback(server.stop)
            running[name] = server
        yield running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--driver", choices=("wrk", "python"), default=None)
    options = parser.parse_args()
    driver = options.driver or ("wrk" if load.wrk_available() else "python")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    csv = data.csv_path(REPO / ".benchmarks" / "data", ROWS)
    cells: dict[tuple[str, str], Cell] = {(w, c): Cell() for w in WORKLOADS for c in CONFIGS}
    load_before = load_average()
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="bench-observability-") as tmp,
        servers(Path(tmp), csv) as running,
    ):
        names = list(CONFIGS)
        for round_number in range(options.rounds):
            order = names[round_number % len(names) :] + names[: round_number % len(names)]
            for workload in WORKLOADS:
                for name in order:
                    sample = measure(
                        running[name], spec(workload, options.duration, options.connections), driver
                    )
                    cells[(workload, name)].samples.append(sample)
                    print(
                        f"[bench] round {round_number + 1} {workload:13} {name:8}"
                        f" {sample.rate:9,.0f} req/s {sample.cpu_us:7.1f} µs CPU/req"
                        f" errors {sample.errors}",
                        file=sys.stderr,
                        flush=True,
                    )
    elapsed = time.monotonic() - started
    print_report(cells, options, driver, load_before, load_average(), elapsed)


def print_report(
    cells: dict[tuple[str, str], Cell],
    options: argparse.Namespace,
    driver: str,
    load_before: str,
    load_after: str,
    elapsed: float,
) -> None:
    cpus = os.cpu_count()
    print(
        f"\n{options.rounds} rounds x {options.duration:g} s per cell, {options.connections}"
        f" connections, driver {driver}, {cpus} cores; load average {load_before} before,"
        f" {load_after} after ({elapsed:.0f} s)."
    )
    print(
        "The machine is shared with 6 other developers' builds and tests running at the same"
        " time: figures move between runs; compare within a run, and the ranges show the spread."
    )
    print("\n| workload | server | req/s median [range] | µs CPU/request median [range] | errors |")
    print("| --- | --- | --- | --- | --- |")
    for (workload, name), cell in cells.items():
        errors = sum(s.errors for s in cell.samples)
        print(
            f"| {workload} | {name} | {spread(cell.rates(), ',.0f')} |"
            f" {spread(cell.cpus(), '.1f')} | {errors} |"
        )
    print("\n| comparison | throughput ratio median [range] | CPU ratio median [range] |")
    print("| --- | --- | --- |")
    comparisons: list[tuple[str, str, str, Callable[[Cell], list[float]]]] = []
    for workload in WORKLOADS:
        comparisons.append((workload, "default", "log30", Cell.rates))
        comparisons.append((workload, "on", "off", Cell.rates))
    for workload, a, b, _ in comparisons:
        one, other = cells[(workload, a)], cells[(workload, b)]
        print(
            f"| {workload}: {a} / {b} | {ratio(one.rates(), other.rates())} |"
            f" {ratio(other.cpus(), one.cpus())} |"
        )
    print(
        "\nThroughput ratio: per round, req/s of the first over the second (1.00: no cost)."
        " CPU ratio: per round, µs of CPU per request of the second over the first, the same"
        " way round (below 1.00: the first costs more CPU per request)."
    )
    costs = ", ".join(f"{name} {us:.2f} µs" for name, us in in_process_costs().items())
    print(f"In-process, CPU per request of each step (loop overhead included): {costs}.")
    print(json.dumps({f"{w} {c}": cell.rates() for (w, c), cell in cells.items()}))


if __name__ == "__main__":
    main()
