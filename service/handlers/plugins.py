"""List plugins, configure them under labels, open and release contexts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from service.contexts import ContextStore
from service.errors import PathTraversal
from service.handlers import params
from service.jsonio import json_response, ok, read_json_object
from service.keys import LABELS, REGISTRY, SANDBOX, STORE
from service.plugins.base import Kind
from service.plugins.config import unwrap_nested
from service.sandbox import Sandbox, require


async def list_plugins(request: web.Request) -> web.Response:
    kind = params.plural_kind(request)
    return json_response(request.app[REGISTRY].listing(kind))


async def configure(request: web.Request) -> web.Response:
    kind = params.kind(request)
    body = await read_json_object(request, default={})
    plugin, label = request.match_info["plugin"], request.match_info["label"]
    await configure_as_sent(request.app[STORE], request.app[SANDBOX], kind, plugin, label, body)
    # Saved as sent, so a restart restores it through this same path (docs/state.md).
    await request.app[LABELS].configured(kind, plugin, label, body)
    return ok()


async def configure_as_sent(
    store: ContextStore, sandbox: Sandbox | None, kind: Kind, plugin: str, label: str, body: Any
) -> None:
    """Configure ``label`` from a client's config body (flat or nested), its paths inside the
    upload dir: the route, and the restore of a saved label at start."""
    values, nested = unwrap_nested(kind, body)
    await store.configure(
        kind,
        plugin,
        label,
        values,
        resolve_path=lambda path: client_path(sandbox, path),
        nested=nested,
    )


def client_path(sandbox: Sandbox | None, path: str) -> Path:
    """A path named in a client's plugin config: always inside the upload dir."""
    root = require(sandbox, "A file path in plugin config")
    try:
        return root.resolve(path)
    except PathTraversal:
        raise PathTraversal(f"{path!r} is not inside the upload directory") from None


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


async def open_context(request: web.Request) -> web.Response:
    kind = params.kind(request)
    label, ctx_label = request.match_info["label"], request.match_info["ctx_label"]
    await request.app[STORE].open_context(kind, label, ctx_label)
    await request.app[LABELS].context_opened(kind, label, ctx_label)
    return ok()


async def release_context(request: web.Request) -> web.Response:
    kind = params.kind(request)
    ctx_label = request.match_info["ctx_label"]
    labels = request.app[LABELS]
    if not labels.context_failed(kind, ctx_label):  # one that could not be restored
        await request.app[STORE].release_context(kind, ctx_label)
    await labels.context_released(kind, ctx_label)
    return ok()
