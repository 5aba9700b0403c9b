"""What clients send for pipelines and runs, checked before anything is stored.

Every task is checked against its function's declaration with the module route's own checks
(:func:`service.engine.modules.prepare`), so a pipeline that was accepted can only fail at
run time for reasons that arise later (a context released, a file deleted, the function's own
errors). A problem is a 400 ``task N: <the module route's message>``, N counting from 0.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from service.contexts import ContextStore
from service.engine.modules import prepare
from service.engine.pipelines.model import Task
from service.kernel.errors import BadRequest, Forbidden, ServiceError
from service.kernel.jsoncodec import dumps
from service.kernel.sandbox import Sandbox

# Bounds on what one client request can make the server keep.
MAX_TASKS = 50
MAX_NAME_CHARS = 200
MAX_FILES = 1000
# The tasks' options together, as JSON: a pipeline is kept (and listed) whole, so one with
# megabytes of option values would make every listing that large.
MAX_OPTIONS_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class PipelineRequest:
    name: str
    tasks: list[Task]


def pipeline_request(
    body: dict[str, Any], store: ContextStore, sandbox: Sandbox
) -> PipelineRequest:
    _only(body, {"name", "tasks"})
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("'name' must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"'name' must be at most {MAX_NAME_CHARS} characters")
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise BadRequest("'tasks' must be a non-empty list of {module, function, options}")
    if len(tasks) > MAX_TASKS:
        raise BadRequest(f"a pipeline has at most {MAX_TASKS} tasks, got {len(tasks)}")
    checked = [_task(i, t, store, sandbox) for i, t in enumerate(tasks)]
    size = len(dumps([task.options for task in checked]))
    if size > MAX_OPTIONS_BYTES:
        raise BadRequest(
            f"a pipeline's options take at most {MAX_OPTIONS_BYTES} bytes as JSON, got {size}"
        )
    return PipelineRequest(name, checked)


def _task(index: int, body: Any, store: ContextStore, sandbox: Sandbox) -> Task:
    try:
        if not isinstance(body, dict):
            raise BadRequest("must be an object {module, function, options}")
        _only(body, {"module", "function", "options"})
        module, function = body.get("module"), body.get("function")
        options = body.get("options", {})
        if not isinstance(module, str) or not module:
            raise BadRequest("'module' must name an open module context")
        if not isinstance(function, str) or not function:
            raise BadRequest("'function' must name a function of the module")
        if not isinstance(options, dict):
            raise BadRequest("'options' must be a JSON object")
        prepare(store, sandbox, module, function, options)
    except Forbidden as exc:  # the caller's rules hide the function: as the route answers
        raise Forbidden(f"task {index}: {exc.message}") from None
    except ServiceError as exc:
        # 400 whatever else the module route answers (404 for an unknown context): the
        # pipeline is what is wrong, and the message says which task.
        raise BadRequest(f"task {index}: {exc.message}") from None
    return Task(module, function, options)


def run_files(body: dict[str, Any]) -> tuple[str, list[str]]:
    _only(body, {"pipeline", "files"})
    pipeline = body.get("pipeline")
    if not isinstance(pipeline, str) or not pipeline:
        raise BadRequest("'pipeline' must be the id of a pipeline")
    files = body.get("files")
    if not isinstance(files, list) or not files:
        raise BadRequest("'files' must be a non-empty list of paths in the upload directory")
    if len(files) > MAX_FILES:
        raise BadRequest(f"a run takes at most {MAX_FILES} files, got {len(files)}")
    for name in files:
        if not isinstance(name, str):
            raise BadRequest(f"'files' must hold paths (strings), got {name!r}")
    if len(set(files)) != len(files):
        raise BadRequest("'files' names a file twice")
    return pipeline, files


def _only(body: dict[str, Any], keys: set[str]) -> None:
    unknown = sorted(set(body) - keys)
    if unknown:
        expected = ", ".join(repr(k) for k in sorted(keys))
        raise BadRequest(f"Unknown key {unknown[0]!r} in body (expected {expected})")
