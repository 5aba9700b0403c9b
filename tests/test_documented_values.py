"""Documented behaviour no other test asserted (issue 13, "Every documented behaviour has a test
that asserts the documented value"): `-module-workers` queuing, numeric `-log` levels, the row
order of a `WITHOUT ROWID` sqlite table."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import requests

from service.plugins.registry import Registry
from service.sdk.modules import Function, Job, Module
from tests.conftest import MakeClient
from tests.helpers import until
from tests.live import live_server

WAIT = 30  # seconds a step may take before the test fails instead of hanging


# --- -module-workers N: "more requests wait for a free slot" (docs/cli.md) ----------------------


def held(job: Job) -> None:
    """Run N writes started-N beside outputs/ and waits for gate-N there."""
    root = job.output_dir.parent.parent
    n = len(list(root.glob("started-*"))) + 1
    (root / f"started-{n}").write_text("")
    deadline = time.monotonic() + WAIT
    while not (root / f"gate-{n}").exists():
        assert time.monotonic() < deadline, "the test never opened the gate"
        time.sleep(0.01)
    job.output("done.txt").write_text(str(n))


class HeldModule(Module[Any]):
    """Waits for the test."""

    FUNCTIONS = (Function("held", "wait for a gate", target=held, expected_filetype="txt"),)


async def test_module_runs_beyond_module_workers_wait_for_a_free_slot(
    make_client: MakeClient, upload_dir: Path
) -> None:
    registry = Registry.empty()
    registry.register("module", "held", HeldModule)
    client = await make_client(registry=registry, module_workers=1)
    assert (await client.post("/configure/module/held/h", json={})).status == 200
    assert (await client.get("/context/module/h/h")).status == 200
    (upload_dir / "a.txt").write_text("a\n")
    body = {"files": ["a.txt"]}
    first = asyncio.create_task(client.post("/module/h/held", json=body))
    await until(lambda: (upload_dir / "started-1").exists())
    second = asyncio.create_task(client.post("/module/h/held", json=body))
    # The second run is neither refused nor started while the only worker is busy: /health
    # answers in between, and the second function has not begun.
    for _ in range(10):
        assert (await client.get("/health")).status == 200
        await asyncio.sleep(0.02)
    assert not second.done()
    assert not (upload_dir / "started-2").exists()
    (upload_dir / "gate-1").write_text("")
    await until(lambda: (upload_dir / "started-2").exists())
    (upload_dir / "gate-2").write_text("")
    done = [await asyncio.wait_for(task, WAIT) for task in (first, second)]
    assert [r.status for r in done] == [200, 200]
    outputs = [(await r.json())["files"][0]["filename"] for r in done]
    assert [(upload_dir / name).read_text() for name in outputs] == ["1", "2"]


# --- -log LEVEL: "by name or number (-log 30)"; -log 30 leaves out the access log ---------------


def test_numeric_log_levels_are_the_levels_of_those_numbers(tmp_path: Path) -> None:
    with live_server("-insecure", "-log", "20", cwd=tmp_path) as server:
        requests.get(f"{server.url}/health", headers={"X-Request-ID": "n-20"}, timeout=10)
    info = server.stderr()
    assert re.search(r' INFO service.access \[n-20\] 127.0.0.1 "GET /health" 200 ', info)
    assert re.search(r"INFO service \[-\] Serving on http://127.0.0.1:\d+", info)
    with live_server("-insecure", "-log", "30", cwd=tmp_path) as server:
        requests.get(f"{server.url}/health", headers={"X-Request-ID": "n-30"}, timeout=10)
    warning = server.stderr()
    # WARNING (30): neither the access line nor any other INFO line.
    assert "n-30" not in warning
    assert " INFO " not in warning


# --- sqlite: "rows come in insertion (rowid) order, or by key for WITHOUT ROWID tables" ----------


async def test_sqlite_rows_in_rowid_order_or_by_key_without_rowid(
    client: Any, upload_dir: Path
) -> None:
    keys = ["m", "c", "x", "a", "q"]
    for name, suffix in (("rowid.db", ""), ("keyed.db", " WITHOUT ROWID")):
        db = sqlite3.connect(upload_dir / name)
        with db:
            db.execute(f"CREATE TABLE records (key TEXT PRIMARY KEY, n INTEGER){suffix}")
            db.executemany(
                "INSERT INTO records VALUES (?, ?)", [(k, i) for i, k in enumerate(keys)]
            )
        db.close()
    order = {}
    for label, name in (("plain", "rowid.db"), ("keyed", "keyed.db")):
        response = await client.post(f"/configure/source/sqlite/{label}", json={"filename": name})
        assert response.status == 200, await response.text()
        assert (await client.get(f"/context/source/{label}/{label}")).status == 200
        seen: list[str] = []
        body = await (await client.get(f"/source/{label}/records/2")).json()
        for _ in range(10):
            seen += list(body["records"])
            if body["iterkey"] is None:
                break
            body = await (await client.get(f"/source/{label}/records/{body['iterkey']}/2")).json()
        order[label] = seen
    assert order == {"plain": keys, "keyed": sorted(keys)}
