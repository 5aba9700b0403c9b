"""Restore at start: the saved labels and contexts, after the operator's preloads."""

from __future__ import annotations

import logging

from service.contexts import ContextStore
from service.errors import ServiceError
from service.handlers.plugins import client_path
from service.plugins.config import unwrap_nested
from service.sandbox import Sandbox
from service.state.labels import LabelInfo, Labels

log = logging.getLogger(__name__)

NOT_RESTORED = "its label could not be restored"


async def restore(store: ContextStore, labels: Labels, sandbox: Sandbox | None) -> None:
    """Configure every saved label and open every saved context that the preloads left free.

    Nothing here raises for one bad label or context: it is logged and listed with its error
    (``GET /labels``), and the server starts with the rest.
    """
    saved_labels, saved_contexts = await labels.saved()
    restored = 0
    for kind, label, plugin, config in saved_labels:
        known = labels.info[kind].get(label)
        if known is not None and known.preloaded:
            log.info("saved %s label %r: the operator's preload wins", kind, label)
            continue
        try:
            values, nested = unwrap_nested(kind, config)
            await store.configure(
                kind,
                plugin,
                label,
                values,
                resolve_path=lambda path: client_path(sandbox, path),
                nested=nested,
            )
        except ServiceError as exc:
            error = exc.message
        except Exception as exc:  # a plugin bug must not keep the server from starting
            log.exception("restoring %s label %r failed", kind, label)
            error = f"{type(exc).__name__}: {exc}"
        else:
            labels.info[kind][label] = LabelInfo(plugin, config)
            restored += 1
            continue
        log.warning("could not restore %s label %r (%s): %s", kind, label, plugin, error)
        labels.info[kind][label] = LabelInfo(plugin, config, error=error)
    opened = 0
    for saved in saved_contexts:
        kind, ctx_label, label = saved.kind, saved.ctx_label, saved.label
        if ctx_label in store.context_labels(kind):
            continue  # a preload's context of the same label: the operator wins
        if labels.failed(kind, label):
            labels.failed_contexts[(kind, ctx_label)] = (label, NOT_RESTORED)
            continue
        if label not in store.labels(kind):
            continue  # its label gave way to a preload of another plugin
        try:
            await store.open_context(kind, label, ctx_label)
        except ServiceError as exc:
            log.warning("could not reopen %s context %r: %s", kind, ctx_label, exc.message)
            labels.failed_contexts[(kind, ctx_label)] = (label, exc.message)
        except Exception as exc:
            log.exception("reopening %s context %r failed", kind, ctx_label)
            labels.failed_contexts[(kind, ctx_label)] = (label, f"{type(exc).__name__}: {exc}")
        else:
            opened += 1
    if saved_labels or saved_contexts:
        log.info("restored %d label(s) and %d context(s) from the state store", restored, opened)
