"""Running a module function: validate the request against its declaration, run it, report.

Everything a client sends is checked before any function code runs: the function exists, its
options match the declared types, every input file exists inside the upload dir with an expected
extension. The function then runs in a worker process (:mod:`service.engine.workers`) under the
operator's time limit, writing into a fresh ``outputs/<run-id>/`` folder of the upload dir that
is removed again if the run fails.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import secrets
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from service.contexts import ContextStore
from service.engine import models
from service.engine.tasks.executor import Executor
from service.engine.tasks.executor import runner as executor_runner
from service.engine.workers import WorkerCrashed
from service.kernel import scope
from service.kernel.errors import BadRequest, Conflict, NotAllowed, PathTraversal, TimedOut
from service.kernel.sandbox import Sandbox
from service.sdk import config as plugin_config
from service.sdk.modules import Function, InputFile, Job, Module, ModuleContext, ModuleServices
from service.sdk.records import Record

OUTPUTS = "outputs"


@dataclasses.dataclass(frozen=True)
class RunRequest:
    files: list[str]
    options: dict[str, Any]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RunRequest:
        unknown = sorted(set(body) - {"files", "options"})
        if unknown:
            raise BadRequest(f"Unknown key {unknown[0]!r} in body (expected 'files', 'options')")
        files = body.get("files")
        if not isinstance(files, list) or not files:
            raise BadRequest("'files' must be a non-empty list of paths in the upload directory")
        for name in files:
            if not isinstance(name, str):
                raise BadRequest(f"'files' must hold paths (strings), got {name!r}")
        if len(set(files)) != len(files):
            raise BadRequest("'files' names a file twice")
        options = body.get("options", {})
        if not isinstance(options, dict):
            raise BadRequest("'options' must be a JSON object")
        return cls(files=files, options=options)


class _Services(ModuleServices):
    def __init__(self, store: ContextStore, executor: Executor) -> None:
        self._store = store
        self._executor = executor

    async def predict(self, model_ctx: str, records: list[Record]) -> list[Record]:
        scope.require("model", model_ctx, "predict")
        model = self._store.model(model_ctx)
        return await models.predict_list(model, records)

    async def in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        # On whichever executor -executor chose; what the function reports, and where it
        # ran, go to the task this run belongs to, if any.
        return await executor_runner(self._executor)(fn, *args)


async def run_function(
    *,
    store: ContextStore,
    executor: Executor,
    sandbox: Sandbox | None,
    timeout: float,
    ctx_label: str,
    function_name: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    """Run ``function_name`` of module context ``ctx_label``; the response body on success."""
    execute = await prepare_run(
        store=store,
        executor=executor,
        sandbox=sandbox,
        timeout=timeout,
        ctx_label=ctx_label,
        function_name=function_name,
        body=body,
    )
    return await execute()


async def prepare_run(
    *,
    store: ContextStore,
    executor: Executor,
    sandbox: Sandbox | None,
    timeout: float,
    ctx_label: str,
    function_name: str,
    body: dict[str, Any],
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Validate everything a run needs (404, 400, 501 now), then the run itself to await."""
    store_module_function(store, ctx_label, function_name)
    if sandbox is None:
        raise NotAllowed("Module functions need the server to be started with -upload-dir")
    request = RunRequest.from_json(body)
    call = prepare(store, sandbox, ctx_label, function_name, request.options)
    inputs = await asyncio.to_thread(
        check_inputs, sandbox, call.function, call.owner, request.files
    )

    async def execute() -> dict[str, Any]:
        return await _execute(store, executor, sandbox, timeout, call, inputs)

    return execute


async def _execute(
    store: ContextStore,
    executor: Executor,
    sandbox: Sandbox,
    timeout: float,
    call: Call,
    inputs: list[InputFile],
) -> dict[str, Any]:
    context, function, owner, options = call.context, call.function, call.owner, call.options
    before = await asyncio.to_thread(fingerprints, inputs)
    run_id, output_dir = await asyncio.to_thread(_new_output_dir, sandbox)
    job = Job(function=function, inputs=inputs, options=options, output_dir=output_dir)
    try:
        try:
            job = await asyncio.wait_for(
                context.run(function, job, _Services(store, executor)), timeout
            )
        except asyncio.TimeoutError:
            raise TimedOut(
                f"{owner} exceeded the time limit of {timeout:g} s (-module-timeout)"
                " and was stopped"
            ) from None
        unchanged(inputs, before, await asyncio.to_thread(fingerprints, inputs), owner)
        files = await asyncio.to_thread(collect_outputs, sandbox, output_dir, job, owner)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, output_dir, True)
        raise
    return {
        "run": run_id,
        "function": function.name,
        "output_dir": sandbox.relative(output_dir),
        "files": files,
        "logs": job.logs,
    }


@dataclasses.dataclass(frozen=True)
class Call:
    """A function of an open module context with its options, checked against the
    function's declaration: what a module run (or a pipeline's task) is about to call."""

    context: ModuleContext
    function: Function
    owner: str  # ``dataset.split``: names the function in messages
    options: Any


def store_module_function(store: ContextStore, ctx_label: str, function_name: str) -> Function:
    """The function ``function_name`` of open module context ``ctx_label`` (404s name what
    is missing)."""
    module: type[Module[Any]] = type(store.module(ctx_label).module)
    return module.function(function_name)


def prepare(
    store: ContextStore,
    sandbox: Sandbox,
    ctx_label: str,
    function_name: str,
    options: dict[str, Any],
) -> Call:
    """Check a call of ``function_name`` with ``options``: the module route's own checks and
    messages (context not loaded, unknown function, a bad option), and the caller's rules
    (``module/CTX/FUNCTION``, as the module route is named): a pipeline's task is judged as the
    route would be, when the pipeline is made and when it runs."""
    scope.require("module", ctx_label, function_name)
    context = store.module(ctx_label)
    function = store_module_function(store, ctx_label, function_name)
    label = store.context_labels("module")[ctx_label]
    owner = f"{store.labels('module')[label]}.{function.name}"
    built = plugin_config.build(
        function.options,
        options,
        where=plugin_config.Where(owner, "module", ctx_label, noun="option"),
        resolve_path=lambda path: inside(sandbox, path),
    )
    return Call(context, function, owner, built)


def inside(sandbox: Sandbox, path: str) -> Path:
    try:
        return sandbox.resolve(path)
    except PathTraversal:
        raise PathTraversal(f"{path!r} is not inside the upload directory") from None


def check_inputs(
    sandbox: Sandbox, function: Function, owner: str, names: list[str]
) -> list[InputFile]:
    inputs = []
    for name in names:
        path = inside(sandbox, name)
        if not path.is_file():
            raise BadRequest(f"File {name!r} not found in the upload directory")
        extension = path.suffix.lower().lstrip(".")
        if extension not in function.filetypes:
            expected = ", ".join(f".{t}" for t in function.filetypes)
            raise BadRequest(f"{owner} takes {expected} files, got {name!r}")
        inputs.append(InputFile(name=name, path=path))
    return inputs


# What identifies an input's content: device, inode, size, modification time; None once gone.
Fingerprint = tuple[int, int, int, int] | None


def fingerprints(inputs: list[InputFile]) -> list[Fingerprint]:
    """How each input is now: a function must never change them, nor anything else during
    its run."""
    result: list[Fingerprint] = []
    for i in inputs:
        try:
            s = i.path.stat()
        except FileNotFoundError:
            result.append(None)
            continue
        result.append((s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns))
    return result


def unchanged(
    inputs: list[InputFile], before: list[Fingerprint], after: list[Fingerprint], owner: str
) -> None:
    """Raise if an input changed while ``owner`` ran: 409 naming the file when it was replaced
    or removed (an upload, a delete or a source's save puts a new file in place by a rename:
    the run read one version, or two, of what the client meant), WorkerCrashed (500) when the
    same file was written in place (only the function itself writes so)."""
    for input_file, old, new in zip(inputs, before, after, strict=True):
        if old == new:
            continue
        if old is None or new is None or old[:2] != new[:2]:
            raise Conflict(
                f"Input file {input_file.name!r} was replaced or removed while {owner} ran"
                " (uploaded again, deleted or saved by a source); nothing was kept: run it again"
            )
        raise WorkerCrashed(f"{owner} changed an input file in place")


def _new_output_dir(sandbox: Sandbox) -> tuple[str, Path]:
    outputs = inside(sandbox, OUTPUTS)
    try:
        outputs.mkdir(exist_ok=True)
    except FileExistsError:
        raise Conflict(
            f"'{OUTPUTS}' in the upload directory is a file; module runs write their outputs"
            " into a directory of that name"
        ) from None
    # Sortable by time, unguessable, and never reused: mkdir without exist_ok proves it fresh.
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{stamp}-{secrets.token_hex(4)}"
    path = outputs / run_id
    path.mkdir()
    return run_id, path


def collect_outputs(
    sandbox: Sandbox, output_dir: Path, job: Job, owner: str
) -> list[dict[str, Any]]:
    written = {p.name: p for p in output_dir.iterdir() if p.is_file()}
    missing = sorted(set(job.outputs) - set(written))
    if missing:
        raise WorkerCrashed(f"{owner} declared output {missing[0]!r} but did not write it")
    return [
        {
            "filename": sandbox.relative(path),
            "size": path.stat().st_size,
            "tags": job.outputs.get(name, {}),
        }
        for name, path in sorted(written.items())
    ]
