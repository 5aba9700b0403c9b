"""Every repository that writes SQL, on both backends: SQLite and a real PostgreSQL server.

The same tests run on each (the ``state_location`` fixture of tests/postgres.py), so a query
that only one database understands, or that orders, upserts or compares differently on the
other, fails here. The last tests open two stores on one location, as two hosts would.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.auth.accounts import Accounts, UserExists
from service.engine.pipelines import repository as pipelines
from service.engine.pipelines.model import Task as Step
from service.engine.state import Connection, StateStore, StateUnavailable
from service.engine.state.hosts import GONE_AFTER_S, Hosts
from service.engine.state.labels import Labels
from service.engine.tasks.repository import TaskRepository
from service.engine.tasks.task import INTERRUPTED, Task
from service.kernel import scope
from service.kernel.users import User
from tests.postgres import PostgresServer, postgres, state_location

__all__ = ["postgres", "state_location"]


def _register(store: StateStore) -> None:
    TaskRepository.register(store)
    Labels.register(store)
    Accounts.register(store)
    pipelines.register(store)


@pytest.fixture
async def store(state_location: str) -> AsyncIterator[StateStore]:
    store = StateStore(state_location)
    _register(store)
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


def _task(task_id: str, minutes: int, **fields: object) -> Task:
    created = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
    return Task(
        task_id,
        "train",
        "model/m",
        created=created + datetime.timedelta(minutes=minutes),
        **fields,  # type: ignore[arg-type]
    )


async def test_tasks_are_saved_replaced_listed_newest_first_and_pruned(store: StateStore) -> None:
    tasks = TaskRepository(store)
    for n in range(5):
        await tasks.save(_task(f"t{n}", n, owner="ann" if n % 2 else None))
    done = _task("t1", 1, owner="ann", status="SUCCESS", result={"accuracy": 0.5})
    done.finished = done.created + datetime.timedelta(seconds=3)
    await tasks.save(done)  # the same id again: the row is replaced, not doubled

    got = await tasks.get("t1")
    assert got is not None
    assert (got.status, got.result, got.finished) == ("SUCCESS", {"accuracy": 0.5}, done.finished)
    page, total = await tasks.list(status=None, kind=None, owner=None, limit=2, offset=1)
    assert ([t.task_id for t in page], total) == (["t3", "t2"], 5)
    mine, total = await tasks.list(status=None, kind="train", owner="ann", limit=10, offset=0)
    assert ([t.task_id for t in mine], total) == (["t3", "t1"], 2)

    assert await tasks.interrupt_unfinished() == 4
    interrupted = await tasks.get("t4")
    assert interrupted is not None
    assert (interrupted.status, interrupted.error) == ("FAILURE", INTERRUPTED)
    # Keep the newest finished task: the other four finished (interrupted) later than t1.
    far_past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    assert await tasks.prune(older_than=far_past, keep_at_most=4) == 1
    assert await tasks.get("t1") is None
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    assert await tasks.prune(older_than=later, keep_at_most=9) == 4


async def test_pipelines_runs_and_jobs_belong_to_their_owner(store: StateStore) -> None:
    repo = pipelines.Repository(store)
    steps = [Step("m", "f", {}), Step("m", "g", {"x": 1})]
    with scope.in_namespace("ann"):
        mine = await repo.add_pipeline("p", steps)
        run = await repo.add_run(mine, ["a.csv"])
    with scope.in_namespace("bob"):
        assert await repo.pipeline(mine.id) is None  # another user's: as if it did not exist
        assert await repo.run(run.id) is None
        assert await repo.delete_pipeline(mine.id) == "missing"
    with scope.in_namespace(None):  # the shared namespace (an admin) sees them all
        seen = await repo.pipeline(mine.id)
        assert seen is not None
        assert seen.tasks == tuple(steps)
        runs, total = await repo.runs(10, 0, mine.id, None)
        assert total == 1
        assert [job.function for job in runs[0].jobs] == ["f", "g"]
    with scope.in_namespace("ann"):
        assert await repo.delete_pipeline(mine.id) == "busy"  # its run is in progress
        assert await repo.count_active_runs() == 1
        assert await repo.interrupt_all() == 1
        after = await repo.run(run.id)
        assert after is not None
        assert after.status == "FAILED"
        assert [job.status for job in after.jobs] == ["FAILED", "CANCELLED"]
        job = await repo.job(after.jobs[0].id)
        assert job is not None
        assert job.error == after.error
        assert await repo.delete_pipeline(mine.id) == "deleted"
        with pytest.raises(LookupError):
            await repo.add_run(mine, [])  # no run of a deleted pipeline


async def test_users_and_revocations(store: StateStore) -> None:
    accounts = Accounts(store)
    await accounts.create(User("ann", admin=True, rules=("GET /labels",)), "hash-1")
    with pytest.raises(UserExists):
        await accounts.create(User("ann"), "hash-2")
    account = await accounts.get("ann")
    assert account is not None
    assert (account.user.admin, account.user.rules, account.password_hash) == (
        True,
        ("GET /labels",),
        "hash-1",
    )
    changed = await accounts.set_password("ann", "hash-3")
    # Times keep every digit (a token issued a millisecond before a change is refused).
    assert (await accounts.password_changes())["ann"] == changed
    soon = datetime.datetime.now(datetime.timezone.utc).timestamp() + 600
    await accounts.revoke("jti-1", soon)
    await accounts.revoke("jti-1", soon + 1)  # revoking twice keeps one row
    await accounts.revoke("old", 1.0)
    assert await accounts.revoked() == {"jti-1": soon + 1}
    assert await accounts.count() == 1


async def test_labels_reconfigured_go_last_and_release_their_contexts(store: StateStore) -> None:
    labels = Labels(store)
    for name in ("a", "b"):
        await labels.configured("source", "csv", name, {"filename": f"{name}.csv"})
        await labels.context_opened("source", name, f"{name}-ctx")
    await labels.configured("source", "json", "a", {"filename": "a.json"})
    saved, contexts = await labels.saved()
    assert [(s.label, s.plugin, s.config) for s in saved] == [
        ("b", "csv", {"filename": "b.csv"}),
        ("a", "json", {"filename": "a.json"}),
    ]
    assert [c.ctx_label for c in contexts] == ["b-ctx"]  # reconfiguring a closed its context
    await labels.released("source", "b")
    saved, contexts = await labels.saved()
    assert ([s.label for s in saved], contexts) == (["a"], [])


async def test_two_stores_on_one_location_act_as_one(state_location: str) -> None:
    """Two hosts: they open (and migrate) together, see each other's writes, and their
    read-then-write transactions never interleave."""
    first, second = StateStore(state_location), StateStore(state_location)
    for each in (first, second):
        _register(each)
        each.register_schema("counter", ["CREATE TABLE counter (n INTEGER NOT NULL);"])
    await asyncio.gather(first.open(), second.open())
    try:
        await first.execute("INSERT INTO counter (n) VALUES (0)")

        def increment(conn: Connection) -> None:
            row = conn.execute("SELECT n FROM counter").fetchone()
            conn.execute("UPDATE counter SET n = ?", (row[0] + 1,))

        await asyncio.gather(
            *(store.transaction(increment) for store in (first, second) for _ in range(25))
        )
        row = await second.fetchone("SELECT n FROM counter")
        assert row is not None
        assert row["n"] == 50  # no lost update
        accounts = Accounts(second)
        await Accounts(first).create(User("ann"), "hash")
        assert await accounts.get("ann") is not None
        with pytest.raises(UserExists):
            await accounts.create(User("ann"), "hash")
        versions = await first.fetchall("SELECT component, version FROM schema_versions")
        assert {r["component"] for r in versions} == {
            "tasks",
            "labels",
            "auth",
            "pipelines",
            "counter",
        }
    finally:
        await asyncio.gather(first.aclose(), second.aclose())


async def test_a_starting_server_fails_only_the_work_of_servers_that_are_gone(
    state_location: str,
) -> None:
    """On SQLite the store is one server's: all unfinished work was cut off by its last stop.
    On PostgreSQL, a host's unfinished work is left alone while it beats, and failed once it is
    gone (unseen for GONE_AFTER_S)."""
    stores = [StateStore(state_location) for _ in range(2)]
    for store in stores:
        _register(store)
        Hosts.register(store)
    await asyncio.gather(*(store.open() for store in stores))
    try:
        hosts = [Hosts(store) for store in stores]
        for each in hosts:
            await each.beat()
        tasks = [TaskRepository(store, each) for store, each in zip(stores, hosts, strict=True)]
        runs = [
            pipelines.Repository(store, each) for store, each in zip(stores, hosts, strict=True)
        ]
        for n, repo in enumerate(tasks):
            await repo.save(_task(f"t{n}", n, status="RUNNING"))
        made = [
            await repo.add_run(await repo.add_pipeline("p", [Step("m", "f", {})]), [])
            for repo in runs
        ]

        first = tasks[0]
        if stores[0].dialect == "sqlite":
            assert await first.interrupt_unfinished() == 2
            assert await runs[0].interrupt_all() == 2
            return
        assert await first.interrupt_unfinished() == 0  # the other host still beats
        assert await runs[0].interrupt_all() == 0
        # The second host stops beating (killed): once unseen for GONE_AFTER_S it is gone.
        await stores[0].execute(
            "UPDATE state_hosts SET seen = seen - ? WHERE id = ?", (GONE_AFTER_S + 1, hosts[1].id)
        )
        assert await first.interrupt_unfinished() == 1
        assert await runs[0].interrupt_all() == 1
        statuses = [(await first.get(f"t{n}")).status for n in range(2)]  # type: ignore[union-attr]
        assert statuses == ["RUNNING", "FAILURE"]
        assert [(await runs[0].run(run.id)).status for run in made] == ["PENDING", "FAILED"]  # type: ignore[union-attr]
        # A host that leaves at a clean stop is gone at once.
        await hosts[0].leave()
        assert await tasks[1].interrupt_unfinished() == 1
    finally:
        await asyncio.gather(*(store.aclose() for store in stores))


async def test_a_connection_postgresql_dropped_is_replaced_on_the_next_call(
    postgres: PostgresServer,
) -> None:
    """PostgreSQL ends the store's connection (a restart, an administrator): the next read
    and the next write run on a new connection, and nothing is lost or doubled."""
    import psycopg

    location = postgres.new_database()
    store = StateStore(location)
    _register(store)
    await store.open()
    try:
        accounts = Accounts(store)
        await accounts.create(User("ann"), "hash")
        for call in ("read", "write"):
            with psycopg.connect(location, autocommit=True) as admin:
                ended = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'dffml-service-http' AND pid <> pg_backend_pid()"
                ).fetchall()
            assert ended == [(True,)]
            if call == "read":
                assert await accounts.count() == 1
            else:
                await accounts.create(User(f"bob-{call}"), "hash")
        assert await accounts.count() == 2
    finally:
        await store.aclose()


async def test_a_writer_stuck_holding_the_lock_makes_others_fail_not_hang(
    state_location: str,
) -> None:
    """Another host (here a bare connection) holds the writers' lock: a write waits the busy
    timeout, then fails; reads go on; once the lock is free, writes succeed."""
    import sqlite3

    import psycopg

    from service.engine.state.postgres import WRITE_LOCK

    store = StateStore(state_location)
    _register(store)
    await store.open()
    accounts = Accounts(store)
    try:
        if store.dialect == "sqlite":
            blocker: Any = sqlite3.connect(state_location, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
        else:
            blocker = psycopg.connect(state_location, autocommit=True)
            blocker.execute("BEGIN")
            blocker.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        try:
            with pytest.raises(StateUnavailable, match="State store unavailable"):
                await accounts.create(User("ann"), "hash")
            assert await accounts.count() == 0
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await accounts.create(User("ann"), "hash")
        assert await accounts.count() == 1
    finally:
        await store.aclose()
