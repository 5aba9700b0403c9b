"""List plugins, configure them under labels, open and release contexts."""

from __future__ import annotations

from aiohttp import web

from service.api import params
from service.api.jsonio import json_response, ok, read_json_object
from service.api.keys import LABELS, REGISTRY, SANDBOX, STORE
from service.api.openapi import OK_SCHEMA, operation
from service.api.openapi.schemas import configure_body, configure_variants
from service.api.openapi.shapes import KIND
from service.engine.configure import configure_as_sent
from service.sdk.base import KINDS


@operation(
    "List installed plugins of a kind with their config options",
    tags=("plugins",),
    params={"kinds": {"enum": [kind + "s" for kind in KINDS]}},
    responses={
        200: {"type": "object", "additionalProperties": {"type": "object"}},
        404: "Unknown plugin kind",
    },
)
async def list_plugins(request: web.Request) -> web.Response:
    kind = params.plural_kind(request)
    return json_response(request.app[REGISTRY].listing(kind))


@operation(
    "Configure a plugin under a label (replacing the label's previous plugin)",
    tags=("plugins",),
    description=(
        "The body is the plugin's config, flat ({field: value}) or in DFFML's nested form. "
        "Each installed plugin also has its own path below, with its own body schema."
    ),
    params={"kind": KIND},
    body=configure_body,
    variants=configure_variants,
    responses={
        200: OK_SCHEMA,
        400: "The config does not fit the plugin, or the plugin failed to open",
        404: "Unknown kind or plugin",
        409: "Too many labels (-max-labels), another label already holds the file"
        " read-write, or the label being replaced could not save",
        507: "The label being replaced could not save its updates (it is kept)",
    },
)
async def configure(request: web.Request) -> web.Response:
    kind = params.kind(request)
    body = await read_json_object(request, default={})
    plugin, label = request.match_info["plugin"], request.match_info["label"]
    await configure_as_sent(request.app[STORE], request.app[SANDBOX], kind, plugin, label, body)
    # Saved as sent, so a restart restores it through this same path (docs/state.md).
    await request.app[LABELS].configured(kind, plugin, label, body)
    return ok()


@operation(
    "Release a configured label and every context opened from it",
    tags=("plugins",),
    params={"kind": KIND},
    query={"discard": {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}},
    responses={
        200: OK_SCHEMA,
        400: "Saving the read-write source reached a symbolic link; the label is kept",
        404: "No such label",
        409: "The read-write source's file changed on disk; the label is kept",
        507: "Saving the read-write source failed; the label and its updates are kept",
    },
)
async def release_plugin(request: web.Request) -> web.Response:
    kind = params.kind(request)
    label = request.match_info["label"]
    labels = request.app[LABELS]
    if labels.failed(kind, label):  # a saved label that could not be restored
        await labels.released(kind, label)
        return ok()
    discard = request.query.get("discard", "").lower() in ("1", "true", "yes")
    await request.app[STORE].release_plugin(kind, label, discard=discard)
    await labels.released(kind, label)
    return ok()


@operation(
    "Open a context of a configured label (replacing one of the same context label)",
    tags=("plugins",),
    params={"kind": KIND},
    responses={
        200: OK_SCHEMA,
        400: "The plugin failed to open a context",
        404: "No such label",
    },
)
async def open_context(request: web.Request) -> web.Response:
    kind = params.kind(request)
    label, ctx_label = request.match_info["label"], request.match_info["ctx_label"]
    await request.app[STORE].open_context(kind, label, ctx_label)
    await request.app[LABELS].context_opened(kind, label, ctx_label)
    return ok()


@operation(
    "Close a context",
    tags=("plugins",),
    params={"kind": KIND},
    responses={
        200: OK_SCHEMA,
        400: "Closed, but saving the read-write source reached a symbolic link",
        404: "No context of that label is open",
        409: "Closed, but the read-write source's file changed on disk: not saved",
        507: "Closed, but saving the read-write source failed (its updates are kept)",
    },
)
async def release_context(request: web.Request) -> web.Response:
    kind = params.kind(request)
    ctx_label = request.match_info["ctx_label"]
    labels = request.app[LABELS]
    if not labels.context_failed(kind, ctx_label):  # one that could not be restored
        await request.app[STORE].release_context(kind, ctx_label)
    await labels.context_released(kind, ctx_label)
    return ok()
