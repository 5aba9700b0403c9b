"""Configured labels and their open contexts, kept so a restart restores them.

What a client configured over HTTP is written as it was sent (kind, plugin, label, the config
body) and replayed at start through the same path as the original request. Operator preloads
(CLI, -config) are not written: the command line gives them again, and they win a clash with a
saved label. A label that cannot be restored (its file is gone, its plugin uninstalled) stays
saved, is logged, and ``GET /labels`` lists it with its error until it is configured again or
deleted.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

import orjson

from service.plugins.base import KINDS, Kind
from service.state.store import StateStore

SCHEMA = [
    """
    CREATE TABLE labels (
        kind TEXT NOT NULL,
        label TEXT NOT NULL,
        plugin TEXT NOT NULL,
        config TEXT NOT NULL,
        PRIMARY KEY (kind, label)
    );
    CREATE TABLE contexts (
        kind TEXT NOT NULL,
        ctx_label TEXT NOT NULL,
        label TEXT NOT NULL,
        PRIMARY KEY (kind, ctx_label)
    );
    """,
]


@dataclasses.dataclass
class LabelInfo:
    plugin: str
    config: Any
    preloaded: bool = False
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class SavedContext:
    kind: Kind
    ctx_label: str
    label: str


class Labels:
    """The saved labels (over the state store) and what the server knows of each label."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self.info: dict[Kind, dict[str, LabelInfo]] = {kind: {} for kind in KINDS}
        # Contexts that failed to open at restore: (kind, ctx_label) -> (label, error).
        self.failed_contexts: dict[tuple[Kind, str], tuple[str, str]] = {}

    @staticmethod
    def register(store: StateStore) -> None:
        store.register_schema("labels", SCHEMA)

    # --- what clients do ------------------------------------------------------------------

    async def configured(self, kind: Kind, plugin: str, label: str, config: Any) -> None:
        self.info[kind][label] = LabelInfo(plugin, config)

        def save(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO labels (kind, label, plugin, config) VALUES (?, ?, ?, ?)",
                (kind, label, plugin, orjson.dumps(config).decode()),
            )
            # Reconfiguring a label closes its contexts (ContextStore does): so do the saved.
            conn.execute("DELETE FROM contexts WHERE kind = ? AND label = ?", (kind, label))

        await self._store.transaction(save)
        self._forget_failed_contexts(kind, label)

    async def released(self, kind: Kind, label: str) -> None:
        self.info[kind].pop(label, None)

        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM labels WHERE kind = ? AND label = ?", (kind, label))
            conn.execute("DELETE FROM contexts WHERE kind = ? AND label = ?", (kind, label))

        await self._store.transaction(delete)
        self._forget_failed_contexts(kind, label)

    async def context_opened(self, kind: Kind, label: str, ctx_label: str) -> None:
        self.failed_contexts.pop((kind, ctx_label), None)
        await self._store.execute(
            "INSERT OR REPLACE INTO contexts (kind, ctx_label, label) VALUES (?, ?, ?)",
            (kind, ctx_label, label),
        )

    async def context_released(self, kind: Kind, ctx_label: str) -> None:
        self.failed_contexts.pop((kind, ctx_label), None)
        await self._store.execute(
            "DELETE FROM contexts WHERE kind = ? AND ctx_label = ?", (kind, ctx_label)
        )

    def failed(self, kind: Kind, label: str) -> bool:
        info = self.info[kind].get(label)
        return info is not None and info.error is not None

    # --- start-up ---------------------------------------------------------------------------

    def preloaded(self, kind: Kind, plugin: str, label: str, config: Any) -> None:
        self.info[kind][label] = LabelInfo(plugin, config, preloaded=True)

    async def saved(self) -> tuple[list[tuple[Kind, str, str, Any]], list[SavedContext]]:
        labels = await self._store.fetchall(
            "SELECT kind, label, plugin, config FROM labels ORDER BY rowid"
        )
        contexts = await self._store.fetchall(
            "SELECT kind, ctx_label, label FROM contexts ORDER BY rowid"
        )
        return (
            [
                (row["kind"], row["label"], row["plugin"], orjson.loads(row["config"]))
                for row in labels
                if row["kind"] in KINDS
            ],
            [
                SavedContext(row["kind"], row["ctx_label"], row["label"])
                for row in contexts
                if row["kind"] in KINDS
            ],
        )

    def _forget_failed_contexts(self, kind: Kind, label: str) -> None:
        for key, (owner, _) in list(self.failed_contexts.items()):
            if key[0] == kind and owner == label:
                del self.failed_contexts[key]
