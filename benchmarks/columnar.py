"""Columnar benchmark: configure a csv source on a generated CSV, train scikitlr and slr on it,
predict over it (async, NDJSON) and page it, against reading the file with ``pyarrow.csv`` and
fitting scikit-learn's ``LinearRegression`` directly in one process, measured in the same run.

    .venv/bin/python -m benchmarks.columnar [--rows 1000000] [--rounds 2]

Prints, per round (the direct baseline and the server alternate, A B A B):

- configure + train scikitlr, and the same for slr, as a multiple of the direct read + fit,
- the server process's RSS growth during those, and that of all its processes together,
  against the file's size,
- predictions over the source in rows per second, and paging ``records/1000`` in rows per
  second.

The machine may be shared: compare the ratios, not the absolute figures, across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.data import csv_path
from benchmarks.servers import PAGE_SIZE, Server, children, start_this

DATA_DIR = Path(__file__).resolve().parent.parent / ".benchmarks" / "data"
POLL_SECONDS = 0.05


def log(message: str) -> None:
    print(f"[columnar-bench] {message}", file=sys.stderr, flush=True)


def direct(csv: Path) -> float:
    """Seconds to read the file with pyarrow.csv and fit LinearRegression (Salary ~ Years)."""
    import pyarrow.csv as pacsv
    from sklearn.linear_model import LinearRegression

    start = time.perf_counter()
    table = pacsv.read_csv(csv)
    x = table.column("Years").to_numpy().reshape(-1, 1).astype(float)
    y = table.column("Salary").to_numpy().astype(float)
    LinearRegression().fit(x, y)
    return time.perf_counter() - start


def call(server: Server, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=3600) as response:
        return json.loads(response.read())


def rss_of(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE
    return 0


class Peaks:
    """Peak RSS of the server alone, and of the server and its children together."""

    def __init__(self, server: Server) -> None:
        self.pid = server.process.pid
        self.server = self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> tuple[int, int]:
        own = rss_of(self.pid)
        return own, own + sum(rss_of(child) for child in children(self.pid))

    def __enter__(self) -> Peaks:
        self.base_server, self.base_total = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            own, total = self.sample()
            self.server, self.total = max(self.server, own), max(self.total, total)

    def growth(self) -> tuple[int, int]:
        return max(self.server - self.base_server, 0), max(self.total - self.base_total, 0)


def wait_task(server: Server, task_id: str) -> dict[str, Any]:
    while True:
        task: dict[str, Any] = call(server, "GET", f"/task/{task_id}")
        if task["status"] in ("SUCCESS", "FAILURE", "CANCELLED"):
            if task["status"] != "SUCCESS":
                raise SystemExit(f"task {task_id}: {task}")
            return task
        time.sleep(POLL_SECONDS)


def served(server: Server, rows: int) -> dict[str, float]:
    """One round against the server: seconds and bytes of each step."""
    out: dict[str, float] = {}
    model = {"features": ["Years:int:1"], "predict": "Salary:float:1"}
    for plugin in ("scikitlr", "slr"):
        label = f"s_{plugin}"
        with Peaks(server) as peaks:
            start = time.perf_counter()
            call(server, "POST", f"/configure/source/csv/{label}", {"filename": "data.csv"})
            call(server, "GET", f"/context/source/{label}/{label}")
            out[f"{plugin} configure"] = time.perf_counter() - start
            call(server, "POST", f"/configure/model/{plugin}/{plugin}", model)
            call(server, "GET", f"/context/model/{plugin}/{plugin}")
            call(server, "POST", f"/model/{plugin}/train", [label])
            out[f"{plugin} total"] = time.perf_counter() - start
        out[f"{plugin} server growth"], out[f"{plugin} all growth"] = peaks.growth()
        if plugin == "scikitlr":
            call(server, "DELETE", f"/configure/source/{label}")
    label = "s_slr"
    start = time.perf_counter()
    task = call(server, "POST", f"/model/slr/predict/0?source={label}&async=1", {})
    result = wait_task(server, task["task_id"])["result"]
    assert result["records"] == rows, result
    out["predict rows/s"] = rows / (time.perf_counter() - start)
    pages = min(rows, 200_000) // 1000
    start = time.perf_counter()
    body = call(server, "GET", f"/source/{label}/records/1000")
    for _ in range(pages - 1):
        body = call(server, "GET", f"/source/{label}/records/{body['iterkey']}/1000")
    out["paging rows/s"] = pages * 1000 / (time.perf_counter() - start)
    for path in ("/configure/source/s_slr", "/configure/model/slr", "/configure/model/scikitlr"):
        call(server, "DELETE", path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated CSV")
    parser.add_argument("--rounds", type=int, default=2, help="A B rounds")
    args = parser.parse_args()
    csv = csv_path(DATA_DIR, args.rows)
    size = csv.stat().st_size
    log(f"{csv} ({args.rows} rows, {size / 2**20:.1f} MiB)")
    work = Path(tempfile.mkdtemp(prefix="columnar-bench-"))
    server: Server | None = None
    try:
        (work / "upload").mkdir()
        os.link(csv, work / "upload" / "data.csv")
        server = start_this(work, csv, with_csv=False, with_slr=False)
        direct(csv)  # warm: the imports and the page cache, for the baseline as for the server
        rounds = []
        for n in range(args.rounds):
            baseline = direct(csv)
            measured = served(server, args.rows)
            rounds.append((baseline, measured))
            log(f"round {n + 1}: direct {baseline:.2f} s, server {measured}")
        baseline = min(b for b, _ in rounds)

        def best(key: str, *, high: bool = False) -> float:
            values = [m[key] for _, m in rounds]
            return max(values) if high else min(values)

        print(f"rows {args.rows}, file {size / 2**20:.1f} MiB, direct read+fit {baseline:.2f} s")
        for plugin in ("scikitlr", "slr"):
            print(
                f"{plugin}: configure {best(f'{plugin} configure'):.2f} s, configure+train"
                f" {best(f'{plugin} total'):.2f} s = {best(f'{plugin} total') / baseline:.2f}x"
                f" direct; server grew {best(f'{plugin} server growth') / 2**20:.0f} MiB, all"
                f" processes {best(f'{plugin} all growth') / size:.2f}x the file"
            )
        predicted = best("predict rows/s", high=True)
        print(f"predict over the source (async, NDJSON): {predicted:,.0f} rows/s")
        print(f"paging records/1000: {best('paging rows/s', high=True):,.0f} rows/s")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
