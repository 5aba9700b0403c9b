"""One job: a task's function over its input files, on the executor, into its own folder.

The same checks and rules as ``POST /module/{ctx}/{function}``: options and inputs checked
against the declaration, the operator's time limit (-module-timeout) over the whole function,
inputs never changed, every declared output written, and the output folder removed again if
the function fails. Only the folder differs: ``outputs/run-<run>/job-<n>/``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from service.contexts import ContextStore
from service.engine import models
from service.engine.modules import (
    OUTPUTS,
    check_inputs,
    collect_outputs,
    fingerprints,
    inside,
    prepare,
    unchanged,
)
from service.engine.pipelines.model import Task
from service.engine.tasks.executor import Executor
from service.kernel import scope
from service.kernel.errors import Conflict, TimedOut
from service.kernel.sandbox import Sandbox
from service.sdk.modules import Job, ModuleServices
from service.sdk.progress import Reporter
from service.sdk.records import Record

R = TypeVar("R")

STARTED = "started"


@dataclasses.dataclass
class Outcome:
    output_files: list[dict[str, Any]]
    logs: list[str]


class ExecutorServices(ModuleServices):
    """What a module context gets while a job runs: predictions here, work on the executor.

    ``on_started`` is called when the first piece of work starts on a worker (the job is then
    RUNNING rather than QUEUED); ``ran_on`` collects where each piece ran.
    """

    def __init__(
        self,
        store: ContextStore,
        executor: Executor,
        *,
        on_started: Callable[[], None],
        on_log: Callable[[str], None],
    ) -> None:
        self._store = store
        self._executor = executor
        self._on_started = on_started
        self._on_log = on_log
        self.ran_on: list[str] = []

    async def predict(self, model_ctx: str, records: list[Record]) -> list[Record]:
        scope.require("model", model_ctx, "predict")
        return await models.predict_list(self._store.model(model_ctx), records)

    async def in_worker(self, fn: Callable[..., R], *args: Any) -> R:
        def progress(done: int, total: int | None, message: str | None) -> None:
            if message == STARTED and done == 0 and total is None:
                self._on_started()

        ran = await self._executor.run(
            _started_then, fn, args, on_progress=progress, on_log=self._on_log
        )
        self.ran_on.append(ran.ran_on)
        result: R = ran.result
        return result


def _started_then(reporter: Reporter, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """On the worker: say the work started (QUEUED → RUNNING), then do it."""
    reporter.progress(0, None, STARTED)
    return fn(*args)


def output_dir(sandbox: Sandbox, run_id: str, task: int) -> Path:
    return inside(sandbox, f"{OUTPUTS}/run-{run_id}/job-{task}")


async def run_job(
    *,
    store: ContextStore,
    sandbox: Sandbox,
    services: ExecutorServices,
    timeout: float,
    run_id: str,
    index: int,
    task: Task,
    inputs: list[str],
) -> Outcome:
    """Run ``task`` over ``inputs``; raises ServiceError (or WorkerCrashed) if it fails."""
    call = prepare(store, sandbox, task.module, task.function, task.options)
    files = await asyncio.to_thread(check_inputs, sandbox, call.function, call.owner, inputs)
    before = await asyncio.to_thread(fingerprints, files)
    folder = output_dir(sandbox, run_id, index)
    await asyncio.to_thread(_fresh, sandbox, folder)
    job = Job(function=call.function, inputs=files, options=call.options, output_dir=folder)
    try:
        try:
            job = await asyncio.wait_for(call.context.run(call.function, job, services), timeout)
        except asyncio.TimeoutError:
            raise TimedOut(
                f"{call.owner} exceeded the time limit of {timeout:g} s (-module-timeout)"
                " and was stopped"
            ) from None
        unchanged(files, before, await asyncio.to_thread(fingerprints, files), call.owner)
        outputs = await asyncio.to_thread(collect_outputs, sandbox, folder, job, call.owner)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    return Outcome(outputs, job.logs)


def _fresh(sandbox: Sandbox, folder: Path) -> None:
    """An empty folder for the job (a retried job's earlier attempt is cleared away)."""
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.mkdir(parents=True)
    except (FileExistsError, NotADirectoryError):
        raise Conflict(
            f"'{sandbox.relative(folder.parent)}' in the upload directory is in the way of"
            " the run's output folder"
        ) from None
