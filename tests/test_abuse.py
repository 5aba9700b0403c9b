"""Resource abuse through the real CLI, in bounded loops: each test makes a client hold what it
can (cursors, connections, labels, big bodies) and asserts the server's memory, descriptors or
threads stay within the documented bound (docs/limits.md)."""

from __future__ import annotations

import socket
from pathlib import Path

import requests

from tests.live import LiveServer, live_server

MIB = 1024 * 1024


def status(server: LiveServer, field: str) -> int:
    """A number from /proc/PID/status (VmRSS in kB, Threads)."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc status")


def rss(server: LiveServer) -> int:
    return status(server, "VmRSS") * 1024


def fds(server: LiveServer) -> int:
    return len(list(Path(f"/proc/{server.process.pid}/fd").iterdir()))


def call(server: LiveServer, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, server.url + path, timeout=120, **kwargs)  # type: ignore[arg-type]


def wide_csv(path: Path, rows: int, width: int) -> None:
    """``rows`` records of about ``width`` bytes each, keyed k0, k1, …"""
    filler = "w" * width
    lines = ["key,x,y,pad"] + [f"k{i},{i},{2 * i + 1},{filler}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def test_abandoned_predict_cursors_over_a_source_hold_positions_not_batches(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    wide_csv(data / "wide.csv", rows=3000, width=4096)
    with live_server("-insecure", "-upload-dir", str(data), cwd=tmp_path) as server:
        config = {"filename": "wide.csv", "key": "key"}
        assert call(server, "POST", "/configure/source/csv/w", json=config).status_code == 200
        assert call(server, "GET", "/context/source/w/w").status_code == 200
        model = {"features": ["x:float:1"], "predict": "y:float:1"}
        assert call(server, "POST", "/configure/model/slr/m", json=model).status_code == 200
        assert call(server, "GET", "/context/model/m/m").status_code == 200
        assert call(server, "POST", "/model/m/train", json=["w"]).status_code == 200
        # Warm up (allocator, first decode), then abandon cursors one chunk in.
        for _ in range(5):
            call(server, "POST", "/model/m/predict/1?source=w", json={})
        before = rss(server)
        iterkeys = []
        for _ in range(120):
            body = call(server, "POST", "/model/m/predict/1?source=w", json={}).json()
            iterkeys.append(body["iterkey"])
        grown = rss(server) - before
        # Each cursor held ~1,000 decoded 4 KiB records (~5 MiB): 120 of them ~600 MiB. A
        # cursor holding a position costs about a kilobyte.
        assert grown < 60 * MIB, f"RSS grew {grown / MIB:.0f} MiB for 120 abandoned cursors"
        # Each is still usable where it stopped.
        page = call(server, "GET", f"/model/m/predict/{iterkeys[0]}/2").json()
        assert list(page["records"]) == ["k1", "k2"]


def test_abandoned_predict_bodies_stay_within_iterkey_max_bytes(tmp_path: Path) -> None:
    budget = 8 * MIB
    with live_server(
        "-insecure",
        "-iterkey-max-bytes",
        str(budget),
        "-max-body-size",
        str(4 * MIB),
        cwd=tmp_path,
    ) as server:
        model = {"features": ["x:float:1"], "predict": "y:float:1"}
        assert call(server, "POST", "/configure/source/memory/s", json={}).status_code == 200
        assert call(server, "GET", "/context/source/s/s").status_code == 200
        for i in range(4):
            update = {"features": {"x": i, "y": 2 * i}}
            assert call(server, "POST", f"/source/s/update/k{i}", json=update).status_code == 200
        assert call(server, "POST", "/configure/model/slr/m", json=model).status_code == 200
        assert call(server, "GET", "/context/model/m/m").status_code == 200
        assert call(server, "POST", "/model/m/train", json=["s"]).status_code == 200
        pad = "p" * 2000
        body = {f"r{i}": {"features": {"x": i, "pad": pad}} for i in range(1000)}  # ~2 MiB
        iterkeys = []
        before = rss(server)
        for _ in range(40):  # 80 MiB of bodies left half-read
            page = call(server, "POST", "/model/m/predict/1", json=body).json()
            iterkeys.append(page["iterkey"])
        grown = rss(server) - before
        assert grown < budget + 40 * MIB, f"RSS grew {grown / MIB:.0f} MiB"
        # The least recently used went; the latest are still there.
        oldest = call(server, "GET", f"/model/m/predict/{iterkeys[0]}/1")
        assert oldest.status_code == 404
        assert oldest.json() == {"error": "iterkey not found"}
        latest = call(server, "GET", f"/model/m/predict/{iterkeys[-1]}/2")
        assert list(latest.json()["records"]) == ["r1", "r2"]


def test_silent_connections_are_capped_and_health_answers(tmp_path: Path) -> None:
    cap = 30
    with live_server("-insecure", "-max-connections", str(cap), cwd=tmp_path) as server:
        baseline = fds(server)
        conns = []
        try:
            for _ in range(200):
                conns.append(socket.create_connection(("127.0.0.1", server.port), timeout=60))
            assert call(server, "GET", "/health").status_code == 200
            assert fds(server) <= baseline + cap + 2
        finally:
            for conn in conns:
                conn.close()


def test_many_labels_hold_bounded_descriptors_and_threads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    wide_csv(data / "a.csv", rows=3, width=10)
    import sqlite3

    db = sqlite3.connect(data / "a.db")
    with db:
        db.execute("CREATE TABLE records (key TEXT, x)")
        db.execute("INSERT INTO records VALUES ('a', 1)")
    db.close()
    cap = 40
    with live_server(
        "-insecure", "-upload-dir", str(data), "-max-labels", str(cap), cwd=tmp_path
    ) as server:
        baseline_fds, baseline_threads = fds(server), status(server, "Threads")
        refused = 0
        for i in range(120):
            plugin, config = (
                ("csv", {"filename": "a.csv"}) if i % 2 else ("sqlite", {"filename": "a.db"})
            )
            response = call(server, "POST", f"/configure/source/{plugin}/l{i}", json=config)
            if response.status_code == 409:
                refused += 1
                continue
            assert response.status_code == 200, response.text
            assert call(server, "GET", f"/context/source/l{i}/l{i}").status_code == 200
            assert call(server, "GET", f"/source/l{i}/records/10").status_code == 200
        assert refused == 120 - cap
        # One descriptor per label at most (a spool or a database), and the sqlite labels
        # share four threads.
        assert fds(server) <= baseline_fds + cap + 4
        assert status(server, "Threads") <= baseline_threads + 4 + 2


def test_bodies_over_the_limit_are_refused_without_being_kept(tmp_path: Path) -> None:
    limit = 2 * MIB
    with live_server("-insecure", "-max-body-size", str(limit), cwd=tmp_path) as server:
        assert call(server, "POST", "/configure/source/memory/s", json={}).status_code == 200
        assert call(server, "GET", "/context/source/s/s").status_code == 200
        big = b'{"features": {"x": "' + b"a" * (8 * MIB) + b'"}}'

        def refused(i: int) -> None:
            response = call(
                server,
                "POST",
                f"/source/s/update/k{i}",
                data=big,
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 413

        for i in range(3):  # warm up: the allocator keeps what the first buffers took
            refused(i)
        before = rss(server)
        for i in range(10):
            refused(i)
        # Kept, ten refused 8 MiB bodies would be 80 MiB more; each is read up to the limit
        # and let go.
        assert rss(server) - before < 40 * MIB
        assert call(server, "GET", "/source/s/records/10").json()["records"] == {}
