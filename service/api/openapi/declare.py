"""How a route documents itself for the OpenAPI spec: one ``@operation(...)`` beside its handler.

Everything the spec can work out on its own it does: path parameters come from the route's
template, every error status gets the one error envelope, routes with a JSON body get the 400 and
413 the body reader raises, and statuses every route can answer (429, 500, ...) are added by
:mod:`service.api.openapi.common`. A declaration says only what the handler itself decides: a
summary, the success responses, the errors it raises, its body and its query parameters.

    @operation(
        "Cancel a task",
        tags=("tasks",),
        responses={200: OK_SCHEMA, 404: "No such task", 409: "The task already finished"},
        params={"task_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}},
    )
    async def cancel(request: web.Request) -> web.Response: ...

See /work/notes/openapi-howto.md and docs/openapi.md for the whole recipe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

if TYPE_CHECKING:
    from service.plugins.registry import Registry

Schema = dict[str, Any]
JSON_TYPE = "application/json"

# The one error envelope every refusal uses (service/api/middlewares.py writes it).
ERROR_SCHEMA: Schema = {"$ref": "#/components/schemas/Error"}
# {"error": null}: what routes that only acknowledge answer.
OK_SCHEMA: Schema = {"$ref": "#/components/schemas/Ok"}


@dataclasses.dataclass(frozen=True)
class Response:
    """A response in full: content by media type (None: no body) and response headers."""

    description: str
    content: Mapping[str, Schema] | None = None
    headers: Mapping[str, Schema] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Body:
    """A request body: its schema for each media type it may come as."""

    content: Mapping[str, Schema]
    required: bool = True
    description: str | None = None

    @classmethod
    def json(cls, schema: Schema, *, required: bool = True, description: str | None = None) -> Body:
        return cls({JSON_TYPE: schema}, required=required, description=description)

    @property
    def is_json(self) -> bool:
        return JSON_TYPE in self.content


# What a value of ``responses`` may be:
#   a JSON schema (dict)  -> an application/json body of that schema (errors: the envelope);
#   a string              -> its description; for an error status the body is the envelope,
#                            for a success status there is no body (204 and the like);
#   a Response            -> exactly as given.
ResponseSpec: TypeAlias = "Schema | str | Response"
# A body may depend on the plugins installed (configure bodies are built from each CONFIG).
BodySpec: TypeAlias = "Body | Callable[[Registry], Body] | None"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One concrete path of a templated route, documented on its own (a plugin's configure)."""

    values: Mapping[str, str]  # template parameter -> the value it is fixed to
    summary: str
    body: Body | None
    description: str | None = None


@dataclasses.dataclass(frozen=True)
class Operation:
    summary: str
    responses: Mapping[int, ResponseSpec]
    description: str | None = None
    tags: tuple[str, ...] = ()
    body: BodySpec = None
    # Schemas for path parameters that are not plain strings ({chunk_size}, {kind}, ...).
    params: Mapping[str, Schema] = dataclasses.field(default_factory=dict)
    # Query parameters: name -> schema; all optional unless named in required_query.
    query: Mapping[str, Schema] = dataclasses.field(default_factory=dict)
    required_query: tuple[str, ...] = ()
    # Extra path items for concrete values of the template (one per installed plugin...).
    variants: Callable[[Registry], list[Variant]] | None = None
    # Leave out the statuses every route can answer (the docs pages, /health/live...).
    common: bool = True


H = TypeVar("H", bound=Callable[..., Any])
ATTRIBUTE = "__openapi__"


def operation(
    summary: str,
    *,
    responses: Mapping[int, ResponseSpec],
    description: str | None = None,
    tags: tuple[str, ...] = (),
    body: BodySpec = None,
    params: Mapping[str, Schema] | None = None,
    query: Mapping[str, Schema] | None = None,
    required_query: tuple[str, ...] = (),
    variants: Callable[[Registry], list[Variant]] | None = None,
    common: bool = True,
    runs_async: bool = False,
    async_responses: Mapping[int, ResponseSpec] | None = None,
) -> Callable[[H], H]:
    """Decorate a handler with its OpenAPI operation (the handler itself is unchanged).

    ``runs_async``: the route also runs as a task with ``?async=1`` (service/api/asyncwork.py):
    the query parameter, the 202 and the 503 of a full queue are added, and ``async_responses``
    are the statuses only the asynchronous form answers.
    """
    op = Operation(
        summary=summary,
        responses=dict(responses),
        description=description,
        tags=tags,
        body=body,
        params=dict(params or {}),
        query=dict(query or {}),
        required_query=required_query,
        variants=variants,
        common=common,
    )
    if runs_async:
        op = _asynchronous(op, async_responses or {})

    def decorate(handler: H) -> H:
        document(handler, op)
        return handler

    return decorate


def _asynchronous(op: Operation, more: Mapping[int, ResponseSpec]) -> Operation:
    responses: dict[int, ResponseSpec] = {**op.responses, 202: ACCEPTED_RESPONSE}
    responses.setdefault(503, QUEUE_FULL)
    for status, spec in more.items():
        responses.setdefault(status, spec)
    return dataclasses.replace(
        op,
        query={**op.query, "async": ASYNC_QUERY},
        responses=responses,
        description=((op.description or "") + " With ?async=1: 202 and a task.").strip(),
    )


def document(handler: Callable[..., Any], op: Operation) -> None:
    """Attach ``op`` to ``handler`` without decorating it (handlers in modules you don't own)."""
    setattr(handler, ATTRIBUTE, op)


def declared(handler: Callable[..., Any]) -> Operation | None:
    op = getattr(handler, ATTRIBUTE, None)
    return op if isinstance(op, Operation) else None


# What ``runs_async`` adds to a route's operation.
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
