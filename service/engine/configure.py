"""Configuring a label as a client sent it: the configure route, and the restore of saved labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.contexts import ContextStore
from service.kernel.errors import PathTraversal
from service.kernel.sandbox import Sandbox, require
from service.sdk.base import Kind
from service.sdk.config import unwrap_nested


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
