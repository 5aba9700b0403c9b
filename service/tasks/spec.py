"""The async side of the five long routes in the OpenAPI spec: ``?async``, ``Prefer`` and 202.

Their synchronous declarations live in :mod:`service.openapi.core`; this adds what tasks bring
to each, so the spec stays true without editing them there.
"""

from __future__ import annotations

import dataclasses

from service.handlers import models, modules, scorers
from service.openapi import core as _core  # noqa: F401  (the declarations extended here)
from service.openapi.declare import ATTRIBUTE, Operation, Response, Schema, document

ASYNC_QUERY: Schema = {
    "type": "string",
    "enum": ["1", "true", "0", "false"],
    "description": "1 or true: answer 202 at once and run the work as a task (/task/{id});"
    " the header Prefer: respond-async does the same",
}
ACCEPTED: Schema = {
    "type": "object",
    "properties": {
        "task_id": {"type": "string"},
        "status": {"const": "PENDING"},
        "location": {"type": "string"},
    },
    "required": ["task_id", "status", "location"],
}
ACCEPTED_RESPONSE = Response(
    "Accepted as a task: follow Location (/task/{id}, its /events)",
    {"application/json": ACCEPTED},
    headers={"Location": {"type": "string"}},
)
QUEUE_FULL = "The server is shutting down, or -task-queue tasks are pending (Retry-After)"


def _extend(handler: object, **more: str) -> None:
    op: Operation | None = getattr(handler, ATTRIBUTE, None)
    if op is None:
        raise RuntimeError(f"{handler!r} has no OpenAPI declaration to extend")
    responses = {**op.responses, 202: ACCEPTED_RESPONSE}
    if 503 not in responses:
        responses[503] = QUEUE_FULL
    for status, description in more.items():
        responses.setdefault(int(status.lstrip("_")), description)
    document(
        handler,  # type: ignore[arg-type]
        dataclasses.replace(
            op,
            query={**op.query, "async": ASYNC_QUERY},
            responses=responses,
            description=((op.description or "") + " With ?async=1: 202 and a task.").strip(),
        ),
    )


for _handler in (models.train, models.accuracy, scorers.score, modules.run):
    _extend(_handler)
_extend(models.predict, _501="?source= with ?async=1 writes a file: it needs -upload-dir")
