"""Adaptive batching benchmark: 64 concurrent clients sending single-record predicts to one model.

Starts two servers of this checkout (127.0.0.1, port 0): one with batching off (the default),
one with ``-max-batch-size 64 -max-batch-time T``; trains the same model on each, then runs the
same load against them in alternating rounds (off, on, off, on, ...) and prints, per server,
throughput (requests per second) and p50/p99 latency, and the ratios on/off. Also V2 ``infer``
of the same single records against ``predict/0`` on the server with batching off.

    .venv/bin/python -m benchmarks.batching [--model scikitrfr] [--requests 2000] [--rounds 2]

The machine may be shared: compare the ratios of one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.servers import Server, start_this

CLIENTS = 64
TRAINING = {str(i): {"features": {"Years": i, "Salary": 10 * i + 10 + i % 7}} for i in range(200)}
MODELS: dict[str, dict[str, Any]] = {
    # A forest's predict has a fixed cost per call (every tree is walked once per call).
    "scikitrfr": {"n_estimators": 50},
    "scikitlr": {},
    "slr": {},
}

Send = Callable[[aiohttp.ClientSession, str, int], Awaitable[None]]


def log(message: str) -> None:
    print(f"[batching-bench] {message}", file=sys.stderr, flush=True)


async def prepare(url: str, model: str) -> None:
    config = {"features": ["Years:int:1"], "predict": "Salary:float:1", **MODELS[model]}
    async with aiohttp.ClientSession() as session:
        for method, path, body in (
            ("POST", "/configure/source/memory/people", {"records": TRAINING}),
            ("GET", "/context/source/people/people", None),
            ("POST", f"/configure/model/{model}/salary", config),
            ("GET", "/context/model/salary/salary", None),
            ("POST", "/model/salary/train", ["people"]),
        ):
            async with session.request(method, url + path, json=body) as response:
                if response.status != 200:
                    raise RuntimeError(
                        f"{method} {path}: {response.status} {await response.text()}"
                    )


async def predict(session: aiohttp.ClientSession, url: str, n: int) -> None:
    body = {"a": {"features": {"Years": n % 100}}}
    async with session.post(url + "/model/salary/predict/0", json=body) as response:
        answer = await response.json()
        if response.status != 200 or answer["records"]["a"]["features"]["Years"] != n % 100:
            raise RuntimeError(f"predict: {response.status} {answer}")


async def infer(session: aiohttp.ClientSession, url: str, n: int) -> None:
    body = {"inputs": [{"name": "Years", "datatype": "INT64", "shape": [1], "data": [n % 100]}]}
    async with session.post(url + "/v2/models/salary/infer", json=body) as response:
        answer = await response.json()
        if response.status != 200 or len(answer["outputs"][0]["data"]) != 1:
            raise RuntimeError(f"infer: {response.status} {answer}")


async def load(url: str, requests: int, send: Send) -> tuple[float, list[float]]:
    """``requests`` sends from CLIENTS concurrent clients: (requests per second, latencies)."""
    latencies: list[float] = []
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for n in counter:
                start = time.perf_counter()
                await send(session, url, n)
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - start
    return requests / elapsed, latencies


def p(latencies: list[float], q: float) -> float:
    return statistics.quantiles(latencies, n=100)[int(q) - 1] * 1000


async def run(args: argparse.Namespace, off: Server, on: Server) -> None:
    for server in (off, on):
        await prepare(server.url, args.model)
    results: dict[str, list[tuple[float, list[float]]]] = {"off": [], "on": [], "v2": []}
    await load(off.url, 200, predict)  # warm both up
    await load(on.url, 200, predict)
    for round_ in range(args.rounds):
        for name, server, send in (("off", off, predict), ("on", on, predict), ("v2", off, infer)):
            results[name].append(await load(server.url, args.requests, send))
            rate, latencies = results[name][-1]
            log(f"round {round_ + 1} {name}: {rate:,.0f} req/s, p99 {p(latencies, 99):.1f} ms")
    summary = {}
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        latencies = [x for _, lat in runs for x in lat]
        summary[name] = (rate, p(latencies, 50), p(latencies, 99))
        print(
            f"{name:>3} ({args.model}): {rate:8,.0f} req/s   p50 {summary[name][1]:7.1f} ms"
            f"   p99 {summary[name][2]:7.1f} ms"
        )
    print(
        f"batching on/off: throughput x{summary['on'][0] / summary['off'][0]:.2f},"
        f" p99 x{summary['on'][2] / summary['off'][2]:.2f}"
    )
    print(
        f"V2 infer / predict (batching off): throughput x{summary['v2'][0] / summary['off'][0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="scikitrfr")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-time", default="0.005", help="-max-batch-time of the 'on' server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "off").mkdir()
        (work / "on").mkdir()
        csv = work / "unused.csv"
        off = start_this(work / "off", csv, False, False, name="off")
        try:
            extra = ("-max-batch-size", "64", "-max-batch-time", args.batch_time)
            on = start_this(work / "on", csv, False, False, name="on", extra=extra)
            try:
                asyncio.run(run(args, off, on))
            finally:
                on.stop()
        finally:
            off.stop()


if __name__ == "__main__":
    main()
