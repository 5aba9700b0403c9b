"""Benchmark this server against the original DFFML HTTP service and a bare aiohttp ceiling.

    python benchmarks/run.py [--quick] [--only records/1000,predict/slr] [--servers this,ceiling]

Generates the data (cached in .benchmarks/data), starts each server in turn on 127.0.0.1 with the
same preloads, drives every workload with wrk (or a bounded Python load generator), stops the
server, and prints one table with the ratios this/original and this/ceiling from the same run.
Figures, not tests: nothing here asserts on time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"


def _use_project_venv() -> None:
    """Re-run under the project's .venv (creating it with scripts/setup when missing)."""
    if Path(sys.prefix).resolve() == (REPO / ".venv").resolve():
        return
    if not VENV_PYTHON.exists():
        import subprocess

        subprocess.run([str(REPO / "scripts" / "setup")], check=True)
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])


if __name__ == "__main__":
    _use_project_venv()
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from importlib.metadata import entry_points  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks import data, load, servers  # noqa: E402
from benchmarks.servers import RssSampler, Server, log  # noqa: E402

CACHE = REPO / ".benchmarks"
MIB = 1024 * 1024
PREDICT_BODY = b'{"0": {"features": {"Years": 5}}, "1": {"features": {"Years": 7}}}'
SERVER_ORDER = ("this", "ceiling", "original")
UPLOAD_LABEL = f"upload {data.UPLOAD_BYTES // MIB} MiB"


@dataclass
class Row:
    workload: str
    server: str
    requests: int = 0
    seconds: float = 0.0
    records_per_request: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    peak_rss: int | None = None
    rss_growth: int | None = None
    cpu_us_per_request: float | None = None
    megabytes_per_second: float | None = None
    errors: int = 0
    driver: str = ""
    note: str = ""
    group: int = 0  # the workload's place in WORKLOADS, to order the table

    @property
    def rate(self) -> float | None:
        return self.requests / self.seconds if self.seconds and self.requests else None

    @property
    def records_rate(self) -> float | None:
        rate = self.rate
        return rate * self.records_per_request if rate and self.records_per_request else None

    @property
    def score(self) -> float | None:
        """The figure ratios compare: MB/s for uploads, else requests/s."""
        return self.megabytes_per_second if self.megabytes_per_second else self.rate


@dataclass
class Options:
    duration: float
    connections: int
    rows: int
    iterkeys: int
    uploads: int
    driver: str
    only: set[str] | None
    profile: str | None = None
    csv: Path = field(default=Path())
    train_csv: Path = field(default=Path())
    upload_file: Path = field(default=Path())


@dataclass
class Workload:
    name: str  # for --only
    label: str  # in the table
    needs: str  # what the server must have loaded: "csv", "slr", "scikitlr", "upload" or ""
    run: Callable[[Server, Options], list[Row]]


# --- helpers -------------------------------------------------------------------------------


def request(
    server: Server, method: str, path: str, body: Any = None, timeout: float = 600
) -> tuple[int, Any]:
    """One JSON request; returns (status, parsed body or text)."""
    data_bytes = body if isinstance(body, bytes) else None
    if body is not None and data_bytes is None:
        data_bytes = json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data_bytes, method=method)
    if data_bytes is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def nested(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """DFFML's nested configure body, understood by both this server and the original."""
    return {
        kind: {
            "plugin": None,
            "config": {name: {"plugin": value, "config": {}} for name, value in config.items()},
        }
    }


def measured(
    server: Server,
    options: Options,
    name: str,
    spec: load.Load,
    records_per_request: int,
    workload: str,
) -> Row:
    """Run one load while sampling the server's RSS and CPU (and profiling it if asked)."""
    cpu_before = server.cpu_seconds()
    rss_before = server.rss()
    with profiled(server, options, workload), RssSampler(server) as sampler:
        result = load.run(server.url, spec, options.driver)
    cpu = server.cpu_seconds() - cpu_before
    return Row(
        workload=name,
        server=server.name,
        requests=result.requests,
        seconds=result.seconds,
        records_per_request=records_per_request,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        peak_rss=sampler.peak,
        rss_growth=server.rss() - rss_before,
        cpu_us_per_request=cpu / result.requests * 1e6 if result.requests else None,
        errors=result.errors,
        driver=result.driver,
    )


@contextlib.contextmanager
def profiled(server: Server, options: Options, workload: str) -> Iterator[None]:
    """With ``--profile WORKLOAD``, sample this server with py-spy while the load runs: the
    collapsed stacks go to .benchmarks/profile-*.txt and the top frames are printed."""
    if options.profile != workload or server.name != "this":
        yield
        return
    spy = profiler()
    out = CACHE / f"profile-{workload.replace('/', '_')}.txt"
    # --gil: only the thread holding the GIL, i.e. where Python time goes; idle threads are not.
    args = [spy, "record", "-p", str(server.process.pid), "-f", "raw", "-r", "250", "--gil"]
    process = subprocess.Popen(
        [*args, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
    if out.exists():
        print_profile(out)


def profiler() -> str:
    """py-spy, installed into the benchmark's venv on first use (not a project dependency)."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        log("installing py-spy into the venv for --profile")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return str(spy)


def print_profile(path: Path, top: int = 25) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    log(f"profile: {total} samples holding the GIL, collapsed stacks in {path}")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        for frame, count in counter.most_common(top):
            print(f"  {count / total:6.1%} {title:9} {frame}", file=sys.stderr)


def probe(server: Server, method: str, path: str, body: Any = None) -> str | None:
    """None when one request answers 200, else why the workload is skipped."""
    status, answer = request(server, method, path, body)
    if status == 200:
        return None
    return f"{method} {path} → {status} {str(answer)[:80]}"


# --- workloads -----------------------------------------------------------------------------


def list_models(server: Server, options: Options) -> list[Row]:
    if why := probe(server, "GET", "/list/models"):
        return [Row("list/models", server.name, note=why)]
    spec = load.Load(
        "fixed", "/list/models", duration=options.duration, connections=options.connections
    )
    return [measured(server, options, "list/models", spec, 0, "list/models")]


def record_by_key(server: Server, options: Options) -> list[Row]:
    name = "record/{key}"
    if why := probe(server, "GET", f"/source/s1/record/{options.rows // 2}"):
        return [Row(name, server.name, note=why)]
    spec = load.Load(
        "random_key",
        "/source/s1/record/",
        keys=options.rows,
        duration=options.duration,
        connections=options.connections,
    )
    return [measured(server, options, name, spec, 1, "record/{key}")]


def records_1000(server: Server, options: Options) -> list[Row]:
    name = "records/1000"
    if why := probe(server, "GET", "/source/s1/records/1000"):
        return [Row(name, server.name, note=why)]
    spec = load.Load(
        "paging",
        "/source/s1/records/",
        chunk=1000,
        duration=options.duration,
        connections=options.connections,
    )
    return [measured(server, options, name, spec, min(1000, options.rows), "records/1000")]


def records_10(server: Server, options: Options) -> list[Row]:
    """Requests that each start an iteration and abandon its iterkey; then keep going until
    ``options.iterkeys`` iterkeys are abandoned, and report the server's RSS growth."""
    name = "records/10"
    if why := probe(server, "GET", "/source/s1/records/10"):
        return [Row(name, server.name, note=why)]
    rss_before = server.rss()
    spec = load.Load(
        "fixed", "/source/s1/records/10", duration=options.duration, connections=options.connections
    )
    timed = measured(server, options, name, spec, 10, "records/10")
    abandoned = timed.requests + 1
    peak = timed.peak_rss or 0
    started = time.monotonic()
    while abandoned < options.iterkeys and time.monotonic() - started < 300:
        remaining = options.iterkeys - abandoned
        # wrk runs for its whole -d even after the cap stops its thread: size -d to the rate.
        seconds = min(120.0, max(1.0, remaining / max(timed.rate or 1.0, 1.0) * 1.1))
        spec = load.Load(
            "fixed",
            "/source/s1/records/10",
            duration=seconds,
            connections=options.connections,
            max_requests=remaining,
        )
        with RssSampler(server) as sampler:
            result = load.run(server.url, spec, options.driver)
        abandoned += result.requests
        peak = max(peak, sampler.peak)
    growth = Row(
        f"records/10: {abandoned // 1000}k iterkeys",
        server.name,
        peak_rss=peak,
        rss_growth=server.rss() - rss_before,
        note=f"{abandoned} iterkeys abandoned",
    )
    return [timed, growth]


def train(server: Server, model: str) -> str | None:
    """Train ``model`` on the 1000-row CSV (source context s2); None when it worked."""
    status, answer = request(server, "POST", f"/model/{model}/train", ["s2"])
    return None if status == 200 else f"train {model} → {status} {str(answer)[:80]}"


def ensure_training_source(server: Server, options: Options) -> str | None:
    upload_dir = server.log_path.parent / "upload"
    if not (upload_dir / "train.csv").exists():
        shutil.copyfile(options.train_csv, upload_dir / "train.csv")
        status, answer = request(
            server,
            "POST",
            "/configure/source/csv/s2",
            nested("source", {"filename": ["train.csv"]}),
        )
        if status != 200:
            return f"configure csv s2 → {status} {str(answer)[:80]}"
        status, answer = request(server, "GET", "/context/source/s2/s2")
        if status != 200:
            return f"context s2 → {status} {str(answer)[:80]}"
    return None


def predict(model: str, plugin: str) -> Callable[[Server, Options], list[Row]]:
    def run(server: Server, options: Options) -> list[Row]:
        name = f"predict/0 {plugin}, 2 records"
        if server.name != "ceiling":
            why = ensure_training_source(server, options)
            if not why and plugin != "slr":
                config = {
                    "features": ["Years:int:1"],
                    "predict": "Salary:int:1",
                    ("location" if server.uses_location else "directory"): [model],
                }
                status, answer = request(
                    server, "POST", f"/configure/model/{plugin}/{model}", nested("model", config)
                )
                why = None if status == 200 else f"configure {plugin} → {status} {answer}"[:120]
                if not why:
                    status, answer = request(server, "GET", f"/context/model/{model}/{model}")
                    why = None if status == 200 else f"context {model} → {status} {answer}"[:120]
            why = why or train(server, model)
            if why:
                return [Row(name, server.name, note=why)]
        path = f"/model/{model}/predict/0"
        if why := probe(server, "POST", path, PREDICT_BODY):
            return [Row(name, server.name, note=why)]
        spec = load.Load(
            "fixed",
            path,
            method="POST",
            body=PREDICT_BODY,
            duration=options.duration,
            connections=options.connections,
        )
        return [measured(server, options, name, spec, 2, f"predict/{plugin}")]

    return run


def upload(server: Server, options: Options) -> list[Row]:
    """``options.uploads`` sequential multipart uploads of the 256 MiB file with curl."""
    name = UPLOAD_LABEL
    curl = shutil.which("curl")
    if curl is None:
        return [Row(name, server.name, note="curl not found (apt-get install curl)")]
    upload_dir = server.log_path.parent / "upload"
    size = options.upload_file.stat().st_size
    times: list[float] = []
    rss_before = server.rss()
    cpu_before = server.cpu_seconds()
    with profiled(server, options, "upload"), RssSampler(server) as sampler:
        for index in range(options.uploads):
            target = f"bench-{index}.bin"
            completed = subprocess.run(
                [
                    *(curl, "-sS", "-o", "-", "-w", "\n%{http_code} %{time_total}"),
                    # No "Expect: 100-continue" round trip: send the body at once.
                    *("-H", "Expect:", "-F", f"file=@{options.upload_file}"),
                    f"{server.url}/service/upload/{target}",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            body, _, tail = completed.stdout.rpartition("\n")
            status, seconds = [*tail.split(), "0", "0"][:2]
            (upload_dir / target).unlink(missing_ok=True)
            if not status.startswith("2"):
                return [Row(name, server.name, note=f"upload → {status} {body[:80]}")]
            times.append(float(seconds))
    median = statistics.median(times)
    return [
        Row(
            name,
            server.name,
            requests=len(times),
            seconds=sum(times),
            p50_ms=median * 1000,
            p99_ms=max(times) * 1000,
            peak_rss=sampler.peak,
            rss_growth=sampler.peak - rss_before,
            megabytes_per_second=size / median / 1e6,
            cpu_us_per_request=(server.cpu_seconds() - cpu_before) / len(times) * 1e6,
            driver="curl",
        )
    ]


WORKLOADS = [
    Workload("record/{key}", "record/{key}", "csv", record_by_key),
    Workload("records/1000", "records/1000", "csv", records_1000),
    Workload("records/10", "records/10", "csv", records_10),
    Workload("predict/slr", "predict/0 slr, 2 records", "slr", predict("m1", "slr")),
    Workload(
        "predict/scikitlr", "predict/0 scikitlr, 2 records", "scikitlr", predict("m2", "scikitlr")
    ),
    Workload("list/models", "list/models", "", list_models),
    Workload("upload", UPLOAD_LABEL, "", upload),
]


# --- running -------------------------------------------------------------------------------


def this_has(what: str) -> bool:
    """Whether this checkout provides a plugin the workload needs (routes are probed live)."""
    groups = {"csv": "source", "slr": "model", "scikitlr": "model"}
    if what not in groups:
        return True
    names = {ep.name for ep in entry_points(group=f"dffml_service_http.{groups[what]}")}
    return what in names


def bench_server(name: str, work: Path, options: Options, rows: list[Row]) -> None:
    work.mkdir(parents=True)
    selected = [w for w in WORKLOADS if options.only is None or w.name in options.only]
    if name == "this":
        missing = [w for w in selected if not this_has(w.needs)]
        for workload in missing:
            rows.append(
                Row(workload.name, name, note=f"no '{workload.needs}' plugin in this checkout")
            )
        selected = [w for w in selected if w not in missing]
        log("starting this server")
        server = servers.start_this(work, options.csv, this_has("csv"), this_has("slr"))
    elif name == "ceiling":
        listing = CACHE / "list-models.json"
        log("starting the ceiling app")
        server = servers.start_ceiling(work, options.csv, listing if listing.exists() else None)
    else:
        if why := servers.original_available():
            rows.extend(Row(w.label, name, note=why, group=WORKLOADS.index(w)) for w in selected)
            log(f"skipping the original: {why}")
            return
        log("starting the original (it loads the whole CSV first; ~30 s for 1M rows)")
        server = servers.start_original(work, options.csv)
    try:
        log(f"{name} listening on {server.url}, RSS {server.rss() / MIB:.0f} MiB")
        if name == "this":
            status, listing_body = request(server, "GET", "/list/models")
            if status == 200:
                (CACHE / "list-models.json").write_text(json.dumps(listing_body))
        for workload in selected:
            log(f"{name}: {workload.name}")
            try:
                produced = workload.run(server, options)
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                produced = [Row(workload.label, name, note=f"failed: {error}"[:160])]
            for row in produced:
                row.group = WORKLOADS.index(workload)
            rows.extend(produced)
            if server.process.poll() is not None:
                raise RuntimeError(f"{name} exited during {workload.name}:\n{server.log_tail()}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 s loads, 1000 rows, 10k iterkeys, 1 upload"
    )
    parser.add_argument(
        "--only", help="comma-separated workloads: " + ", ".join(w.name for w in WORKLOADS)
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVER_ORDER),
        help="comma-separated subset of this,ceiling,original",
    )
    parser.add_argument("--duration", type=float, help="seconds per load (default 10, quick 3)")
    parser.add_argument(
        "--connections", type=int, default=16, help="concurrent connections (default 16)"
    )
    parser.add_argument(
        "--rows", type=int, help="rows of the big CSV (default 1000000, quick 1000)"
    )
    parser.add_argument(
        "--iterkeys", type=int, help="iterkeys to abandon (default 100000, quick 10000)"
    )
    parser.add_argument("--driver", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--profile",
        metavar="WORKLOAD",
        help="py-spy this server during WORKLOAD; prints top frames",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()

    only = set(args.only.split(",")) if args.only else None
    unknown = (only or set()) - {w.name for w in WORKLOADS}
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    wanted = [s for s in SERVER_ORDER if s in args.servers.split(",")]
    driver = args.driver
    if driver == "auto":
        hint = load.install_hint()
        if hint:
            log(hint)
        driver = "wrk" if load.wrk_available() else "python"
    options = Options(
        duration=args.duration or (3.0 if args.quick else 10.0),
        connections=args.connections,
        rows=args.rows or (1000 if args.quick else 1_000_000),
        iterkeys=args.iterkeys or (10_000 if args.quick else 100_000),
        uploads=1 if args.quick else 3,
        driver=driver,
        only=only,
        profile=args.profile,
    )
    data_dir = CACHE / "data"
    log(f"data in {data_dir} (generated on first use)")
    options.csv = data.csv_path(data_dir, options.rows)
    options.train_csv = data.csv_path(data_dir, 1000)
    if only is None or "upload" in only:
        options.upload_file = data.upload_path(data_dir)

    rows: list[Row] = []
    started = datetime.datetime.now(datetime.timezone.utc)
    CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=CACHE) as scratch:
        for name in wanted:
            bench_server(name, Path(scratch) / name, options, rows)
    print_report(rows, options, started, wanted)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))


# --- the report ----------------------------------------------------------------------------

TARGETS: dict[str, list[tuple[str, str, float]]] = {
    # workload prefix: (what, comparison, threshold)
    "records/1000": [("original", "x", 30.0), ("ceiling", "%", 0.40)],
    "record/{key}": [("original", "x", 2.5)],
    "predict/0 slr": [("original", "x", 4.0), ("ceiling", "%", 0.40)],
}


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "" if value is None else format(value, spec)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.machine()


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def print_report(
    rows: list[Row], options: Options, started: datetime.datetime, wanted: list[str]
) -> None:
    by_key = {(r.workload, r.server): r for r in rows}
    ordered = sorted(enumerate(rows), key=lambda pair: (pair[1].group, pair[0]))
    workloads = list(dict.fromkeys(row.workload for _, row in ordered))
    print()
    print(
        f"{started:%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores "
        f"({cpu_model()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, driver {options.driver} "
        f"(-c{options.connections}, {options.duration:g} s per load), {options.rows:,}-row CSV"
    )
    print()
    header = (
        "| workload | server | req/s | records/s | p50 ms | p99 ms | peak RSS MiB "
        "| RSS growth MiB | server CPU µs/req | this/original | this/ceiling |"
    )
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    for workload in workloads:
        this = by_key.get((workload, "this"))
        for server in wanted:
            row = by_key.get((workload, server))
            if row is None:
                continue
            if row.note and not row.requests and row.rss_growth is None:
                note = " ".join(row.note.split()).replace("|", "/")
                print(f"| {workload} | {server} | {note} |" + " |" * 8)
                continue
            versus = {}
            if server == "this" and this is not None and this.score:
                for other in ("original", "ceiling"):
                    theirs = by_key.get((workload, other))
                    if theirs is not None and theirs.score:
                        versus[other] = this.score / theirs.score
            rate = (
                f"{row.megabytes_per_second:,.0f} MB/s"
                if row.megabytes_per_second
                else _fmt(row.rate)
            )
            errors = f" ({row.errors} errors)" if row.errors else ""
            print(
                f"| {workload} | {server} | {rate}{errors} | {_fmt(row.records_rate)} "
                f"| {_fmt(row.p50_ms, '.2f')} | {_fmt(row.p99_ms, '.2f')} "
                f"| {_fmt(row.peak_rss and row.peak_rss / MIB)} "
                f"| {_fmt(row.rss_growth and row.rss_growth / MIB, '+.1f')} "
                f"| {_fmt(row.cpu_us_per_request)} "
                f"| {_ratio(versus.get('original'))} | {_percent(versus.get('ceiling'))} |"
            )
    print()
    for line in target_lines(by_key):
        print(line)


def target_lines(by_key: dict[tuple[str, str], Row]) -> list[str]:
    lines = []

    def ratio(workload: str, other: str) -> float | None:
        this, theirs = by_key.get((workload, "this")), by_key.get((workload, other))
        if this is None or theirs is None or not this.score or not theirs.score:
            return None
        return this.score / theirs.score

    for (workload, server), row in by_key.items():
        if server != "this":
            continue
        for prefix, targets in TARGETS.items():
            if not workload.startswith(prefix):
                continue
            for other, kind, threshold in targets:
                value = ratio(workload, other)
                want = (
                    f"≥ {threshold:g}x the {other}"
                    if kind == "x"
                    else f"≥ {threshold:.0%} of the {other}"
                )
                got = (
                    "no figure"
                    if value is None
                    else (f"{value:.2f}x" if kind == "x" else f"{value:.0%}")
                )
                verdict = "" if value is None else (" met" if value >= threshold else " NOT met")
                lines.append(f"target {workload}: {want}: {got}{verdict}")
        if "iterkeys" in workload and row.rss_growth is not None:
            growth = row.rss_growth / MIB
            lines.append(
                f"target {workload}: RSS growth < 50 MiB: {growth:+.1f} MiB"
                f" {'met' if growth < 50 else 'NOT met'}"
            )
        if workload.startswith("upload") and row.megabytes_per_second:
            growth = (row.rss_growth or 0) / MIB
            speed_ok = row.megabytes_per_second >= 300
            lines.append(
                f"target {workload}: ≥ 300 MB/s: {row.megabytes_per_second:,.0f} MB/s"
                f" {'met' if speed_ok else 'NOT met'}; RSS growth < 64 MiB: {growth:+.1f} MiB"
                f" {'met' if growth < 64 else 'NOT met'}"
            )
    return lines


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM unwind through the ``finally`` blocks that stop every server (they run
    in sessions of their own, so no signal reaches them directly). SIGINT is set explicitly:
    a shell starting this in the background would otherwise leave it ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


if __name__ == "__main__":
    _stop_on_signals()
    try:
        main()
    except KeyboardInterrupt:
        log("interrupted: every server started was stopped")
        sys.exit(130)
