"""Instructions per request, counted by valgrind: what an option costs, free of machine noise.

    python benchmarks/instructions.py [--requests 1000] [--warmup 300] [--split]

The throughput benchmarks (observability.py, auth.py) compare requests/s and CPU per request,
but on a shared two-core machine those move by 10-25% between rounds of the same server, more
than the few percent the options cost. Here each server of this checkout runs under valgrind's
callgrind, which counts the instructions it executes (user space: the kernel's share, a few
system calls per request alike for every server, is not counted). Counting starts after a
warm-up, so start-up and first-request caches are left out. For a server that is bound by its
CPU, as these are, throughput is the inverse of the work per request: the ratio of instructions
per request is the throughput ratio the options would give on a quiet machine, before cache
effects (which callgrind does not model). The audit log's writer process is counted apart.

Under valgrind a server answers ~150 requests/s, not thousands, so work done so many times a
second (the event loop's timers, the audit thread's 20 hand-overs) weighs ~30x more per request
than at full speed: the count errs against the options that have such work.

Servers, each with s1 = csv and m1 = slr trained on it:

    default   the defaults (access log on), metrics on
    log30     -log 30, metrics on; also "none" of auth.py: -auth none
    on        -log 30, metrics on, -rate-limit 1000000/s (a bucket check per request)
    off       -log 30, -metrics off, no rate limit (request ids are always made)
    token     -log 30, -auth token, 25 endpoint rules, -audit-log
    (--split: token-only, rules-only, audit-only, each alone)

Needs valgrind (Debian: apt-get install valgrind). About 1 minute per server. Figures, not
tests: nothing asserts.
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
import asyncio  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks import auth, data, load  # noqa: E402
from benchmarks.servers import Server, children, log, start_this  # noqa: E402
from service.auth.tokens import Tokens  # noqa: E402
from service.kernel.users import User  # noqa: E402

ROWS = 10_000
WORKLOADS = auth.WORKLOADS
CONNECTIONS = 8
CALLGRIND = (
    "valgrind",
    "--tool=callgrind",
    "--instr-atstart=no",  # start-up runs uninstrumented (faster); switched on once listening
    "--trace-children=yes",  # the audit log's writer process is counted too, on its own
)


@dataclass(frozen=True)
class Config:
    log_level: str | None
    extra: tuple[str, ...]
    token: bool = False  # send the benchmark user's token


def configs(work: Path, split: bool) -> dict[str, Config]:
    rules = work / "rules"
    rules.write_text(auth.rules())
    guarded = ("-rules", str(rules), "-audit-log", str(work / "audit.jsonl"))
    found = {
        "default": Config(None, ()),
        "log30": Config("30", ()),
        "on": Config("30", ("-rate-limit", "1000000/s")),
        "off": Config("30", ("-metrics", "off")),
        "token": Config("30", ("-auth", "token", *guarded), token=True),
    }
    if split:
        found["token-only"] = Config("30", ("-auth", "token"), token=True)
        found["rules-only"] = Config("30", guarded[:2])
        found["audit-only"] = Config("30", ("-audit-log", str(work / "audit-only.jsonl")))
    return found


def processes(server: Server) -> list[int]:
    """The server's pid, then its child processes' (the audit log's writer)."""
    return [server.process.pid, *children(server.process.pid)]


def control(server: Server, *options: str) -> None:
    for pid in processes(server):
        subprocess.run(
            ["callgrind_control", *options, str(pid)],
            check=True,
            capture_output=True,
            timeout=120,
        )


def dumped_instructions(work: Path, before: set[Path], pid: int) -> int:
    """The instruction total of the dump callgrind_control -d just wrote for ``pid``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in set(work.glob(f"callgrind.out.{pid}.*")) - before:
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith(("totals:", "summary:")):
                    return int(line.split()[1])
        time.sleep(0.2)
    raise RuntimeError(f"no callgrind dump of process {pid} appeared in {work}")


def drive(server: Server, workload: str, token: str | None, count: int) -> int:
    spec = auth.spec(workload, ROWS, token, 600, CONNECTIONS)
    spec = load.Load(**{**spec.__dict__, "max_requests": count})
    result = asyncio.run(load.run_python(server.url, spec))
    if result.errors:
        raise RuntimeError(f"{server.name} {workload}: {result.errors} failed requests")
    return result.requests


def per_request(
    server: Server, work: Path, workload: str, token: str | None, args: Any
) -> tuple[float, float]:
    """Instructions per request of the server process and of its children."""
    drive(server, workload, token, args.warmup)
    control(server, "-z")
    before = set(work.glob("callgrind.out.*"))
    count = drive(server, workload, token, args.requests)
    control(server, "-d")
    server_pid, *kids = processes(server)
    own = dumped_instructions(work, before, server_pid)
    others = sum(dumped_instructions(work, before, pid) for pid in kids)
    return own / count, others / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=1000, help="counted per workload")
    parser.add_argument("--warmup", type=int, default=300, help="uncounted, before each count")
    parser.add_argument("--split", action="store_true", help="also token, rules, audit alone")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    csv = data.csv_path(auth.CACHE / "data", ROWS)
    work = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    secret = secrets.token_hex(32)
    token = Tokens(secret.encode(), issuer=auth.ISSUER, audience=auth.AUDIENCE, ttl=3600).issue(
        User("bench")
    )
    results: dict[tuple[str, str], float] = {}  # the server process
    others_of: dict[tuple[str, str], float] = {}  # its child processes (the audit writer)
    try:
        for name, config in configs(work, args.split).items():
            home = work / name
            home.mkdir()
            prefix = (*CALLGRIND, f"--callgrind-out-file={home}/callgrind.out.%p")
            server = start_this(
                home,
                csv,
                True,
                True,
                name=name,
                log_level=config.log_level,
                extra=config.extra,
                env={"DFFML_SERVICE_HTTP_SECRET_KEY": secret},
                prefix=prefix,
            )
            try:
                sent = token.token if config.token else None
                status = auth.call(server, "POST", "/model/m1/train", sent, ["s1"])
                if status != 200:
                    raise RuntimeError(f"training m1 on {name}: HTTP {status}")
                control(server, "-i", "on")
                for workload in WORKLOADS:
                    own, others = per_request(server, home, workload, sent, args)
                    results[(workload, name)] = own
                    others_of[(workload, name)] = others
                    log(f"{name:10} {workload:13} {own:10,.0f} + {others:8,.0f} instr/req")
            finally:
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, others_of, args)
    return 0


def report(
    results: dict[tuple[str, str], float],
    children: dict[tuple[str, str], float],
    args: Any,
) -> None:
    print(
        f"\n{args.requests} requests counted per cell after {args.warmup} uncounted,"
        f" {CONNECTIONS} connections (Python driver), valgrind --tool=callgrind."
    )
    print(
        "\n| server | "
        + " | ".join(f"{w} instr/request (+ child processes)" for w in WORKLOADS)
        + " |"
    )
    print("| --- |" + " --- |" * len(WORKLOADS))
    names = dict.fromkeys(name for _, name in results)
    for name in names:
        cells = " | ".join(
            f"{results[(w, name)]:,.0f} (+ {children[(w, name)]:,.0f})" for w in WORKLOADS
        )
        print(f"| {name} | {cells} |")
    print(
        "\n| comparison | "
        + " | ".join(f"{w}: server process | {w}: all processes" for w in WORKLOADS)
        + " |"
    )
    print("| --- |" + " --- | --- |" * len(WORKLOADS))
    pairs = [("default", "log30"), ("on", "off"), ("token", "log30")]
    pairs += [(name, "log30") for name in names if name.endswith("-only")]
    for one, other in pairs:
        cells = []
        for w in WORKLOADS:
            own = results[(w, other)] / results[(w, one)]
            every = (results[(w, other)] + children[(w, other)]) / (
                results[(w, one)] + children[(w, one)]
            )
            cells.append(f"{own:.3f} | {every:.3f}")
        print(f"| {one} / {other} | {' | '.join(cells)} |")
    print(
        "\nComparison: instructions per request of the second over the first, the throughput"
        " ratio they imply (1.000: the first costs nothing more; 0.950: 5% less throughput)."
        " Server process: what bounds throughput while another core is free for the audit"
        " log's writer process; all processes: the whole CPU bill."
    )


if __name__ == "__main__":
    sys.exit(main())
