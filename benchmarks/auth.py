"""What -auth token, endpoint rules and the audit log cost: the same requests, with and without.

    python benchmarks/auth.py [--rounds 5] [--duration 5] [--connections 16] [--rows 10000]

Starts two servers from this checkout on 127.0.0.1, both preloaded with s1 = csv and m1 = slr
(trained once): "none" with -auth none, "token" with -auth token, 25 endpoint rules (the
requests measured match the last one) and -audit-log. Both stay up; each round drives every
(workload, server) pair once, the order alternating between rounds, so a neighbour's burst on a
shared machine hits both alike. Printed per pair: the median requests/s and the server's CPU per
request (user + system from /proc, the steadier figure on a busy machine), with their ranges,
and token/none per round. Figures, not tests: nothing here asserts on time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    if Path(sys.prefix).resolve() != (REPO / ".venv").resolve() and (REPO / ".venv").exists():
        os.execv(str(REPO / ".venv/bin/python"), [str(REPO / ".venv/bin/python"), *sys.argv])
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import json  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks import data, load  # noqa: E402
from benchmarks.observability import Cell, load_average, measure, ratio, spread  # noqa: E402
from benchmarks.servers import Server, log, start_this  # noqa: E402
from service.auth.tokens import Tokens  # noqa: E402
from service.kernel.users import User  # noqa: E402

CACHE = REPO / ".benchmarks"
PREDICT_BODY = b'{"0": {"features": {"Years": 5}}, "1": {"features": {"Years": 7}}}'
ISSUER = AUDIENCE = "dffml-service-http"
WORKLOADS = ("record/{key}", "predict/0")


def call(server: Server, method: str, path: str, token: str | None, body: Any = None) -> int:
    raw = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=raw, method=method)
    if raw is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=600) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def rules() -> str:
    """24 rules that match nothing measured, then the one that does (each is tried in turn)."""
    decoys = [f"model/team{i}/(predict|train)" for i in range(12)]
    decoys += [f"source/team{i}/records?" for i in range(12)]
    measured = r"(source/s1/record|model/m1/(predict|train))"
    return "\n".join([*decoys, "health/-/-", measured]) + "\n"


def spec(workload: str, rows: int, token: str | None, seconds: float, conns: int) -> load.Load:
    headers = (f"Authorization: Bearer {token}",) if token is not None else ()
    if workload == "record/{key}":
        return load.Load(
            "random_key",
            "/source/s1/record/",
            keys=rows,
            duration=seconds,
            connections=conns,
            headers=headers,
        )
    return load.Load(
        "fixed",
        "/model/m1/predict/0",
        method="POST",
        body=PREDICT_BODY,
        duration=seconds,
        connections=conns,
        headers=headers,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    if not load.wrk_available():
        print("wrk is not installed (scripts/system-deps installs it)", file=sys.stderr)
        return 2
    csv = data.csv_path(CACHE / "data", args.rows)
    work = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    secret = secrets.token_hex(32)
    rules_file = work / "rules"
    rules_file.write_text(rules())
    audit = work / "audit.jsonl"
    token = Tokens(secret.encode(), issuer=ISSUER, audience=AUDIENCE, ttl=3600).issue(User("bench"))
    servers: dict[str, Server] = {}
    cells = {(w, name): Cell() for w in WORKLOADS for name in ("none", "token")}
    load_before = load_average()
    try:
        servers["none"] = start_this(work / "none", csv, True, True, name="none")
        servers["token"] = start_this(
            work / "token",
            csv,
            True,
            True,
            name="token",
            extra=["-auth", "token", "-rules", str(rules_file), "-audit-log", str(audit)],
            env={"DFFML_SERVICE_HTTP_SECRET_KEY": secret},
        )
        tokens = {"none": None, "token": token.token}
        for name, server in servers.items():
            status = call(server, "POST", "/model/m1/train", tokens[name], ["s1"])
            if status != 200:
                raise RuntimeError(f"training m1 on {name}: HTTP {status}")
        for round_ in range(1, args.rounds + 1):
            # Alternate which goes first, so neither always runs on a warmer machine.
            order = ["none", "token"] if round_ % 2 else ["token", "none"]
            for workload in WORKLOADS:
                for name in order:
                    what = spec(workload, args.rows, tokens[name], args.duration, args.connections)
                    sample = measure(servers[name], what, "wrk")
                    if sample.errors:
                        raise RuntimeError(f"{name} {workload}: {sample.errors} failed requests")
                    cells[(workload, name)].samples.append(sample)
                    log(
                        f"{workload:13} round {round_} {name:5} {sample.rate:9,.0f} req/s"
                        f" {sample.cpu_us:7.1f} µs CPU/req"
                    )
        audit_lines = sum(1 for _ in audit.open(encoding="utf-8")) if audit.exists() else 0
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{args.rounds} rounds x {args.duration} s, wrk -t1 -c{args.connections},"
        f" {os.cpu_count()} cores; load average {load_before} before, {load_average()} after;"
        f" audit log lines written: {audit_lines}"
    )
    print("\n| workload | server | req/s median [range] | µs CPU/request median [range] |")
    print("| --- | --- | --- | --- |")
    for (workload, name), cell in cells.items():
        print(
            f"| {workload} | {name} | {spread(cell.rates(), ',.0f')} |"
            f" {spread(cell.cpus(), '.1f')} |"
        )
    print("\n| comparison | throughput ratio median [range] | CPU ratio median [range] |")
    print("| --- | --- | --- |")
    for workload in WORKLOADS:
        token_, none = cells[(workload, "token")], cells[(workload, "none")]
        print(
            f"| {workload}: token / none | {ratio(token_.rates(), none.rates())} |"
            f" {ratio(none.cpus(), token_.cpus())} |"
        )
    print(
        "\nThroughput ratio: per round, req/s with token over without (1.00: no cost)."
        " CPU ratio: per round, µs of CPU per request without over with (below 1.00: the checks"
        " cost CPU)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
