"""What -auth token, endpoint rules and the audit log cost: the same requests, with and without.

    python benchmarks/auth.py [--rounds 5] [--duration 5] [--connections 16] [--rows 10000]

Starts two servers from this checkout on 127.0.0.1, both preloaded with s1 = csv and m1 = slr
(trained once): "none" with -auth none, "token" with -auth token, 25 endpoint rules (the
requests measured match the last one) and -audit-log. Both stay up; each workload alternates
between them for --rounds rounds of --duration seconds with wrk, so a neighbour's burst on a
shared machine hits both alike. Prints every round, then per workload the median rate of each,
the spread (min-max) and token/none. Figures, not tests: nothing here asserts on time.
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
import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks import data  # noqa: E402
from benchmarks.servers import Server, _reap, _spawn, _wait_for_portfile, log  # noqa: E402
from service.auth.tokens import Tokens  # noqa: E402
from service.auth.users import User  # noqa: E402

WRK_DIR = REPO / "benchmarks" / "wrk"
CACHE = REPO / ".benchmarks"
PREDICT_BODY = '{"0": {"features": {"Years": 5}}, "1": {"features": {"Years": 7}}}'
ISSUER = AUDIENCE = "dffml-service-http"
# One wrk thread: the server gets the other core. Timeout well above any sane p99.
WRK = ("wrk", "-t1", "--timeout", "10s")


@dataclass(frozen=True)
class Workload:
    name: str
    script: str  # benchmarks/wrk/<script>.lua
    path: str
    env: dict[str, str]


def start(name: str, work: Path, csv: Path, extra: list[str], env: dict[str, str]) -> Server:
    work.mkdir(parents=True, exist_ok=True)
    upload_dir = work / "upload"
    upload_dir.mkdir(exist_ok=True)
    portfile = work / "port"
    log_path = work / "server.log"
    args = [
        *(sys.executable, "-m", "service", "server", "-port", "0", "-addr", "127.0.0.1"),
        *("-portfile", str(portfile), "-insecure", "-log", "30", "-upload-dir", str(upload_dir)),
        *("-sources", "s1=csv", "-source-s1-filename", str(csv)),
        *("-models", "m1=slr", "-model-m1-features", "Years:int:1"),
        *("-model-m1-predict", "Salary:int:1", "-model-m1-location", str(upload_dir / "m1")),
        *extra,
    ]
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        process = _spawn(args, REPO, log_path)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        port = _wait_for_portfile(process, portfile, log_path)
    except BaseException:
        _reap(process)
        raise
    return Server(name, process, port, log_path)


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


def wrk(server: Server, workload: Workload, token: str | None, seconds: int, conns: int) -> float:
    """Requests per second of one wrk run; any non-2xx answer makes the run fail loudly."""
    script = (WRK_DIR / "common.lua").read_text() + (WRK_DIR / f"{workload.script}.lua").read_text()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    headers = ["-H", f"Authorization: Bearer {token}"] if token is not None else []
    url = server.url + (workload.path if workload.script == "fixed" else "/")
    try:
        completed = subprocess.run(
            [*WRK, f"-c{conns}", f"-d{seconds}s", *headers, "-s", handle.name, url],
            env={**os.environ, "BENCH_MAX_REQUESTS": "0", **workload.env},
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    finally:
        os.unlink(handle.name)
    match = re.search(r"^BENCH (\{.*\})$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    summary = json.loads(match.group(1))
    errors = sum(summary[k] for k in ("connect_errors", "read_errors", "status_errors", "timeouts"))
    if errors:
        raise RuntimeError(f"{server.name} {workload.name}: {errors} failed requests")
    return float(summary["requests"]) / (summary["duration_us"] / 1e6)


def rules() -> str:
    """24 rules that match nothing measured, then the one that does (each is tried in turn)."""
    decoys = [f"model/team{i}/(predict|train)" for i in range(12)]
    decoys += [f"source/team{i}/records?" for i in range(12)]
    measured = r"(source/s1/record|model/m1/(predict|train))"
    return "\n".join([*decoys, "health/-/-", measured]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
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
    try:
        servers["none"] = start("none", work / "none", csv, [], {})
        servers["token"] = start(
            "token",
            work / "token",
            csv,
            ["-auth", "token", "-rules", str(rules_file), "-audit-log", str(audit)],
            {"DFFML_SERVICE_HTTP_SECRET_KEY": secret},
        )
        tokens = {"none": None, "token": token.token}
        for name, server in servers.items():
            status = call(server, "POST", "/model/m1/train", tokens[name], ["s1"])
            if status != 200:
                raise RuntimeError(f"training m1 on {name}: HTTP {status}")
        workloads = [
            Workload(
                "record/{key}",
                "random_key",
                "/source/s1/record/",
                {"BENCH_PREFIX": "/source/s1/record/", "BENCH_KEYS": str(args.rows)},
            ),
            Workload(
                "predict/0",
                "fixed",
                "/model/m1/predict/0",
                {"BENCH_METHOD": "POST", "BENCH_BODY": PREDICT_BODY},
            ),
        ]
        rates: dict[tuple[str, str], list[float]] = {}
        for workload in workloads:
            for round_ in range(1, args.rounds + 1):
                # Alternate which goes first, so neither always runs on a warmer machine.
                order = ["none", "token"] if round_ % 2 else ["token", "none"]
                for name in order:
                    rate = wrk(
                        servers[name], workload, tokens[name], args.duration, args.connections
                    )
                    rates.setdefault((workload.name, name), []).append(rate)
                    log(f"{workload.name:13} round {round_} {name:5} {rate:9.0f} req/s")
        audit_lines = sum(1 for _ in audit.open(encoding="utf-8")) if audit.exists() else 0
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        f"2 cores shared with other work; {args.rounds} rounds x {args.duration} s, wrk -t1 "
        f"-c{args.connections}; audit log lines written: {audit_lines}"
    )
    print(f"{'workload':14} {'none req/s':>22} {'token+rules+audit':>24} {'token/none':>11}")
    for workload in workloads:
        none, token_ = rates[(workload.name, "none")], rates[(workload.name, "token")]
        ratio = statistics.median(token_) / statistics.median(none)
        print(
            f"{workload.name:14} {statistics.median(none):9.0f} ({min(none):5.0f}-{max(none):5.0f})"
            f" {statistics.median(token_):10.0f} ({min(token_):5.0f}-{max(token_):5.0f})"
            f" {ratio:10.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
