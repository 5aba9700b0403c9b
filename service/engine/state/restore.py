"""Restore at start: the saved labels and contexts, after the operator's preloads.

Each is replayed in its owner's namespace, so paths resolve inside that user's own root and
the label comes back as theirs (docs/state.md, docs/auth.md).
"""

from __future__ import annotations

import logging

from service.contexts import ContextStore
from service.engine.configure import configure_as_sent
from service.engine.state.labels import LabelInfo, Labels, SavedContext, SavedLabel
from service.kernel import scope
from service.kernel.errors import ServiceError
from service.kernel.sandbox import Sandbox

log = logging.getLogger(__name__)

NOT_RESTORED = "its label could not be restored"


def _whose(owner: str | None) -> str:
    return "shared" if owner is None else f"{owner}'s"


async def restore(store: ContextStore, labels: Labels, sandbox: Sandbox | None) -> None:
    """Configure every saved label and open every saved context that the preloads left free.

    Nothing here raises for one bad label or context: it is logged and listed with its error
    (``GET /labels``), and the server starts with the rest.
    """
    saved_labels, saved_contexts = await labels.saved()
    restored = opened = 0
    for saved in saved_labels:
        with scope.in_namespace(saved.owner):
            restored += await _restore_label(store, labels, sandbox, saved)
    for context in saved_contexts:
        with scope.in_namespace(context.owner):
            opened += await _reopen_context(store, labels, context)
    if saved_labels or saved_contexts:
        log.info("restored %d label(s) and %d context(s) from the state store", restored, opened)


async def _restore_label(
    store: ContextStore, labels: Labels, sandbox: Sandbox | None, saved: SavedLabel
) -> int:
    kind, label, plugin, config = saved.kind, saved.label, saved.plugin, saved.config
    key = (saved.owner, label)
    known = labels.info[kind].get(key)
    if known is not None and known.preloaded:
        log.info("saved %s label %r: the operator's preload wins", kind, label)
        return 0
    try:
        await configure_as_sent(store, sandbox, kind, plugin, label, config)
    except ServiceError as exc:
        error = exc.message
    except Exception as exc:  # a plugin bug must not keep the server from starting
        log.exception("restoring %s %s label %r failed", _whose(saved.owner), kind, label)
        error = f"{type(exc).__name__}: {exc}"
    else:
        labels.info[kind][key] = LabelInfo(plugin, config)
        return 1
    log.warning(
        "could not restore %s %s label %r (%s): %s",
        _whose(saved.owner),
        kind,
        label,
        plugin,
        error,
    )
    labels.info[kind][key] = LabelInfo(plugin, config, error=error)
    return 0


async def _reopen_context(store: ContextStore, labels: Labels, saved: SavedContext) -> int:
    kind, ctx_label, label = saved.kind, saved.ctx_label, saved.label
    failed_key = (kind, (saved.owner, ctx_label))
    if saved.owner is None and ctx_label in store.context_labels(kind):
        return 0  # a preload's context of the same label: the operator wins
    if labels.failed(kind, label):
        labels.failed_contexts[failed_key] = (label, NOT_RESTORED)
        return 0
    if label not in store.labels(kind):
        return 0  # its label gave way to a preload of another plugin
    try:
        await store.open_context(kind, label, ctx_label)
    except ServiceError as exc:
        log.warning("could not reopen %s context %r: %s", kind, ctx_label, exc.message)
        labels.failed_contexts[failed_key] = (label, exc.message)
    except Exception as exc:
        log.exception("reopening %s context %r failed", kind, ctx_label)
        labels.failed_contexts[failed_key] = (label, f"{type(exc).__name__}: {exc}")
    else:
        return 1
    return 0
