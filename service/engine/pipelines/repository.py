"""Pipelines, runs and jobs in the state store: the only module that writes their SQL.

A run keeps its own copy of the pipeline's tasks, so deleting a pipeline leaves its finished
runs listed (and retryable), and editing nothing can change what a run did.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from service.engine.pipelines.model import FINAL, INTERRUPTED, Job, Pipeline, Run, Task, now
from service.engine.state import Connection, Row, StateStore
from service.engine.state.hosts import Hosts, not_alive
from service.kernel import scope

COMPONENT = "pipelines"
MIGRATIONS = [
    """
    CREATE TABLE pipelines (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        tasks TEXT NOT NULL,
        created TEXT NOT NULL,
        owner TEXT
    );
    CREATE TABLE pipeline_runs (
        id TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        files TEXT NOT NULL,
        tasks TEXT NOT NULL,
        status TEXT NOT NULL,
        created TEXT NOT NULL,
        started TEXT,
        finished TEXT,
        error TEXT,
        owner TEXT
    );
    CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (pipeline, status);
    CREATE TABLE pipeline_jobs (
        id TEXT PRIMARY KEY,
        run TEXT NOT NULL REFERENCES pipeline_runs (id) ON DELETE CASCADE,
        task INTEGER NOT NULL,
        function TEXT NOT NULL,
        status TEXT NOT NULL,
        inputs TEXT NOT NULL DEFAULT '[]',
        output_files TEXT NOT NULL DEFAULT '[]',
        logs TEXT NOT NULL DEFAULT '[]',
        started TEXT,
        finished TEXT,
        ran_on TEXT,
        error TEXT,
        UNIQUE (run, task)
    );
    """,
    # 2: the server that drives the run (service/engine/state/hosts.py).
    "ALTER TABLE pipeline_runs ADD COLUMN host TEXT;",
]

_ACTIVE = ("PENDING", "RUNNING")


def new_id() -> str:
    return secrets.token_hex(6)


def register(store: StateStore) -> None:
    store.register_schema(COMPONENT, MIGRATIONS)


class Repository:
    def __init__(self, store: StateStore, hosts: Hosts | None = None) -> None:
        """``hosts``: the servers sharing ``store``; without, the store is this server's."""
        self._store = store
        self._hosts = hosts
        self._host = None if hosts is None else hosts.id

    # --- pipelines -------------------------------------------------------------------------

    async def add_pipeline(self, name: str, tasks: list[Task]) -> Pipeline:
        pipeline = Pipeline(new_id(), name, tuple(tasks), now())
        await self._store.execute(
            "INSERT INTO pipelines (id, name, tasks, created, owner) VALUES (?, ?, ?, ?, ?)",
            (pipeline.id, name, _tasks_json(pipeline.tasks), pipeline.created, scope.namespace()),
        )
        return pipeline

    async def pipeline(self, pipeline_id: str) -> Pipeline | None:
        row = await self._store.fetchone(
            f"SELECT * FROM pipelines WHERE id = ? AND {_MINE}", (pipeline_id, *_mine())
        )
        return None if row is None else _pipeline(row)

    async def pipelines(self, limit: int, offset: int) -> tuple[list[Pipeline], int]:
        rows = await self._store.fetchall(
            f"SELECT * FROM pipelines WHERE {_MINE} ORDER BY created, id LIMIT ? OFFSET ?",
            (*_mine(), limit, offset),
        )
        total = await self._store.fetchone(f"SELECT count(*) FROM pipelines WHERE {_MINE}", _mine())
        return [_pipeline(row) for row in rows], int(total[0]) if total else 0

    async def count_pipelines(self) -> int:
        row = await self._store.fetchone("SELECT count(*) FROM pipelines")
        return int(row[0]) if row else 0

    async def delete_pipeline(self, pipeline_id: str) -> str:
        """``"deleted"``, ``"missing"`` or ``"busy"`` (runs in progress), in one transaction."""

        mine = _mine()

        def delete(conn: Connection) -> str:
            found = conn.execute(
                f"SELECT 1 FROM pipelines WHERE id = ? AND {_MINE}", (pipeline_id, *mine)
            ).fetchone()
            if found:
                busy = conn.execute(
                    "SELECT 1 FROM pipeline_runs WHERE pipeline = ? AND status IN (?, ?)",
                    (pipeline_id, *_ACTIVE),
                ).fetchone()
                if busy:
                    return "busy"
                conn.execute("DELETE FROM pipelines WHERE id = ?", (pipeline_id,))
                return "deleted"
            return "missing"

        return await self._store.transaction(delete)

    # --- runs ------------------------------------------------------------------------------

    async def add_run(self, pipeline: Pipeline, files: list[str]) -> Run:
        run = Run(
            id=new_id(),
            pipeline=pipeline.id,
            files=files,
            tasks=pipeline.tasks,
            status="PENDING",
            created=now(),
            jobs=[],
        )
        run.jobs = [
            Job(new_id(), run.id, index, task.function) for index, task in enumerate(run.tasks)
        ]

        owner = scope.namespace()

        def insert(conn: Connection) -> None:
            # The pipeline may have been deleted since it was read: no run of a ghost.
            if not conn.execute("SELECT 1 FROM pipelines WHERE id = ?", (pipeline.id,)).fetchone():
                raise LookupError(pipeline.id)
            conn.execute(
                "INSERT INTO pipeline_runs"
                " (id, pipeline, files, tasks, status, created, owner, host)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    run.pipeline,
                    json.dumps(files),
                    _tasks_json(run.tasks),
                    run.status,
                    run.created,
                    owner,
                    self._host,
                ),
            )
            conn.executemany(
                "INSERT INTO pipeline_jobs (id, run, task, function, status)"
                " VALUES (?, ?, ?, ?, ?)",
                [(job.id, run.id, job.task, job.function, job.status) for job in run.jobs],
            )

        await self._store.transaction(insert)
        return run

    async def run(self, run_id: str) -> Run | None:
        row = await self._store.fetchone(
            f"SELECT * FROM pipeline_runs WHERE id = ? AND {_MINE}", (run_id, *_mine())
        )
        if row is None:
            return None
        jobs = await self._store.fetchall(
            "SELECT * FROM pipeline_jobs WHERE run = ? ORDER BY task", (run_id,)
        )
        return _run(row, [_job(job) for job in jobs])

    async def runs(
        self, limit: int, offset: int, pipeline: str | None, status: str | None
    ) -> tuple[list[Run], int]:
        where, params = _filters(pipeline, status)
        rows = await self._store.fetchall(
            f"SELECT * FROM pipeline_runs{where} ORDER BY created, id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        total = await self._store.fetchone(f"SELECT count(*) FROM pipeline_runs{where}", params)
        ids = [row["id"] for row in rows]
        jobs: dict[str, list[Job]] = {run_id: [] for run_id in ids}
        if ids:
            marks = ", ".join("?" for _ in ids)
            for job in await self._store.fetchall(
                f"SELECT * FROM pipeline_jobs WHERE run IN ({marks}) ORDER BY task", ids
            ):
                jobs[job["run"]].append(_job(job))
        return [_run(row, jobs[row["id"]]) for row in rows], int(total[0]) if total else 0

    async def count_active_runs(self) -> int:
        row = await self._store.fetchone(
            "SELECT count(*) FROM pipeline_runs WHERE status IN (?, ?)", _ACTIVE
        )
        return int(row[0]) if row else 0

    async def job(self, job_id: str) -> Job | None:
        row = await self._store.fetchone(
            "SELECT pipeline_jobs.* FROM pipeline_jobs JOIN pipeline_runs"
            f" ON pipeline_runs.id = pipeline_jobs.run WHERE pipeline_jobs.id = ? AND {_MINE}",
            (job_id, *_mine()),
        )
        return None if row is None else _job(row)

    async def save_run(self, run: Run) -> None:
        await self._store.execute(
            "UPDATE pipeline_runs SET status = ?, started = ?, finished = ?, error = ?,"
            " host = ? WHERE id = ?",
            (run.status, run.started, run.finished, run.error, self._host, run.id),
        )

    async def save_jobs(self, jobs: list[Job]) -> None:
        await self._store.executemany(
            "UPDATE pipeline_jobs SET status = ?, inputs = ?, output_files = ?, logs = ?,"
            " started = ?, finished = ?, ran_on = ?, error = ? WHERE id = ?",
            [
                (
                    job.status,
                    json.dumps(job.inputs),
                    json.dumps(job.output_files),
                    json.dumps(job.logs),
                    job.started,
                    job.finished,
                    job.ran_on,
                    job.error,
                    job.id,
                )
                for job in jobs
            ],
        )

    async def interrupt_all(self) -> int:
        """At start-up: whatever was running when the server stopped failed; say so. (With a
        shared store, what servers that are gone were running.)"""
        gone, hosts = not_alive(None if self._hosts is None else await self._hosts.alive())

        def interrupt(conn: Connection) -> int:
            runs = conn.execute(
                f"SELECT id FROM pipeline_runs WHERE status IN (?, ?) AND {gone}",
                (*_ACTIVE, *hosts),
            ).fetchall()
            stamp = now()
            for (run_id,) in runs:
                jobs = conn.execute(
                    "SELECT id, task, status FROM pipeline_jobs WHERE run = ? ORDER BY task",
                    (run_id,),
                ).fetchall()
                failed: int | None = None
                for job_id, task, status in jobs:
                    if status in FINAL:
                        continue
                    if failed is None:
                        failed = task
                        conn.execute(
                            "UPDATE pipeline_jobs SET status = 'FAILED', error = ?,"
                            " finished = ? WHERE id = ?",
                            (INTERRUPTED, stamp, job_id),
                        )
                    else:
                        conn.execute(
                            "UPDATE pipeline_jobs SET status = 'CANCELLED', error = ?,"
                            " finished = ? WHERE id = ?",
                            (f"job {failed} failed", stamp, job_id),
                        )
                conn.execute(
                    "UPDATE pipeline_runs SET status = 'FAILED', error = ?, finished = ?"
                    " WHERE id = ?",
                    (INTERRUPTED, stamp, run_id),
                )
            return len(runs)

        return await self._store.transaction(interrupt)


# Under -auth token a user's pipelines, runs and jobs are theirs: another user's answer 404 as
# if they did not exist. The shared namespace (-auth none, the operator, admins) sees them all.
# (The cast gives PostgreSQL the type of a parameter that may be NULL.)
_MINE = "(CAST(? AS TEXT) IS NULL OR owner = ?)"


def _mine() -> tuple[str | None, str | None]:
    namespace = scope.namespace()
    return namespace, namespace


def _filters(pipeline: str | None, status: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = [_MINE]
    params: list[Any] = [*_mine()]
    if pipeline is not None:
        clauses.append("pipeline = ?")
        params.append(pipeline)
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    return " WHERE " + " AND ".join(clauses), tuple(params)


def _tasks_json(tasks: tuple[Task, ...]) -> str:
    return json.dumps([task.export() for task in tasks])


def _tasks(text: str) -> tuple[Task, ...]:
    return tuple(Task(t["module"], t["function"], t["options"]) for t in json.loads(text))


def _pipeline(row: Row) -> Pipeline:
    return Pipeline(row["id"], row["name"], _tasks(row["tasks"]), row["created"])


def _run(row: Row, jobs: list[Job]) -> Run:
    return Run(
        id=row["id"],
        pipeline=row["pipeline"],
        files=json.loads(row["files"]),
        tasks=_tasks(row["tasks"]),
        status=row["status"],
        created=row["created"],
        jobs=jobs,
        started=row["started"],
        finished=row["finished"],
        error=row["error"],
    )


def _job(row: Row) -> Job:
    return Job(
        id=row["id"],
        run=row["run"],
        task=row["task"],
        function=row["function"],
        status=row["status"],
        inputs=json.loads(row["inputs"]),
        output_files=json.loads(row["output_files"]),
        logs=json.loads(row["logs"]),
        started=row["started"],
        finished=row["finished"],
        ran_on=row["ran_on"],
        error=row["error"],
    )
