"""Load drivers: ``wrk`` when installed, else a bounded Python aiohttp load generator.

A :class:`Load` says what to send; both drivers return a :class:`LoadResult`. Every load is bounded
in time (``duration``) and, when ``max_requests`` is set, in count; it only targets 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp

WRK_DIR = Path(__file__).resolve().parent / "wrk"
Shape = Literal["fixed", "random_key", "paging"]


@dataclass(frozen=True)
class Load:
    """``fixed``: the same request each time; ``random_key``: GET path + random key in
    0..keys-1; ``paging``: GET path + chunk, then follow each iterkey once (path + key/chunk)."""

    shape: Shape
    path: str
    method: str = "GET"
    body: bytes | None = None
    keys: int = 0
    chunk: int = 0
    duration: float = 10.0
    connections: int = 16
    max_requests: int = 0
    headers: tuple[str, ...] = ()  # extra request headers, "Name: value"


@dataclass
class LoadResult:
    requests: int
    seconds: float
    errors: int  # non-2xx answers plus socket errors and timeouts
    p50_ms: float
    p99_ms: float
    driver: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run(base_url: str, load: Load, driver: str) -> LoadResult:
    if driver == "wrk":
        return run_wrk(base_url, load)
    return asyncio.run(run_python(base_url, load))


def run_wrk(base_url: str, load: Load) -> LoadResult:
    script = (WRK_DIR / "common.lua").read_text() + (WRK_DIR / f"{load.shape}.lua").read_text()
    env = {
        **os.environ,
        "BENCH_MAX_REQUESTS": str(load.max_requests),
        "BENCH_METHOD": load.method,
        "BENCH_BODY": (load.body or b"").decode(),
        "BENCH_PREFIX": load.path,
        "BENCH_KEYS": str(load.keys),
        "BENCH_CHUNK": str(load.chunk),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        duration = max(1, round(load.duration))
        url = base_url + (load.path if load.shape == "fixed" else "/")
        # One wrk thread: the server gets the other core. Timeout well above any sane p99.
        args = ["wrk", "-t1", f"-c{load.connections}", f"-d{duration}s", "--timeout", "10s"]
        for header in load.headers:
            args += ["-H", header]
        completed = subprocess.run(
            [*args, "-s", handle.name, url],
            env=env,
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=False,
        )
    finally:
        os.unlink(handle.name)
    match = re.search(r"^BENCH (\{.*\})$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    summary = json.loads(match.group(1))
    errors = sum(
        summary[name]
        for name in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return LoadResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        errors=errors,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        driver="wrk",
    )


async def run_python(base_url: str, load: Load) -> LoadResult:
    """The fallback: ``connections`` workers in one process. Slower than wrk (it shares the
    machine's two cores with the server), so its figures understate every server alike."""
    latencies: list[float] = []
    errors = 0
    pending: list[str] = []
    rng = random.Random(7)
    deadline = time.monotonic() + load.duration
    cap = load.max_requests or None
    timeout = aiohttp.ClientTimeout(total=10)
    headers = dict(header.split(": ", 1) for header in load.headers)
    if load.body:
        headers["Content-Type"] = "application/json"

    def next_path() -> str:
        if load.shape == "random_key":
            return f"{load.path}{rng.randrange(load.keys)}"
        if load.shape == "paging":
            return (
                f"{load.path}{pending.pop()}/{load.chunk}"
                if pending
                else f"{load.path}{load.chunk}"
            )
        return load.path

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.monotonic() < deadline and (cap is None or len(latencies) + errors < cap):
            started = time.perf_counter()
            try:
                async with session.request(
                    load.method,
                    base_url + next_path(),
                    data=load.body,
                    headers=headers or None,
                ) as response:
                    body = await response.read()
                    ok = response.status < 400
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
                body = b""
            if not ok:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            if load.shape == "paging":
                iterkey = json.loads(body).get("iterkey")
                if iterkey:
                    pending.append(iterkey)

    connector = aiohttp.TCPConnector(limit=load.connections)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(load.connections)))
        seconds = time.perf_counter() - started
    latencies.sort()

    def percentile(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0
        )

    return LoadResult(
        requests=len(latencies) + errors,
        seconds=seconds,
        errors=errors,
        p50_ms=percentile(0.50),
        p99_ms=percentile(0.99),
        driver="python",
    )


def install_hint() -> str | None:
    """Try to install wrk when root on Debian; else None when present or a hint how to get it."""
    if wrk_available():
        return None
    if os.geteuid() == 0 and shutil.which("apt-get"):
        for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(args, check=False, capture_output=True, timeout=600)
        if wrk_available():
            return None
    return (
        "wrk not found (Debian: sudo apt-get install wrk); using the slower Python load generator"
    )
