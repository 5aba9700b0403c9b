"""How a route becomes asynchronous: ``?async=1`` / ``Prefer: respond-async`` → 202 + Location.

Handlers validate the request first (a bad one is still a 4xx at once), build the work as an
async callable, and hand it to :func:`respond`: without async the work runs now and its result
is the response, exactly as before tasks existed; with async it is submitted as a task.
"""

from __future__ import annotations

from aiohttp import web

from service.api.jsonio import json_response
from service.api.keys import TASKS
from service.engine.tasks.manager import QueueFull, Work
from service.kernel.errors import BadRequest
from service.sdk.progress import SILENT

TRUE = frozenset({"1", "true"})
FALSE = frozenset({"0", "false"})


def wants_async(request: web.Request) -> bool:
    """``?async=1|true`` (``0|false`` for no), else a ``Prefer: respond-async`` header."""
    value = request.query.get("async")
    if value is not None:
        lowered = value.strip().lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
        raise BadRequest(f"'async' must be 1, true, 0 or false, got {value!r}")
    for header in request.headers.getall("Prefer", ()):
        for preference in header.split(","):
            if preference.split(";", 1)[0].strip().lower() == "respond-async":
                return True
    return False


async def respond(
    request: web.Request,
    asynchronous: bool,
    kind: str,
    target: str,
    work: Work,
    *,
    owner: str | None = None,
) -> web.Response:
    if not asynchronous:
        return json_response(await work(SILENT))
    try:
        task = await request.app[TASKS].submit(kind, target, work, owner=owner)
    except QueueFull as exc:
        # The error middleware keeps Retry-After from an HTTPException.
        raise web.HTTPServiceUnavailable(
            text=exc.message, headers={"Retry-After": str(exc.retry_after)}
        ) from None
    response = json_response(
        {"task_id": task.task_id, "status": task.status, "location": task.location},
        status=202,
    )
    response.headers["Location"] = task.location
    return response
