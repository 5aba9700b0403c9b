"""Configured labels and their open contexts, kept so a restart restores them.

What a client configured over HTTP is written as it was sent (owner, kind, plugin, label, the
config body) and replayed at start through the same path as the original request, in its
owner's namespace (service/kernel/scope.py): a user's labels come back as theirs, two users'
labels of one name stay apart. Operator preloads (CLI, -config) are not written: the command
line gives them again, and they win a clash with a saved shared label. A label that cannot be
restored (its file is gone, its plugin uninstalled) stays saved, is logged, and ``GET /labels``
lists it with its error until it is configured again or deleted.

Every method acts in the caller's namespace (``scope.namespace()``), as the context store does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from service.engine.state.backend import Connection
from service.engine.state.store import Migration, StateStore
from service.kernel import scope
from service.sdk.base import KINDS, Kind

# (namespace, label): None is the shared namespace (operator preloads, -auth none, admins).
Key = tuple[str | None, str]
# The shared namespace on disk: a primary key column cannot hold NULL, and no user is named "".
_SHARED = ""


def _numbered(conn: Connection) -> None:
    """3: ``seq`` orders the rows as they were last configured, for the restore. SQLite's
    rowid did (INSERT OR REPLACE gave a new one); PostgreSQL keeps no such order. Rows saved
    before are numbered in the order they were made."""
    for table, name in (("labels", "label"), ("contexts", "ctx_label")):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
        rows = conn.execute(f"SELECT owner, kind, {name} FROM {table} ORDER BY rowid").fetchall()
        conn.executemany(
            f"UPDATE {table} SET seq = ? WHERE owner = ? AND kind = ? AND {name} = ?",
            [(seq, *row) for seq, row in enumerate(rows, start=1)],
        )


SCHEMA: list[Migration] = [
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
    # 2: an owner for each row; rows written before it are the shared namespace's.
    """
    CREATE TABLE labels_v2 (
        owner TEXT NOT NULL,
        kind TEXT NOT NULL,
        label TEXT NOT NULL,
        plugin TEXT NOT NULL,
        config TEXT NOT NULL,
        PRIMARY KEY (owner, kind, label)
    );
    INSERT INTO labels_v2 (owner, kind, label, plugin, config)
        SELECT '', kind, label, plugin, config FROM labels ORDER BY rowid;
    DROP TABLE labels;
    ALTER TABLE labels_v2 RENAME TO labels;
    CREATE TABLE contexts_v2 (
        owner TEXT NOT NULL,
        kind TEXT NOT NULL,
        ctx_label TEXT NOT NULL,
        label TEXT NOT NULL,
        PRIMARY KEY (owner, kind, ctx_label)
    );
    INSERT INTO contexts_v2 (owner, kind, ctx_label, label)
        SELECT '', kind, ctx_label, label FROM contexts ORDER BY rowid;
    DROP TABLE contexts;
    ALTER TABLE contexts_v2 RENAME TO contexts;
    """,
    _numbered,
]

# A new or reconfigured row goes last, as it did when SQLite's INSERT OR REPLACE renumbered it.
_NEXT = "(SELECT coalesce(max(seq), 0) + 1 FROM {table})"


@dataclasses.dataclass
class LabelInfo:
    plugin: str
    config: Any
    preloaded: bool = False
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class SavedLabel:
    owner: str | None
    kind: Kind
    label: str
    plugin: str
    config: Any


@dataclasses.dataclass(frozen=True)
class SavedContext:
    owner: str | None
    kind: Kind
    ctx_label: str
    label: str


def _column(owner: str | None) -> str:
    return _SHARED if owner is None else owner


def _owner(column: str) -> str | None:
    return None if column == _SHARED else column


class Labels:
    """The saved labels (over the state store) and what the server knows of each label."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self.info: dict[Kind, dict[Key, LabelInfo]] = {kind: {} for kind in KINDS}
        # Contexts that failed to open at restore: (kind, (namespace, ctx_label)) ->
        # (label, error).
        self.failed_contexts: dict[tuple[Kind, Key], tuple[str, str]] = {}

    @staticmethod
    def register(store: StateStore) -> None:
        store.register_schema("labels", SCHEMA)

    # --- what clients do ------------------------------------------------------------------

    async def configured(self, kind: Kind, plugin: str, label: str, config: Any) -> None:
        owner = scope.namespace()
        self.info[kind][(owner, label)] = LabelInfo(plugin, config)

        def save(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO labels (owner, kind, label, plugin, config, seq)"
                f" VALUES (?, ?, ?, ?, ?, {_NEXT.format(table='labels')})"
                " ON CONFLICT (owner, kind, label) DO UPDATE SET plugin = excluded.plugin,"
                " config = excluded.config, seq = excluded.seq",
                (_column(owner), kind, label, plugin, orjson.dumps(config).decode()),
            )
            # Reconfiguring a label closes its contexts (ContextStore does): so do the saved.
            conn.execute(
                "DELETE FROM contexts WHERE owner = ? AND kind = ? AND label = ?",
                (_column(owner), kind, label),
            )

        await self._store.transaction(save)
        self._forget_failed_contexts(kind, (owner, label))

    async def released(self, kind: Kind, label: str) -> None:
        owner = scope.namespace()
        self.info[kind].pop((owner, label), None)

        def delete(conn: Connection) -> None:
            key = (_column(owner), kind, label)
            conn.execute("DELETE FROM labels WHERE owner = ? AND kind = ? AND label = ?", key)
            conn.execute("DELETE FROM contexts WHERE owner = ? AND kind = ? AND label = ?", key)

        await self._store.transaction(delete)
        self._forget_failed_contexts(kind, (owner, label))

    async def context_opened(self, kind: Kind, label: str, ctx_label: str) -> None:
        owner = scope.namespace()
        self.failed_contexts.pop((kind, (owner, ctx_label)), None)
        await self._store.execute(
            "INSERT INTO contexts (owner, kind, ctx_label, label, seq)"
            f" VALUES (?, ?, ?, ?, {_NEXT.format(table='contexts')})"
            " ON CONFLICT (owner, kind, ctx_label) DO UPDATE SET label = excluded.label,"
            " seq = excluded.seq",
            (_column(owner), kind, ctx_label, label),
        )

    async def context_released(self, kind: Kind, ctx_label: str) -> None:
        owner = scope.namespace()
        self.failed_contexts.pop((kind, (owner, ctx_label)), None)
        await self._store.execute(
            "DELETE FROM contexts WHERE owner = ? AND kind = ? AND ctx_label = ?",
            (_column(owner), kind, ctx_label),
        )

    def failed(self, kind: Kind, label: str) -> bool:
        """The caller's own ``label`` is a saved one that could not be restored."""
        info = self.info[kind].get((scope.namespace(), label))
        return info is not None and info.error is not None

    def context_failed(self, kind: Kind, ctx_label: str) -> bool:
        return (kind, (scope.namespace(), ctx_label)) in self.failed_contexts

    # --- what GET /labels shows ---------------------------------------------------------------

    def find(self, kind: Kind, label: str) -> LabelInfo | None:
        """The caller's own ``label``, else the shared one (as the context store looks up)."""
        namespace = scope.namespace()
        if namespace is not None and (namespace, label) in self.info[kind]:
            return self.info[kind][(namespace, label)]
        return self.info[kind].get((None, label))

    def visible_errors(self, kind: Kind) -> dict[str, LabelInfo]:
        """Labels the caller sees that could not be restored (their own win a shared one)."""
        return {
            label: info
            for (_, label), info in self._visible(self.info[kind])
            if info.error is not None
        }

    def visible_failed_contexts(self, kind: Kind) -> dict[str, dict[str, str]]:
        """label -> {ctx_label: error} of the caller's (and the shared) unrestored contexts."""
        out: dict[str, dict[str, str]] = {}
        mine = {
            key: value
            for (failed_kind, key), value in self.failed_contexts.items()
            if failed_kind == kind
        }
        for (_, ctx_label), (label, error) in self._visible(mine):
            out.setdefault(label, {})[ctx_label] = error
        return out

    @staticmethod
    def _visible(table: dict[Key, Any]) -> list[tuple[Key, Any]]:
        namespace = scope.namespace()
        items = sorted(table.items(), key=lambda item: item[0][0] is not None)
        return [(key, value) for key, value in items if key[0] in (None, namespace)]

    # --- start-up ---------------------------------------------------------------------------

    def preloaded(self, kind: Kind, plugin: str, label: str, config: Any) -> None:
        self.info[kind][(None, label)] = LabelInfo(plugin, config, preloaded=True)

    async def saved(self) -> tuple[list[SavedLabel], list[SavedContext]]:
        labels = await self._store.fetchall(
            "SELECT owner, kind, label, plugin, config FROM labels ORDER BY seq, owner, kind, label"
        )
        contexts = await self._store.fetchall(
            "SELECT owner, kind, ctx_label, label FROM contexts"
            " ORDER BY seq, owner, kind, ctx_label"
        )
        return (
            [
                SavedLabel(
                    _owner(row["owner"]),
                    row["kind"],
                    row["label"],
                    row["plugin"],
                    orjson.loads(row["config"]),
                )
                for row in labels
                if row["kind"] in KINDS
            ],
            [
                SavedContext(_owner(row["owner"]), row["kind"], row["ctx_label"], row["label"])
                for row in contexts
                if row["kind"] in KINDS
            ],
        )

    def _forget_failed_contexts(self, kind: Kind, label_key: Key) -> None:
        owner, label = label_key
        for key, (of_label, _) in list(self.failed_contexts.items()):
            if key[0] == kind and key[1][0] == owner and of_label == label:
                del self.failed_contexts[key]
