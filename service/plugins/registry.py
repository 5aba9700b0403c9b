"""Plugin discovery: the one place that reads entry points.

Groups are ``dffml_service_http.{source,model,scorer,module}``. The built-ins are registered in
setup.py through the same groups. A plugin that fails to import is logged and listed as
unavailable with the reason; it never stops the server. Tests build a registry by hand
(:meth:`Registry.empty` + :meth:`Registry.register`) so nothing installed is needed.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from importlib_metadata import entry_points

from service.kernel.errors import BadRequest, NotFound
from service.sdk.base import KINDS, Kind, Model, Plugin, Scorer, Source
from service.sdk.config import describe
from service.sdk.modules import Module

_BASES: dict[Kind, Any] = {
    "source": Source,
    "model": Model,
    "scorer": Scorer,
    "module": Module,
}

log = logging.getLogger(__name__)

GROUP_PREFIX = "dffml_service_http."


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    cls: type[Plugin[Any]] | None
    error: str | None = None


class Registry:
    def __init__(self) -> None:
        self._entries: dict[Kind, dict[str, Entry]] = {kind: {} for kind in KINDS}
        # listing() describes every plugin's CONFIG by introspection (~230 µs of server CPU
        # per GET /list/models with the built-ins); entries only change in _add(), which
        # forgets these.
        self._listings: dict[Kind, dict[str, Any]] = {}

    @classmethod
    def empty(cls) -> Registry:
        return cls()

    @classmethod
    def from_entry_points(cls) -> Registry:
        registry = cls()
        for kind in KINDS:
            for ep in entry_points(group=GROUP_PREFIX + kind):
                if ep.name in registry._entries[kind]:
                    log.warning("%s plugin %r registered twice; keeping the first", kind, ep.name)
                    continue
                try:
                    loaded = ep.load()
                # SystemExit too: a plugin module that calls sys.exit() on a missing dependency
                # must not take the server down with it.
                except (Exception, SystemExit) as exc:
                    log.exception("%s plugin %r (%s) failed to load", kind, ep.name, ep.value)
                    registry._entries[kind][ep.name] = Entry(
                        ep.name, None, f"{type(exc).__name__}: {exc}"
                    )
                    continue
                registry._add(kind, ep.name, loaded)
        return registry

    def register(self, kind: Kind, name: str, cls: type[Plugin[Any]]) -> None:
        """Register a plugin class directly (tests, embedding)."""
        self._add(kind, name, cls)
        entry = self._entries[kind][name]
        if entry.error:
            raise TypeError(entry.error)

    def _add(self, kind: Kind, name: str, loaded: Any) -> None:
        self._listings.pop(kind, None)
        base: type[Plugin[Any]] = _BASES[kind]
        if not (isinstance(loaded, type) and issubclass(loaded, base)):
            error = f"{loaded!r} is not a subclass of {base.__module__}.{base.__qualname__}"
            log.error("%s plugin %r: %s", kind, name, error)
            self._entries[kind][name] = Entry(name, None, error)
            return
        try:
            describe(loaded.CONFIG)
        except Exception as exc:
            self._unavailable(kind, name, f"invalid CONFIG: {type(exc).__name__}: {exc}")
            return
        try:
            # Modules declare functions with option schemas of their own: check them now too.
            loaded.listing_extra()
        except Exception as exc:
            self._unavailable(kind, name, f"invalid declaration: {type(exc).__name__}: {exc}")
            return
        self._entries[kind][name] = Entry(name, loaded)

    def _unavailable(self, kind: Kind, name: str, error: str) -> None:
        log.error("%s plugin %r: %s", kind, name, error)
        self._entries[kind][name] = Entry(name, None, error)

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._entries[kind])

    def get(self, kind: Kind, name: str) -> type[Plugin[Any]]:
        entry = self._entries[kind].get(name)
        if entry is None:
            raise NotFound(f"{kind} {name} not found")
        if entry.cls is None:
            raise BadRequest(f"{kind} {name} is unavailable: {entry.error}")
        return entry.cls

    def python_modules(self, kind: Kind) -> list[str]:
        """The Python modules that define the available plugins of ``kind``."""
        return sorted({e.cls.__module__ for e in self._entries[kind].values() if e.cls})

    def listing(self, kind: Kind) -> dict[str, Any]:
        """``/list/{kind}s`` in DFFML's shape; unavailable plugins carry their reason.

        Computed once per kind; callers must not modify the result.
        """
        cached = self._listings.get(kind)
        if cached is not None:
            return cached
        out: dict[str, Any] = {}
        for name in self.names(kind):
            entry = self._entries[kind][name]
            if entry.cls is None:
                out[name] = {kind: {"plugin": None, "config": {}}, "unavailable": entry.error}
                continue
            config = {name: {"plugin": None, "config": describe(entry.cls.CONFIG)}}
            out[name] = {kind: {"plugin": None, "config": config}, **entry.cls.listing_extra()}
        self._listings[kind] = out
        return out
