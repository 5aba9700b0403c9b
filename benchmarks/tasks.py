"""Tasks benchmark: 1,000 cheap async predicts queued and run, and what the state store costs.

Starts the real CLI (127.0.0.1, port 0) with a file state store, then prints:

- submit rate (202s per second) and end-to-end task throughput (submitted → all SUCCESS),
- the state store's size on disk after the 1,000 tasks, and per task,
- record reads, records paging and synchronous ``predict/0`` per second of that server, with
  the 1,000 tasks in its store, against a second server that never ran a task, measured in
  alternating rounds of the same run: the ratio shows that no state-store write sits on
  their path.

    .venv/bin/python -m benchmarks.tasks [--tasks 1000] [--requests 2000] [--rounds 5]

The machine may be shared: compare the ratios, not the absolute figures, across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

CONCURRENCY = 8
RECORDS = 1000
START_SECONDS = 60
MODEL = {"features": ["x:int:1"], "predict": "y:float:1"}


def log(message: str) -> None:
    print(f"[tasks-bench] {message}", file=sys.stderr, flush=True)


def start(work: Path, tasks: int, state: str) -> tuple[subprocess.Popen[bytes], int]:
    portfile = work / "port"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "service", "server", "-insecure", "-port", "0"),
            *("-addr", "127.0.0.1", "-portfile", str(portfile), "-log", "WARNING"),
            *(
                "-upload-dir",
                str(work / "data"),
                "-state",
                state if state == ":memory:" else str(work / state),
            ),
            *("-task-queue", str(tasks)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "server.log").open("wb"),
    )
    deadline = time.monotonic() + START_SECONDS
    while not portfile.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"server did not start: {(work / 'server.log').read_text()}")
        time.sleep(0.05)
    return process, int(portfile.read_text())


async def expect(response: aiohttp.ClientResponse, status: int = 200) -> Any:
    body = await response.json()
    if response.status != status:
        raise SystemExit(f"{response.method} {response.url}: {response.status} {body}")
    return body


async def rate(n: int, request: Callable[[int], Awaitable[None]]) -> float:
    """Requests per second for ``n`` requests, CONCURRENCY at a time."""
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await request(i)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - began)


async def hot_paths(session: aiohttp.ClientSession, url: str, n: int) -> dict[str, float]:
    async def record(i: int) -> None:
        async with session.get(f"{url}/source/s/record/{i % RECORDS}") as response:
            await expect(response)

    async def page(i: int) -> None:
        async with session.get(f"{url}/source/s/records/100") as response:
            body = await expect(response)
        iterkey = body["iterkey"]
        if iterkey is not None:
            async with session.delete(f"{url}/source/s/records/{iterkey}") as response:
                await expect(response)

    body = {"a": {"features": {"x": 3}}, "b": {"features": {"x": 4}}}

    async def predict(i: int) -> None:
        async with session.post(f"{url}/model/m/predict/0", json=body) as response:
            await expect(response)

    return {
        "record reads/s": await rate(n, record),
        "first pages/s": await rate(n // 4, page),
        "sync predict/0/s": await rate(n, predict),
    }


async def setup(session: aiohttp.ClientSession, url: str) -> None:
    records = {str(i): {"features": {"x": i, "y": 2 * i + 1}} for i in range(RECORDS)}
    for method, path, payload in (
        ("POST", "/configure/source/memory/s", {"records": records}),
        ("GET", "/context/source/s/s", None),
        ("POST", "/configure/model/slr/m", MODEL),
        ("GET", "/context/model/m/m", None),
        ("POST", "/model/m/train", ["s"]),
    ):
        async with session.request(method, f"{url}{path}", json=payload) as response:
            await expect(response)


async def main(tasks: int, requests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="tasks-bench-") as tmp:
        work = Path(tmp)
        for name in ("with", "without"):
            (work / name / "data").mkdir(parents=True)
        # The same server twice: one will hold the tasks, the other (no state kept) never
        # sees one. Their hot paths are measured in alternating rounds, so both see the same
        # load from whatever else runs on the machine.
        process, port = start(work / "with", tasks, "state.sqlite3")
        bare, bare_port = start(work / "without", tasks, ":memory:")
        url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        try:
            async with aiohttp.ClientSession() as session:
                for target in (url, bare_url):
                    await setup(session, target)
                    await hot_paths(session, target, requests // 4)  # warm up
                size_before = _size(work / "with")
                body = {"a": {"features": {"x": 3}}}

                async def submit(i: int) -> None:
                    async with session.post(
                        f"{url}/model/m/predict/0?async=1", json=body
                    ) as response:
                        await expect(response, 202)

                began = time.perf_counter()
                submit_rate = await rate(tasks, submit)
                for _ in range(100_000):
                    async with session.get(f"{url}/tasks?status=SUCCESS&limit=1") as response:
                        done = (await expect(response))["total"]
                    if done >= tasks:
                        break
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - began
                async with session.get(f"{url}/tasks?limit=1") as response:
                    total = (await expect(response))["total"]
                size_after = _size(work / "with")
                measured: dict[str, dict[str, list[float]]] = {"with": {}, "without": {}}
                for _ in range(rounds):
                    for name, target in (("with", url), ("without", bare_url)):
                        for path, value in (await hot_paths(session, target, requests)).items():
                            measured[name].setdefault(path, []).append(value)
        finally:
            for server in (process, bare):
                server.terminate()
                server.wait(timeout=30)
    print(f"machine: {os.cpu_count()} cores (shared: other work may run at the same time)")
    print(f"tasks: {tasks} async predicts, {total} in the store")
    print(f"  submitted: {submit_rate:8.1f} tasks/s ({CONCURRENCY} clients)")
    print(f"  run:       {tasks / elapsed:8.1f} tasks/s end to end ({elapsed:.2f} s)")
    print(
        f"  state store: {size_before / 1024:.0f} KiB before, {size_after / 1024:.0f} KiB after"
        f" (database + write-ahead log; {(size_after - size_before) / tasks:.0f} bytes per task)"
    )
    print(
        f"hot paths, median of {rounds} alternating rounds of {requests}:"
        " with the tasks stored | a server without tasks | ratio"
    )
    for path, values in measured["with"].items():
        mine, bare_value = statistics.median(values), statistics.median(measured["without"][path])
        print(f"  {path:18} {mine:9.1f} | {bare_value:9.1f} | {mine / bare_value:6.3f}")


def _size(work: Path) -> int:
    return sum(
        p.stat().st_size for p in (work / "state.sqlite3", work / "state.sqlite3-wal") if p.exists()
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.requests, args.rounds))
