"""What a state write and a state read cost on each backend: SQLite file vs local PostgreSQL.

    python benchmarks/state.py [--ops 500] [--repeat 3] [--no-fsync]

Each round saves ``--ops`` tasks (one upsert transaction each, as the task manager does on a
status change) and reads each back (``GET /task/{id}``'s query), through the real store and
repository, on a SQLite file and on a PostgreSQL server started here (tests/postgres.py:
``initdb``/``pg_ctl`` on a free port of 127.0.0.1, fsync on, as a deployment would run it;
``--no-fsync`` leaves the disk out).
Rounds alternate SQLite, PostgreSQL, SQLite, PostgreSQL…; prints each backend's median time an
operation and the ratio PostgreSQL / SQLite. Figures, not tests: on a shared machine they say
as much about the neighbours as about the code. A remote PostgreSQL adds its network round
trip (two a write: the writers' lock and the statement, plus BEGIN and COMMIT).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.engine.state import StateStore  # noqa: E402
from service.engine.tasks.repository import TaskRepository  # noqa: E402
from service.engine.tasks.task import Task  # noqa: E402
from tests.postgres import postgres_server  # noqa: E402


async def one_round(location: str, ops: int, round_number: int) -> tuple[float, float]:
    """Seconds an operation: (write, read)."""
    store = StateStore(location)
    TaskRepository.register(store)
    await store.open()
    try:
        tasks = TaskRepository(store)
        ids = [f"r{round_number}-{n}" for n in range(ops)]
        start = time.perf_counter()
        for task_id in ids:
            await tasks.save(Task(task_id, "train", "model/m"))
        written = time.perf_counter()
        for task_id in ids:
            assert await tasks.get(task_id) is not None
        read = time.perf_counter()
    finally:
        await store.aclose()
    return (written - start) / ops, (read - written) / ops


async def main(ops: int, repeat: int, fsync: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, postgres_server(fsync=fsync) as server:
        locations = {
            "sqlite": str(Path(tmp) / "state.sqlite3"),
            "postgresql": server.new_database(),
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in locations}
        for round_number in range(repeat):
            for name, location in locations.items():  # A B A B …
                times[name].append(await one_round(location, ops, round_number))
    print(f"{ops} task saves and {ops} reads a round, {repeat} rounds each, alternating")
    medians = {
        name: (statistics.median(w for w, _ in rounds), statistics.median(r for _, r in rounds))
        for name, rounds in times.items()
    }
    for name, (write, read) in medians.items():
        print(f"{name:>10}: write {write * 1e6:8.0f} µs   read {read * 1e6:8.0f} µs")
    (sw, sr), (pw, pr) = medians["sqlite"], medians["postgresql"]
    print(f"PostgreSQL / SQLite: write {pw / sw:.2f}x   read {pr / sr:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="PostgreSQL without fsync: what the round trips cost, without the disk",
    )
    args = parser.parse_args()
    asyncio.run(main(args.ops, args.repeat, not args.no_fsync))
