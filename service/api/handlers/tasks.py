"""Task routes: one task, the list, its event stream (SSE), and cancelling it."""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from service.api import asyncwork as tasks_http
from service.api import params
from service.api.jsonio import JSON_TYPE, json_response, read_json, read_json_object
from service.api.keys import EXECUTOR, SANDBOX, STORE, TASKS
from service.api.openapi import Response, operation
from service.engine import models
from service.engine.tasks.events import KEEPALIVE, Event
from service.engine.tasks.executor import runner as executor_runner
from service.engine.tasks.manager import TaskProgress
from service.engine.tasks.predictions import body_predictions_result, predict_to_file
from service.engine.tasks.task import KINDS, STATUSES, Task
from service.kernel.errors import BadRequest, NotAllowed
from service.kernel.jsoncodec import dumps
from service.sdk.base import ModelContext
from service.sdk.progress import Reporter

LIMIT_DEFAULT = 50
LIMIT_MAX = 1000
# A page of /tasks in bytes of JSON: results are at most about 1 MiB each (larger predictions
# go to a file), so a page of 1,000 could otherwise reach a gigabyte.
LISTING_MAX_BYTES = 16 * 1024 * 1024
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
TASK = {
    "type": "object",
    "properties": {
        "task_id": {"type": "string"},
        "kind": {"enum": list(KINDS)},
        "target": {"type": "string"},
        "status": {"enum": list(STATUSES)},
        "progress": {
            "type": "object",
            "properties": {
                "done": {"type": "integer"},
                "total": {"type": ["integer", "null"]},
                "message": {"type": ["string", "null"]},
            },
            "required": ["done", "total", "message"],
        },
        "created": {"type": "string", "format": "date-time"},
        "started": NULLABLE_TIME,
        "finished": NULLABLE_TIME,
        "result": {},
        "error": {"type": ["string", "null"]},
        "ran_on": {"type": ["string", "null"]},
    },
    "required": [
        "task_id",
        "kind",
        "target",
        "status",
        "progress",
        "created",
        "started",
        "finished",
        "result",
        "error",
        "ran_on",
    ],
}
TASK_ID = {"type": "string", "minLength": 1}
NO_TASK = "Task not found"


@operation(
    "A task: its status, progress, result or error",
    tags=("tasks",),
    params={"task_id": TASK_ID},
    responses={200: TASK, 404: NO_TASK},
)
async def get_task(request: web.Request) -> web.Response:
    task = await request.app[TASKS].get(request.match_info["task_id"])
    return json_response(task.to_json())


@operation(
    "Tasks, newest first, with how many match in all",
    tags=("tasks",),
    query={
        "status": {"enum": list(STATUSES)},
        "kind": {"enum": list(KINDS)},
        "limit": {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX, "default": 50},
        "offset": {"type": "integer", "minimum": 0, "default": 0},
        "all": {"enum": ["1", "true", "yes"]},
        "owner": {"type": "string"},
    },
    responses={
        200: {
            "type": "object",
            "properties": {"tasks": {"type": "array", "items": TASK}, "total": {"type": "integer"}},
            "required": ["tasks", "total"],
        },
        400: "Unknown status, kind or query parameter; limit or offset out of range",
    },
)
async def list_tasks(request: web.Request) -> web.Response:
    query = request.query
    # all and owner are the guard's (an admin's every user, or one user: auth.md#ownership).
    unknown = sorted(set(query) - {"status", "kind", "limit", "offset", "all", "owner"})
    if unknown:
        raise BadRequest(
            f"Unknown query parameter {unknown[0]!r}"
            " (expected status, kind, limit, offset, all, owner)"
        )
    status = _choice(query.get("status"), "status", STATUSES)
    kind = _choice(query.get("kind"), "kind", KINDS)
    limit = params.query_integer(
        query, "limit", default=LIMIT_DEFAULT, minimum=1, maximum=LIMIT_MAX
    )
    offset = params.query_integer(query, "offset", default=0, minimum=0, maximum=params.OFFSET_MAX)
    tasks, total = await request.app[TASKS].list(
        status=status, kind=kind, limit=limit, offset=offset
    )
    # Each task encoded once, the page joined as bytes: ``{"tasks": [...], "total": N}``.
    body = b'{"tasks":[' + b",".join(_within_budget(tasks)) + b'],"total":' + dumps(total) + b"}"
    return web.Response(body=body, content_type=JSON_TYPE)


def _within_budget(tasks: list[Task]) -> list[bytes]:
    """The page's tasks, as JSON, while they stay within ``LISTING_MAX_BYTES`` (at least one):
    a page of large results ends early, and ``offset + len(tasks)`` is where the next begins."""
    page: list[bytes] = []
    size = 0
    for task in tasks:
        encoded = dumps(task.to_json())
        size += len(encoded)
        if page and size > LISTING_MAX_BYTES:
            break
        page.append(encoded)
    return page


@operation(
    "Cancel a task: a pending one at once, a running one's worker is killed",
    tags=("tasks",),
    params={"task_id": TASK_ID},
    responses={200: TASK, 404: NO_TASK, 409: "The task already finished"},
)
async def cancel_task(request: web.Request) -> web.Response:
    task = await request.app[TASKS].cancel(request.match_info["task_id"])
    return json_response(task.to_json())


@operation(
    "The task's status, progress and log as Server-Sent Events, until its final status",
    tags=("tasks",),
    params={"task_id": TASK_ID},
    responses={
        200: Response(
            "event: status|progress|log, data: JSON; ends after the final status",
            {"text/event-stream": {"type": "string"}},
        ),
        404: NO_TASK,
        429: "Too many event streams open for this user",
        503: "Too many event streams open",
    },
)
async def task_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events until the task's final status."""
    events = await request.app[TASKS].events(request.match_info["task_id"])
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: pass events on as they come
        }
    )
    await response.prepare(request)
    try:
        async for event in events:
            await response.write(_encode(event))
    except ConnectionResetError:  # the client went away; the finally below lets go
        return response
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def _encode(event: Event) -> bytes:
    name, data = event
    if name == KEEPALIVE:
        return b": keep-alive\n\n"
    return b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"


def _choice(value: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise BadRequest(f"Unknown {name} {value!r} (expected one of: {', '.join(allowed)})")
    return value


async def async_predict(
    request: web.Request,
    ctx_label: str,
    model: ModelContext,
    chunk_size: int,
    source_label: str | None,
) -> web.Response:
    """``POST /model/{ctx}/predict/0?async=1``: the body's records (the result is what the
    synchronous route answers), or every record of ``?source=`` into an NDJSON file."""
    if chunk_size != 0:
        raise BadRequest(
            "An async predict answers every prediction at once: use predict/0 with ?async=1"
        )
    target = f"model/{ctx_label}"
    if source_label is None:
        records = models.records_in_body(await read_json_object(request))
        models.require_trained(model)
        kept = request.app[SANDBOX]

        async def predict_body(reporter: Reporter) -> Any:
            assert isinstance(reporter, TaskProgress)  # only ever run as a task
            predicted = await models.predict_list(model, records)
            return await body_predictions_result(predicted, kept, reporter.task.task_id)

        return await tasks_http.respond(request, True, "predict", target, predict_body)
    (source,) = models.sources(request.app[STORE], [source_label])
    if await read_json(request, default={}) != {}:
        raise BadRequest("Give records in the body or ?source=, not both")
    sandbox = request.app[SANDBOX]
    if sandbox is None:
        raise NotAllowed(
            "Predicting a source with ?async=1 writes a file: start the server with -upload-dir"
        )
    models.require_trained(model)
    runner = executor_runner(request.app[EXECUTOR])

    async def predict_source(reporter: Reporter) -> Any:
        assert isinstance(reporter, TaskProgress)  # only ever run as a task
        return await predict_to_file(
            model=model,
            source=source,
            sandbox=sandbox,
            task_id=reporter.task.task_id,
            reporter=reporter,
            runner=runner,
        )

    return await tasks_http.respond(request, True, "predict", target, predict_source)
