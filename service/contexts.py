"""In-memory labels → configured plugins → opened contexts.

One store per app. Every plugin and context it opens is closed again: when its label is
reconfigured or deleted, and all of them (contexts first) when the app shuts down.

Labels and contexts are kept per namespace (service/kernel/scope.py): a user's lookups see their
own and then the operator's shared ones, never another user's; what is shared only the operator
and admins change. With ``-auth none`` everything is in the one shared namespace, as before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from service.kernel import scope
from service.kernel.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceError
from service.plugins.registry import Registry
from service.sdk import config as plugin_config
from service.sdk.base import (
    KINDS,
    AsyncResource,
    Kind,
    ModelContext,
    Plugin,
    ScorerContext,
    SourceContext,
)
from service.sdk.modules import ModuleContext

log = logging.getLogger(__name__)

T = TypeVar("T", bound=AsyncResource)
T2 = TypeVar("T2")

# Messages for an unknown context label, as the original service words them.
NOT_LOADED = {
    "source": "Source not loaded",
    "model": "Model not loaded",
    "scorer": "Scorer not loaded",
    "module": "Module not loaded",
}


# (namespace, label): None is the shared namespace (operator preloads, -auth none).
Key = tuple[str | None, str]


@dataclasses.dataclass
class Configured:
    plugin_name: str
    plugin: Plugin[Any]


@dataclasses.dataclass(frozen=True)
class Training:
    """A model context's last training that succeeded through the server: when it finished
    (seconds since the epoch) and the source contexts it read."""

    finished: float
    sources: tuple[str, ...]


@dataclasses.dataclass
class Opened:
    label: Key
    context: AsyncResource
    # Models only: kept with the context, so a release or a reopen forgets it.
    training: Training | None = None


def _shared_is_read_only(kind: Kind, label: str) -> Forbidden:
    return Forbidden(f"{label} {kind} is shared by the operator: only admins change it")


class ContextStore:
    def __init__(self, registry: Registry, *, max_labels: int = 256) -> None:
        self.registry = registry
        # Every label and context may hold a descriptor (a spool, a database) or a thread:
        # a client may not make the server hold more than this many of each.
        self.max_labels = max_labels
        self._plugins: dict[Kind, dict[Key, Configured]] = {k: {} for k in KINDS}
        self._contexts: dict[Kind, dict[Key, Opened]] = {k: {} for k in KINDS}
        # Configure/context/release change both maps and await plugin code in between;
        # one lock keeps them consistent.
        self._lock = asyncio.Lock()
        # Awaited with (kind, ctx_label) just before a context closes, so what was read from
        # it (iterkey cursors) is let go first. Listeners must not call back into the store.
        self.on_context_close: list[Callable[[Kind, str], Awaitable[None]]] = []

    async def configure(
        self,
        kind: Kind,
        plugin_name: str,
        label: str,
        values: dict[str, Any],
        *,
        resolve_path: plugin_config.PathResolver,
        from_cli: bool = False,
        nested: bool = False,
    ) -> None:
        """Build, validate and open a plugin under ``label``, replacing any previous one."""
        cls = self.registry.get(kind, plugin_name)
        key = (scope.namespace(), label)
        self._check_room(self._plugins, kind, key, "labels", "-max-labels")
        where = plugin_config.Where(cls.__name__, kind, label)
        config = plugin_config.build(
            cls.CONFIG,
            values,
            where=where,
            resolve_path=resolve_path,
            from_cli=from_cli,
            nested=nested,
        )
        plugin = cls(config)
        self._check_claim(kind, key, plugin)
        replaced = self._plugins[kind].get(key)
        if replaced is not None:
            # Saved before the new plugin reads the file, so it sees the label's updates.
            await replaced.plugin.flush()
        plugin = await _enter(plugin, f"{kind}.{label}")
        async with self._lock:
            try:
                self._check_room(self._plugins, kind, key, "labels", "-max-labels")
                self._check_claim(kind, key, plugin)
                old = self._plugins[kind].get(key)
                if old is not None:
                    # What the label being replaced has not saved is saved first; if that
                    # fails the old label stays, and the client is told why.
                    await old.plugin.flush()
            except ServiceError:
                await _exit(plugin, f"{kind}.{label}")
                raise
            old = self._plugins[kind].pop(key, None)
            self._plugins[kind][key] = Configured(plugin_name, plugin)
            if old is not None:
                await self._close_plugin(kind, key, old)

    def _check_claim(self, kind: Kind, key: Key, plugin: Plugin[Any]) -> None:
        """409 when another label already writes the file ``plugin`` would write: two
        read-write sources on one file would overwrite each other's saves."""
        claimed = plugin.claims()
        if claimed is None:
            return
        for other_kind, table in self._plugins.items():
            for other_key, configured in table.items():
                if (other_kind, other_key) != (kind, key) and configured.plugin.claims() == claimed:
                    holder = other_key[1]
                    raise Conflict(
                        f"{claimed.name} is already read-write under {other_kind} label"
                        f" {holder!r}: one file has one read-write label (release it with"
                        f" DELETE /configure/{other_kind}/{holder}, use its contexts, or"
                        " configure this label without readwrite)"
                    )

    async def open_context(self, kind: Kind, label: str, ctx_label: str) -> None:
        """A context of the caller's plugin ``label`` (or a shared one) in the caller's
        namespace."""
        ctx_key = (scope.namespace(), ctx_label)
        async with self._lock:
            found = self._find(self._plugins[kind], label)
            if found is None:
                raise NotFound(f"{label} {kind} not found")
            plugin_key, configured = found
            self._check_room(self._contexts, kind, ctx_key, "contexts", "-max-labels")
            context = await _enter(configured.plugin.context(), f"{kind} context {ctx_label}")
            old = self._contexts[kind].pop(ctx_key, None)
            if old is not None:
                # Before the new context is reachable, so only the old one's cursors go.
                await self._notify_closing(kind, ctx_key)
            self._contexts[kind][ctx_key] = Opened(plugin_key, context)
        if old is not None:
            await _exit(old.context, f"{kind} context {ctx_label}")

    def _check_room(
        self, table: dict[Kind, dict[Any, Any]], kind: Kind, name: Any, what: str, option: str
    ) -> None:
        """409 when ``name`` would be one more than the operator allows (replacing is fine), or
        one more than a user's share: half of it, so one user never fills it for everyone."""
        if name in table[kind]:
            return
        namespace = name[0]
        if namespace is not None:
            share = max(1, self.max_labels // 2)
            held = sum(1 for names in table.values() for key in names if key[0] == namespace)
            if held >= share:
                raise Conflict(
                    f"At most {share} {what} of one user may be open at once (half of"
                    f" {option}); release one with DELETE"
                    f" /{'configure' if what == 'labels' else 'context'}/{{kind}}/{{label}} first"
                )
        if sum(len(names) for names in table.values()) >= self.max_labels:
            raise Conflict(
                f"At most {self.max_labels} {what} may be open at once ({option});"
                f" release one with DELETE /{'configure' if what == 'labels' else 'context'}"
                f"/{{kind}}/{{label}} first"
            )

    async def release_plugin(self, kind: Kind, label: str, *, discard: bool = False) -> None:
        """Release ``label``; if saving what it holds fails, it stays and the error is raised
        (``discard``: its unsaved changes are dropped instead)."""
        async with self._lock:
            key = self._own_key(self._plugins[kind], kind, label, f"{label} {kind} not found")
            await self._plugins[kind][key].plugin.flush(discard=discard)
            configured = self._plugins[kind].pop(key)
            await self._close_plugin(kind, key, configured)

    async def release_context(self, kind: Kind, ctx_label: str) -> None:
        async with self._lock:
            key = self._own_key(self._contexts[kind], kind, ctx_label, NOT_LOADED[kind])
            opened = self._contexts[kind].pop(key)
            await self._notify_closing(kind, key)
        # Closed either way; a save that fails is the releasing client's error to see.
        await _exit(opened.context, f"{kind} context {ctx_label}", report=True)

    def _find(self, table: dict[Key, T2], label: str) -> tuple[Key, T2] | None:
        """The caller's own ``label``, else the shared one; never another user's."""
        namespace = scope.namespace()
        if namespace is not None:
            own = (namespace, label)
            if own in table:
                return own, table[own]
        shared = (None, label)
        if shared in table:
            return shared, table[shared]
        return None

    def _own_key(self, table: dict[Key, Any], kind: Kind, label: str, missing: str) -> Key:
        """The key the caller may change: their own, or a shared one if they are an admin."""
        key = (scope.namespace(), label)
        if key in table:
            return key
        if (None, label) in table:
            raise _shared_is_read_only(kind, label)
        raise NotFound(missing)

    async def aclose(self) -> None:
        """Close every context, then every plugin (shutdown)."""
        async with self._lock:
            for kind in KINDS:
                for ctx_key, opened in list(self._contexts[kind].items()):
                    await self._exit_context(kind, ctx_key, opened)
                self._contexts[kind].clear()
            for kind in KINDS:
                for (_, label), configured in list(self._plugins[kind].items()):
                    await _exit(configured.plugin, f"{kind}.{label}")
                self._plugins[kind].clear()

    async def _close_plugin(self, kind: Kind, key: Key, configured: Configured) -> None:
        """Close the contexts opened from ``key`` (in any namespace), then the plugin itself
        (lock held)."""
        for ctx_key, opened in list(self._contexts[kind].items()):
            if opened.label == key:
                del self._contexts[kind][ctx_key]
                await self._exit_context(kind, ctx_key, opened)
        await _exit(configured.plugin, f"{kind}.{key[1]}")

    async def _exit_context(self, kind: Kind, ctx_key: Key, opened: Opened) -> None:
        await self._notify_closing(kind, ctx_key)
        await _exit(opened.context, f"{kind} context {ctx_key[1]}")

    async def _notify_closing(self, kind: Kind, ctx_key: Key) -> None:
        namespace, ctx_label = ctx_key
        # Listeners (iterkey cursors) key what they hold by the namespace too.
        with scope.in_namespace(namespace):
            for listener in self.on_context_close:
                try:
                    await listener(kind, ctx_label)
                except Exception:
                    log.exception("before closing %s context %s", kind, ctx_label)

    def _context(self, kind: Kind, ctx_label: str) -> AsyncResource:
        found = self._find(self._contexts[kind], ctx_label)
        if found is None:
            raise NotFound(NOT_LOADED[kind])
        return found[1].context

    def _changeable(self, kind: Kind, ctx_label: str) -> AsyncResource:
        """A context the caller may change what it holds through (update records, train): a
        context of a shared plugin (an operator preload, the admin namespace) is read-only to
        users, whichever namespace the context was opened in, since the plugin's data is
        what everyone reads."""
        found = self._find(self._contexts[kind], ctx_label)
        if found is None:
            raise NotFound(NOT_LOADED[kind])
        opened = found[1]
        current = scope.current()
        if (
            opened.label[0] is None
            and current.namespace is not None
            and not (current.user is not None and current.user.admin)
        ):
            raise _shared_is_read_only(kind, opened.label[1])
        return opened.context

    def changeable_source(self, ctx_label: str) -> SourceContext:
        """The source context for a write (403 for a user when its plugin is shared)."""
        return cast(SourceContext, self._changeable("source", ctx_label))

    def changeable_model(self, ctx_label: str) -> ModelContext:
        """The model context for a training (403 for a user when its plugin is shared)."""
        return cast(ModelContext, self._changeable("model", ctx_label))

    # The registry only admits subclasses of each kind's base, so these casts hold.
    def source(self, ctx_label: str) -> SourceContext:
        return cast(SourceContext, self._context("source", ctx_label))

    def model(self, ctx_label: str) -> ModelContext:
        return cast(ModelContext, self._context("model", ctx_label))

    def scorer(self, ctx_label: str) -> ScorerContext:
        return cast(ScorerContext, self._context("scorer", ctx_label))

    def module(self, ctx_label: str) -> ModuleContext:
        return cast(ModuleContext, self._context("module", ctx_label))

    def trained(self, ctx_label: str, context: ModelContext, sources: Sequence[str]) -> None:
        """Record that ``context`` (still the model context ``ctx_label``, unless it was
        released or replaced meanwhile) finished a training on ``sources``."""
        found = self._find(self._contexts["model"], ctx_label)
        if found is not None and found[1].context is context:
            found[1].training = Training(time.time(), tuple(sources))

    def training(self, ctx_label: str) -> Training | None:
        """The last training recorded for the model context ``ctx_label``, if any."""
        found = self._find(self._contexts["model"], ctx_label)
        return None if found is None else found[1].training

    def labels(self, kind: Kind) -> dict[str, str]:
        """Configured labels of ``kind`` the caller sees and the plugin each runs."""
        return {label: c.plugin_name for (_, label), c in self._visible(self._plugins[kind])}

    def context_labels(self, kind: Kind) -> dict[str, str]:
        """Open context labels of ``kind`` the caller sees and the label each belongs to."""
        return {ctx: o.label[1] for (_, ctx), o in self._visible(self._contexts[kind])}

    def owners(self) -> list[str]:
        """The users who have labels or contexts of their own (an admin's ``?all=1``)."""
        owners = {owner for table in self._plugins.values() for owner, _ in table}
        owners |= {owner for table in self._contexts.values() for owner, _ in table}
        return sorted(owner for owner in owners if owner is not None)

    def own_labels(self, kind: Kind) -> set[str]:
        """The labels of ``kind`` in the caller's namespace itself, not the shared ones."""
        namespace = scope.namespace()
        return {label for (owner, label) in self._plugins[kind] if owner == namespace}

    def _visible(self, table: dict[Key, T2]) -> list[tuple[Key, T2]]:
        """Shared entries first, so the caller's own of the same label win."""
        namespace = scope.namespace()
        items = sorted(table.items(), key=lambda item: item[0][0] is not None)
        return [(key, value) for key, value in items if key[0] in (None, namespace)]


async def _enter(resource: T, what: str) -> T:
    """Enter a plugin or context; plugin failures on bad input become 400s, never 500s."""
    try:
        return await resource.__aenter__()
    except ServiceError:
        raise
    except OSError as exc:
        raise BadRequest(f"{what}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        log.info("%s failed to open: %s", what, exc, extra={"client_error": True})
        raise BadRequest(f"{what}: {exc}") from None


async def _exit(resource: AsyncResource, what: str, *, report: bool = False) -> None:
    """Close, logging (not raising) failures so one bad plugin cannot stop the others closing;
    ``report``: a ServiceError (a save that failed) is raised after closing, for the client."""
    try:
        await resource.__aexit__(None, None, None)
    except ServiceError as exc:
        log.warning("closing %s: %s", what, exc.message)
        if report:
            raise
    except Exception:
        log.exception("closing %s failed", what)
