"""The tasks table: every task the server has run or runs, over the state store."""

from __future__ import annotations

import datetime
from typing import Any

import orjson

from service.engine.state import Connection, Row, StateStore
from service.engine.state.hosts import Hosts, not_alive
from service.engine.tasks.task import INTERRUPTED, Progress, Task, iso, now, parse_iso

SCHEMA = [
    """
    CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        progress TEXT NOT NULL,
        created TEXT NOT NULL,
        started TEXT,
        finished TEXT,
        result TEXT,
        error TEXT,
        error_status INTEGER,
        ran_on TEXT,
        owner TEXT
    );
    CREATE INDEX tasks_created ON tasks (created);
    CREATE INDEX tasks_status ON tasks (status, created);
    CREATE INDEX tasks_finished ON tasks (finished);
    """,
    # 2: the server that last saved the task (service/engine/state/hosts.py).
    "ALTER TABLE tasks ADD COLUMN host TEXT;",
]

_COLUMNS = (
    "task_id, kind, target, status, progress, created, started, finished, result, error,"
    " error_status, ran_on, owner, host"
)
_UPDATE = ", ".join(
    f"{column} = excluded.{column}" for column in _COLUMNS.replace(" ", "").split(",")[1:]
)


class TaskRepository:
    def __init__(self, store: StateStore, hosts: Hosts | None = None) -> None:
        """``hosts``: the servers sharing ``store``; without, the store is this server's."""
        self._store = store
        self._hosts = hosts

    @staticmethod
    def register(store: StateStore) -> None:
        store.register_schema("tasks", SCHEMA)

    async def save(self, task: Task) -> None:
        """Insert or replace the whole row (tasks change a few times in their life)."""
        await self._store.execute(
            f"INSERT INTO tasks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            f" ON CONFLICT (task_id) DO UPDATE SET {_UPDATE}",
            (*_row(task), None if self._hosts is None else self._hosts.id),
        )

    async def get(self, task_id: str) -> Task | None:
        row = await self._store.fetchone(
            f"SELECT {_COLUMNS} FROM tasks WHERE task_id = ?", (task_id,)
        )
        return None if row is None else _task(row)

    async def list(
        self,
        *,
        status: str | None,
        kind: str | None,
        owner: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Task], int]:
        """Newest first; and how many match in all."""
        where, params = _where(status=status, kind=kind, owner=owner)

        def query(conn: Connection) -> tuple[list[Task], int]:
            total = conn.execute(f"SELECT count(*) FROM tasks{where}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM tasks{where}"
                " ORDER BY created DESC, task_id DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            return [_task(row) for row in rows], int(total)

        return await self._store.transaction(query)

    async def interrupt_unfinished(self) -> int:
        """At start: tasks PENDING or RUNNING when the server stopped become FAILURE (with a
        shared store, those of servers that are gone)."""
        gone, hosts = not_alive(None if self._hosts is None else await self._hosts.alive())
        return await self._store.execute(
            "UPDATE tasks SET status = 'FAILURE', error = ?, error_status = 503,"
            f" finished = ? WHERE status IN ('PENDING', 'RUNNING') AND {gone}",
            (INTERRUPTED, iso(now()), *hosts),
        )

    async def prune(self, *, older_than: datetime.datetime, keep_at_most: int) -> int:
        """Delete finished tasks that finished before ``older_than``, and the oldest finished
        ones beyond ``keep_at_most``; how many went."""

        def prune(conn: Connection) -> int:
            gone = conn.execute(
                "DELETE FROM tasks WHERE finished IS NOT NULL AND finished < ?",
                (iso(older_than),),
            ).rowcount
            gone += conn.execute(
                "DELETE FROM tasks WHERE finished IS NOT NULL AND task_id NOT IN"
                " (SELECT task_id FROM tasks WHERE finished IS NOT NULL"
                " ORDER BY finished DESC, task_id DESC LIMIT ?)",
                (keep_at_most,),
            ).rowcount
            return int(gone)

        return await self._store.transaction(prune)


def _where(**filters: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses = [f"{name} = ?" for name, value in filters.items() if value is not None]
    params = tuple(value for value in filters.values() if value is not None)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _row(task: Task) -> tuple[Any, ...]:
    return (
        task.task_id,
        task.kind,
        task.target,
        task.status,
        orjson.dumps(task.progress.to_json()).decode(),
        iso(task.created),
        iso(task.started),
        iso(task.finished),
        None if task.result is None else _dumps(task.result),
        task.error,
        task.error_status,
        task.ran_on,
        task.owner,
    )


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


def _task(row: Row) -> Task:
    progress = orjson.loads(row["progress"])
    created = parse_iso(row["created"])
    assert created is not None
    return Task(
        task_id=row["task_id"],
        kind=row["kind"],
        target=row["target"],
        status=row["status"],
        progress=Progress(progress["done"], progress["total"], progress["message"]),
        created=created,
        started=parse_iso(row["started"]),
        finished=parse_iso(row["finished"]),
        result=None if row["result"] is None else orjson.loads(row["result"]),
        error=row["error"],
        error_status=row["error_status"],
        ran_on=row["ran_on"],
        owner=row["owner"],
    )
