"""Drives runs: one asyncio task per run walks its jobs in order on the executor.

- Chaining: job 0 reads the run's files; job N reads job N-1's output files of the types its
  function takes, or else job N-1's own inputs of those types (a function that wrote nothing
  of use passes its inputs on).
- Failure propagates at once: the failed job is FAILED with its error, every later job
  CANCELLED ``job N failed``, the run FAILED. Nothing is left waiting.
- Cancel stops the running job (the executor kills its process or cancels its Dask future),
  marks it and the later jobs CANCELLED and the run CANCELLED.
- Retry resumes a FAILED or CANCELLED run at its first unfinished job, reusing the finished
  jobs' outputs.
- A stop of the server (or a crash, found at the next start) fails what was running with
  ``interrupted: the server stopped``; such runs can be retried.

Every change is written to the state store before it is announced to followers.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import PurePosixPath
from typing import Any

from service.contexts import ContextStore
from service.engine.modules import check_inputs, prepare
from service.engine.pipelines import jobs as job_runner
from service.engine.pipelines.events import Followers
from service.engine.pipelines.model import FINAL, INTERRUPTED, Job, Pipeline, Run, Task, now
from service.engine.pipelines.repository import Repository
from service.engine.tasks.executor import Executor
from service.engine.workers import WorkerCrashed
from service.kernel import scope
from service.kernel.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceError,
    TooManyRequests,
    Unavailable,
)
from service.kernel.sandbox import Sandbox
from service.sdk.progress import LOG_LINES, clip

log = logging.getLogger(__name__)

# Pipelines the server keeps (each is a row of at most MAX_TASKS tasks).
MAX_PIPELINES = 10_000
# One user's share (-auth token): half, so one user never fills the cap for everyone.
USER_SHARE = MAX_PIPELINES // 2
# Runs in progress at once (each holds a task and, while a job runs, an executor slot).
MAX_ACTIVE_RUNS = 100
# One user's runs in progress at once (-auth token): half, so one user never takes every slot.
USER_ACTIVE_RUNS = MAX_ACTIVE_RUNS // 2
# How long DELETE /runs/{id} waits for the running job to stop before answering.
CANCEL_SECONDS = 2.0


class Runner:
    def __init__(
        self,
        repository: Repository,
        contexts: ContextStore,
        sandbox: Sandbox,
        executor: Executor,
        *,
        timeout: float,
    ) -> None:
        self.repository = repository
        self.followers = Followers()
        self._contexts = contexts
        self._sandbox = sandbox
        self._executor = executor
        self._timeout = timeout
        self._driving: dict[str, asyncio.Task[None]] = {}
        # The user each run driven here was started by (runs of the shared namespace: none).
        self._run_owners: dict[str, str] = {}
        self._cancelled: set[str] = set()
        self._stopping = False
        self._lock = asyncio.Lock()
        self._adding = asyncio.Lock()

    async def start(self) -> None:
        interrupted = await self.repository.interrupt_all()
        if interrupted:
            log.warning("pipelines: %d run(s) were interrupted by the last stop", interrupted)

    async def stop(self) -> None:
        """Shutdown: what runs is FAILED ``interrupted: the server stopped`` (retryable)."""
        self._stopping = True
        for task in self._driving.values():
            task.cancel()
        if self._driving:
            await asyncio.wait(set(self._driving.values()))

    # --- requests --------------------------------------------------------------------------

    async def add_pipeline(self, name: str, tasks: list[Task]) -> Pipeline:
        # The count and the insert under one lock: concurrent requests once overshot the cap.
        async with self._adding:
            if await self.repository.count_pipelines() >= MAX_PIPELINES:
                raise Conflict(
                    f"The server keeps at most {MAX_PIPELINES} pipelines; delete some first"
                )
            # The caller's own count: the listing's total in their namespace.
            if (
                scope.namespace() is not None
                and (await self.repository.pipelines(1, 0))[1] >= USER_SHARE
            ):
                raise Conflict(
                    f"A user keeps at most {USER_SHARE} pipelines (half of {MAX_PIPELINES});"
                    " delete some first"
                )
            return await self.repository.add_pipeline(name, tasks)

    async def delete_pipeline(self, pipeline_id: str) -> None:
        outcome = await self.repository.delete_pipeline(pipeline_id)
        if outcome == "missing":
            raise NotFound(f"Pipeline {pipeline_id!r} not found")
        if outcome == "busy":
            raise Conflict(
                f"Pipeline {pipeline_id!r} has runs in progress: cancel them"
                " (DELETE /runs/{id}) or let them end first"
            )

    async def start_run(self, pipeline_id: str, files: list[str]) -> Run:
        pipeline = await self.repository.pipeline(pipeline_id)
        if pipeline is None:
            raise NotFound(f"Pipeline {pipeline_id!r} not found")
        first = pipeline.tasks[0]
        try:
            call = prepare(
                self._contexts, self._sandbox, first.module, first.function, first.options
            )
            await asyncio.to_thread(check_inputs, self._sandbox, call.function, call.owner, files)
        except ServiceError as exc:
            raise BadRequest(f"task 0: {exc.message}") from None
        async with self._lock:
            await self._room_for_one_more()
            try:
                run = await self.repository.add_run(pipeline, files)
            except LookupError:
                raise NotFound(f"Pipeline {pipeline_id!r} not found") from None
            self._launch(run)
        return run

    async def cancel(self, run_id: str) -> Run:
        async with self._lock:
            run = await self.get(run_id)
            if run.status in FINAL:
                raise Conflict(f"Run {run_id!r} is {run.status} already")
            task = self._driving.get(run_id)
            self._cancelled.add(run_id)
            if task is not None:
                task.cancel()
        if task is not None:
            await asyncio.wait({task}, timeout=CANCEL_SECONDS)
        return await self.get(run_id)

    async def retry(self, run_id: str) -> Run:
        async with self._lock:
            run = await self.get(run_id)
            if run.status not in ("FAILED", "CANCELLED"):
                raise Conflict(
                    f"Run {run_id!r} is {run.status}: only a FAILED or CANCELLED run can be retried"
                )
            await self._room_for_one_more()
            for job in run.jobs:
                if job.status != "FINISHED":
                    _reset(job)
            run.status, run.error, run.finished = "PENDING", None, None
            await self.repository.save_jobs(run.jobs)
            await self.repository.save_run(run)
            self._launch(run)
        return run

    async def get(self, run_id: str) -> Run:
        run = await self.repository.run(run_id)
        if run is None:
            raise NotFound(f"Run {run_id!r} not found")
        return run

    async def _room_for_one_more(self) -> None:
        if self._stopping:
            raise Unavailable("Server is shutting down")
        if await self.repository.count_active_runs() >= MAX_ACTIVE_RUNS:
            raise Unavailable(
                f"{MAX_ACTIVE_RUNS} runs are in progress, the most at once; try again later"
            )
        owner = scope.namespace()
        mine = sum(1 for who in self._run_owners.values() if who == owner)
        if owner is not None and mine >= USER_ACTIVE_RUNS:
            raise TooManyRequests(
                f"{USER_ACTIVE_RUNS} of this user's runs are in progress, the most one user may"
                " have at once (half of all); try again later"
            )

    def _launch(self, run: Run) -> None:
        task = asyncio.create_task(self._drive(run), name=f"pipeline run {run.id}")
        self._driving[run.id] = task
        owner = scope.namespace()
        if owner is not None:
            self._run_owners[run.id] = owner

        def done(_: object) -> None:
            self._driving.pop(run.id, None)
            self._run_owners.pop(run.id, None)

        task.add_done_callback(done)

    # --- the run ---------------------------------------------------------------------------

    async def _drive(self, run: Run) -> None:
        try:
            run.status, run.started = "RUNNING", run.started or now()
            await self._save_run(run)
            offered: tuple[list[str], list[str]] = (run.files, [])
            for job in run.jobs:
                task = run.tasks[job.task]
                if job.status != "FINISHED" and not await self._run_job(run, job, task, offered):
                    return
                offered = ([str(f["filename"]) for f in job.output_files], job.inputs)
            run.status, run.finished = "FINISHED", now()
            await self._save_run(run)
        except asyncio.CancelledError:
            await asyncio.shield(self._stopped(run))
        except Exception:
            log.exception("pipelines: run %s failed in the server", run.id)
            await asyncio.shield(
                self._fail_from(run, _current(run), "internal error (see the server log)")
            )
        finally:
            self._cancelled.discard(run.id)

    async def _run_job(
        self, run: Run, job: Job, task: Task, offered: tuple[list[str], list[str]]
    ) -> bool:
        """Run one job; False when it failed (the run is then FAILED)."""
        try:
            job.inputs = self._inputs_for(task, job, offered)
        except ServiceError as exc:
            await self._fail_from(run, job, exc.message)
            return False
        job.status = "QUEUED"
        await self._save_job(run, job)

        saving: list[asyncio.Task[None]] = []

        def started() -> None:
            if job.status == "QUEUED":
                job.status, job.started = "RUNNING", now()
                saving.append(asyncio.create_task(self._save_job(run, job)))

        streamed = 0

        def on_log(line: str) -> None:
            nonlocal streamed
            streamed += 1
            self._log(run, job, line)

        services = job_runner.ExecutorServices(
            self._contexts, self._executor, on_started=started, on_log=on_log
        )
        try:
            outcome = await job_runner.run_job(
                store=self._contexts,
                sandbox=self._sandbox,
                services=services,
                timeout=self._timeout,
                run_id=run.id,
                index=job.task,
                task=task,
                inputs=job.inputs,
            )
        except asyncio.CancelledError:
            job.ran_on = _where(services.ran_on)
            await asyncio.shield(asyncio.gather(*saving))
            raise
        except (ServiceError, WorkerCrashed) as exc:
            job.ran_on = _where(services.ran_on)
            await asyncio.gather(*saving)
            if self._stopping:
                # The worker was stopped under it by the shutdown, not by its own fault.
                raise asyncio.CancelledError from None
            await self._fail_from(run, job, _error(exc))
            return False
        await asyncio.gather(*saving)
        # The job's log as the function kept it; the lines that streamed live are in already
        # (an executor that cannot stream sends none live, so all of them come in here).
        for line in outcome.logs[streamed:]:
            self._log(run, job, line)
        job.status, job.finished = "FINISHED", now()
        job.started = job.started or job.finished
        job.output_files = outcome.output_files
        job.ran_on = _where(services.ran_on)
        await self._save_job(run, job)
        return True

    def _inputs_for(self, task: Task, job: Job, offered: tuple[list[str], list[str]]) -> list[str]:
        """What the job reads: of the previous job's outputs (the run's files for job 0) those
        of a type its function takes, or else such files among the previous job's inputs."""
        try:
            call = prepare(self._contexts, self._sandbox, task.module, task.function, task.options)
        except ServiceError as exc:
            raise ServiceError(f"task {job.task}: {exc.message}") from None
        wanted = call.function.filetypes
        for names in offered:
            chosen = [n for n in names if PurePosixPath(n).suffix.lower().lstrip(".") in wanted]
            if chosen:
                return chosen
        expected = ", ".join(f".{t}" for t in wanted)
        seen = ", ".join(offered[0] + offered[1]) or "no files"
        raise ServiceError(
            f"{call.owner} takes {expected} files; job {job.task - 1} passed on none ({seen})"
        )

    def _log(self, run: Run, job: Job, line: str) -> None:
        if len(job.logs) >= LOG_LINES:
            return
        job.logs.append(clip(line))
        if len(job.logs) == LOG_LINES:
            job.logs.append(f"(more than {LOG_LINES} log lines: the rest were dropped)")
        self.followers.emit(run.id, "log", {"job": job.id, "task": job.task, "line": job.logs[-1]})

    async def _stopped(self, run: Run) -> None:
        """The run's task was cancelled: by DELETE /runs/{id}, or by the server stopping."""
        job = _current(run)
        if self._stopping and run.id not in self._cancelled:
            await self._fail_from(run, job, INTERRUPTED, run_error=INTERRUPTED)
            return
        stamp = now()
        for other in run.jobs:
            if other.status not in FINAL:
                other.status, other.finished = "CANCELLED", stamp
                other.error = "cancelled" if other is job else "run cancelled"
        run.status, run.finished, run.error = "CANCELLED", stamp, "cancelled"
        await self.repository.save_jobs(run.jobs)
        for other in run.jobs:
            if other.finished == stamp:
                self.followers.emit(run.id, "job", other.export())
        await self._save_run(run)

    async def _fail_from(
        self, run: Run, job: Job | None, error: str, *, run_error: str | None = None
    ) -> None:
        stamp = now()
        changed = []
        for other in run.jobs:
            if other.status in FINAL:
                continue
            if other is job:
                other.status, other.error = "FAILED", error
            else:
                failed = job.task if job is not None else other.task
                other.status, other.error = "CANCELLED", f"job {failed} failed"
            other.finished = stamp
            changed.append(other)
        run.status, run.finished = "FAILED", stamp
        run.error = run_error or (f"job {job.task} failed: {error}" if job is not None else error)
        await self.repository.save_jobs(changed)
        for other in changed:
            self.followers.emit(run.id, "job", other.export())
        await self._save_run(run)

    async def _save_job(self, run: Run, job: Job) -> None:
        await self.repository.save_jobs([job])
        self.followers.emit(run.id, "job", job.export())

    async def _save_run(self, run: Run) -> None:
        await self.repository.save_run(run)
        self.followers.emit(run.id, "status", run.export())


def _reset(job: Job) -> None:
    job.status, job.inputs, job.output_files, job.logs = "PENDING", [], [], []
    job.started = job.finished = job.ran_on = job.error = None


def _current(run: Run) -> Job | None:
    return next((job for job in run.jobs if job.status not in FINAL), None)


def _where(ran_on: list[str]) -> str | None:
    return ", ".join(dict.fromkeys(ran_on)) or None


def _error(exc: BaseException) -> str:
    if isinstance(exc, ServiceError):
        return exc.message
    message = str(exc)
    if "Traceback (most recent call last)" in message:
        log.error("pipelines: a job's function failed:\n%s", message)
        return "the function failed with an unexpected error (its traceback is in the server log)"
    return message


def export_page(runs: list[Run], total: int) -> dict[str, Any]:
    return {"runs": [run.export() for run in runs], "total": total}
