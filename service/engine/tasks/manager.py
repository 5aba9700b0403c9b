"""The task manager: submit long work, follow it, cancel it, list what ran.

A task is an asyncio task of the server running ``work(progress)``: ``work`` is an async callable
(the very code the synchronous route awaits) that returns the JSON result the synchronous route
would have answered. Heavy work inside it goes to the executor, so cancelling the asyncio task
kills the worker process.

State: tasks live in memory while PENDING or RUNNING (their progress changes often and is never
written on each update) and in the state store always; a status change is written before it is
announced. At start, tasks the store still has as PENDING or RUNNING were cut off by a stop or a
crash and become FAILURE ``interrupted: the server stopped``.

Bounds: at most ``queue`` tasks PENDING (beyond: :class:`QueueFull`, a 503 with Retry-After),
``running`` at once, finished ones kept ``ttl`` seconds and at most ``keep`` of them, at most
``MAX_SUBSCRIBERS`` event streams open, each buffering ``events.BUFFER_EVENTS`` events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from service.engine.tasks.events import Event, Hub
from service.engine.tasks.repository import TaskRepository
from service.engine.tasks.task import INTERRUPTED, Progress, Status, Task, now
from service.kernel import scope
from service.kernel.errors import Conflict, NotFound, ServiceError, TooManyRequests, Unavailable
from service.sdk.progress import Reporter, reporting

log = logging.getLogger(__name__)

# Open event streams (GET /task/{id}/events) at once, over all tasks.
MAX_SUBSCRIBERS = 1000
# A user's share of them: each holds a connection, so one user's streams must stay well under
# the connection cap (-max-connections, 512 by default) and the global count.
USER_SUBSCRIBERS = 64
# Finished tasks kept at most, whatever their age (the oldest go first).
KEEP_FINISHED = 100_000
# How long DELETE /task/{id} waits for a running task to stop before answering.
CANCEL_WAIT = 10.0
# Seconds a queue-full client is told to wait before retrying.
RETRY_AFTER = 5


class QueueFull(Unavailable):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Too many pending tasks (at most {limit}, -task-queue): retry later")
        self.retry_after = RETRY_AFTER


class TaskProgress:
    """What a task's work reports through: progress, log lines, where it runs."""

    def __init__(self, manager: TaskManager, task: Task) -> None:
        self._manager = manager
        self.task = task

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        self.task.progress = Progress(int(done), None if total is None else int(total), message)
        self._manager.publish(self.task, ("progress", self.task.progress.to_json()))

    def log(self, line: str) -> None:
        self._manager.publish(self.task, ("log", {"line": str(line)}))

    def running_on(self, where: str) -> None:
        self.task.ran_on = where


# The work of a task: the code the synchronous route awaits, given a reporter (a TaskProgress
# for a task, SILENT when a synchronous request runs it), returning the JSON result.
Work = Callable[[Reporter], Awaitable[Any]]


class TaskManager:
    def __init__(
        self,
        repository: TaskRepository,
        *,
        queue: int,
        running: int,
        ttl: float,
        keep: int = KEEP_FINISHED,
    ) -> None:
        self._repository = repository
        self._queue = queue
        self._slots = asyncio.Semaphore(running)
        self._ttl = ttl
        self._keep = keep
        self._active: dict[str, tuple[Task, asyncio.Task[None]]] = {}
        self._hub = Hub()
        # Each open stream's user (streams of the shared namespace are not counted per user).
        self._streams: dict[object, str] = {}
        self._reserved = 0
        self._reserving: collections.Counter[str | None] = collections.Counter()
        self._stopping = False
        self._pruner: asyncio.Task[None] | None = None
        # Tasks that ended since start, by (kind, final status): /metrics counts them.
        self.finished: collections.Counter[tuple[str, str]] = collections.Counter()

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        interrupted = await self._repository.interrupt_unfinished()
        if interrupted:
            log.warning("%d task(s) were cut off by the last stop: marked FAILURE", interrupted)
        await self.prune()
        self._pruner = asyncio.create_task(self._prune_regularly(), name="task-pruner")

    def stopping(self) -> None:
        """Shutdown began: refuse new tasks; those cut off from now on are interrupted."""
        self._stopping = True

    async def aclose(self) -> None:
        """Stop every task (they are recorded as interrupted), then the pruner."""
        self._stopping = True
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        running = [job for _, job in self._active.values()]
        for job in running:
            job.cancel()
        if running:
            await asyncio.wait(running)
        self._hub.close_all()

    # --- what /metrics reads ----------------------------------------------------------------

    def active_by_status(self) -> dict[tuple[str, str], int]:
        """Tasks queued or running now, by (kind, status)."""
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        for task, _ in self._active.values():
            counts[(task.kind, task.status)] += 1
        return dict(counts)

    @property
    def queue_limit(self) -> int:
        return self._queue

    # --- the API ------------------------------------------------------------------------

    async def submit(self, kind: str, target: str, work: Work, owner: str | None = None) -> Task:
        """Queue ``work``; the task as it is now (PENDING), already in the store.

        ``owner`` defaults to the caller's namespace (service/kernel/scope.py): under -auth token
        a user's task is theirs; the operator's and admins' (namespace None) are shared."""
        owner = owner if owner is not None else scope.namespace()
        if self._stopping:
            raise Unavailable("Server is shutting down")
        waiting = [task.owner for task, _ in self._active.values() if task.status == "PENDING"]
        if len(waiting) + self._reserved >= self._queue:
            raise QueueFull(self._queue)
        if owner is not None:
            # A user's share: half the queue, so one user's backlog never refuses others.
            share = max(1, self._queue // 2)
            if waiting.count(owner) + self._reserving[owner] >= share:
                raise TooManyRequests(
                    f"Too many pending tasks of this user (at most {share}, half of"
                    " -task-queue): retry later",
                    headers={"Retry-After": str(RETRY_AFTER)},
                )
        task = Task(task_id=uuid.uuid4().hex, kind=kind, target=target, owner=owner)
        # Counted while it is written, so concurrent submits cannot overfill the queue.
        self._reserved += 1
        self._reserving[owner] += 1
        try:
            await self._repository.save(task)
        finally:
            self._reserved -= 1
            self._reserving[owner] -= 1
            if not self._reserving[owner]:
                del self._reserving[owner]
        job = asyncio.create_task(self._run(task, work), name=f"task-{task.task_id}")
        self._active[task.task_id] = (task, job)
        return task

    async def get(self, task_id: str, owner: str | None = None) -> Task:
        """The task, or 404 ``Task not found`` when it is another user's: the caller's
        namespace (``owner`` by default) sees its own tasks; the shared one sees all."""
        owner = owner if owner is not None else scope.namespace()
        active = self._active.get(task_id)
        task = active[0] if active is not None else await self._repository.get(task_id)
        if task is None or (owner is not None and task.owner != owner):
            raise NotFound("Task not found")
        return task

    async def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        owner: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Task], int]:
        owner = owner if owner is not None else scope.namespace()
        tasks, total = await self._repository.list(
            status=status, kind=kind, owner=owner, limit=limit, offset=offset
        )
        # Running tasks: their live progress, not the last one written.
        return [self._live(task) for task in tasks], total

    async def cancel(self, task_id: str, owner: str | None = None) -> Task:
        """PENDING → CANCELLED at once; RUNNING → stopped, then CANCELLED; finished → 409."""
        task = await self.get(task_id, owner)
        active = self._active.get(task_id)
        if active is None or task.done:
            raise Conflict(f"Task already finished ({task.status})")
        _, job = active
        job.cancel()
        await asyncio.wait({job}, timeout=CANCEL_WAIT)
        return task

    async def events(self, task_id: str, owner: str | None = None) -> AsyncIterator[Event]:
        """``status`` now, then every ``status``/``progress``/``log`` event until the final
        status. Raises before the first event (404, 503) so a handler can still answer JSON."""
        task = await self.get(task_id, owner)
        if task.done:
            return _once(("status", task.to_json()))
        if self._hub.count >= MAX_SUBSCRIBERS:
            raise Unavailable(f"Too many event streams open (at most {MAX_SUBSCRIBERS})")
        namespace = scope.namespace()
        if namespace is not None:
            held = sum(1 for who in self._streams.values() if who == namespace)
            if held >= USER_SUBSCRIBERS:
                raise TooManyRequests(
                    f"Too many event streams open for this user (at most {USER_SUBSCRIBERS})"
                )
        subscriber = self._hub.subscribe(task_id)
        if namespace is not None:
            self._streams[subscriber] = namespace
        # No await between get() and subscribe(): no event can fall in between.
        subscriber.put(("status", task.to_json()))
        return self._follow(task_id, subscriber)

    async def _follow(self, task_id: str, subscriber: Any) -> AsyncIterator[Event]:
        try:
            async for event in subscriber.events():
                yield event
        finally:
            self._hub.unsubscribe(task_id, subscriber)
            self._streams.pop(subscriber, None)

    async def prune(self) -> int:
        cutoff = now() - datetime.timedelta(seconds=self._ttl)
        gone = await self._repository.prune(older_than=cutoff, keep_at_most=self._keep)
        if gone:
            log.info("pruned %d finished task(s)", gone)
        return gone

    @property
    def active(self) -> int:
        return len(self._active)

    # --- running ------------------------------------------------------------------------

    def publish(self, task: Task, event: Event, *, last: bool = False) -> None:
        self._hub.publish(task.task_id, event, last=last)

    def _live(self, task: Task) -> Task:
        active = self._active.get(task.task_id)
        return task if active is None else active[0]

    async def _run(self, task: Task, work: Work) -> None:
        try:
            async with self._slots:
                await self._set(task, "RUNNING", started=now())
                task.ran_on = f"server:pid {os.getpid()}"
                progress = TaskProgress(self, task)
                with reporting(progress):
                    task.result = await work(progress)
                task.status = "SUCCESS"
        except asyncio.CancelledError:
            if self._stopping:
                task.status, task.error, task.error_status = "FAILURE", INTERRUPTED, 503
            else:
                task.status = "CANCELLED"
        except ServiceError as exc:
            if self._stopping:  # its worker was killed by the shutdown
                task.status, task.error, task.error_status = "FAILURE", INTERRUPTED, 503
            else:
                task.status, task.error, task.error_status = "FAILURE", exc.message, exc.status
        except Exception:
            log.exception("task %s (%s %s) failed", task.task_id, task.kind, task.target)
            task.status, task.error, task.error_status = "FAILURE", "Internal Server Error", 500
        task.finished = now()
        self.finished[(task.kind, task.status)] += 1
        try:
            await self._repository.save(task)
        except Exception:
            log.exception("task %s: recording its end failed", task.task_id)
        finally:
            del self._active[task.task_id]
            self.publish(task, ("status", task.to_json()), last=True)

    async def _set(self, task: Task, status: Status, *, started: datetime.datetime) -> None:
        task.status, task.started = status, started
        await self._repository.save(task)
        self.publish(task, ("status", task.to_json()))

    async def _prune_regularly(self) -> None:
        every = max(1.0, min(self._ttl / 10, 60.0))
        while True:
            await asyncio.sleep(every)
            try:
                await self.prune()
            except Exception:
                log.exception("pruning finished tasks failed")


async def _once(event: Event) -> AsyncIterator[Event]:
    yield event
