"""Users and revoked tokens in the state store (component ``"auth"``): the only SQL of auth."""

from __future__ import annotations

import dataclasses
import json
import time

from service.engine.state import Connection, ConstraintError, StateStore
from service.kernel.users import User

COMPONENT = "auth"
MIGRATIONS = [
    """
    CREATE TABLE auth_users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        admin INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        password_changed REAL NOT NULL
    );
    CREATE TABLE auth_revoked (
        jti TEXT PRIMARY KEY,
        expires REAL NOT NULL
    );
    """,
    # A user's own endpoint rules, a JSON list (users.py).
    "ALTER TABLE auth_users ADD COLUMN rules TEXT NOT NULL DEFAULT '[]';",
    # ACTIVE, DISABLED (no login, no token accepted) or DELETED: a deleted user's row stays, its
    # password hash emptied, so the name (and the users/NAME/ files) never passes to a new account.
    "ALTER TABLE auth_users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';",
]
ACTIVE, DISABLED, DELETED = "active", "disabled", "deleted"


@dataclasses.dataclass(frozen=True)
class Account:
    user: User
    password_hash: str
    password_changed: float
    status: str = ACTIVE


class UserExists(Exception):
    """``args``: the existing name and its status."""


class Accounts:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    @staticmethod
    def register(store: StateStore) -> None:
        store.register_schema(COMPONENT, MIGRATIONS)

    async def get(self, name: str) -> Account | None:
        row = await self.store.fetchone(
            "SELECT name, password_hash, admin, password_changed, rules, status FROM auth_users"
            " WHERE name = ?",
            (name,),
        )
        if row is None:
            return None
        user = User(row[0], admin=bool(row[2]), rules=tuple(json.loads(row[4])))
        return Account(user, row[1], float(row[3]), row[5])

    async def create(self, user: User, password_hash: str) -> None:
        now = time.time()

        def insert(conn: Connection) -> None:
            # "Admin" beside "admin" would read as one user in the audit log; a deleted user's
            # name stays taken (its row is kept).
            same = conn.execute(
                "SELECT name, status FROM auth_users WHERE lower(name) = lower(?)", (user.name,)
            ).fetchone()
            if same is not None:
                raise UserExists(same[0], same[1])
            try:
                conn.execute(
                    "INSERT INTO auth_users"
                    " (name, password_hash, admin, created, password_changed, rules)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (user.name, password_hash, int(user.admin), now, now, json.dumps(user.rules)),
                )
            except ConstraintError:
                raise UserExists(user.name, ACTIVE) from None

        await self.store.transaction(insert)

    async def set_password(self, name: str, password_hash: str) -> float:
        now = time.time()
        await self.store.execute(
            "UPDATE auth_users SET password_hash = ?, password_changed = ? WHERE name = ?",
            (password_hash, now, name),
        )
        return now

    async def set_status(self, name: str, status: str) -> bool:
        """Disable, enable or delete ``name`` (a deleted user stays deleted); False if there is
        no such user or it is deleted already."""

        def update(conn: Connection) -> bool:
            # A deleted user's hash goes too: nothing can ever log in as it again.
            hashed = ", password_hash = ''" if status == DELETED else ""
            cursor = conn.execute(
                f"UPDATE auth_users SET status = ?{hashed} WHERE name = ? AND status != ?",
                (status, name, DELETED),
            )
            return cursor.rowcount == 1

        changed: bool = await self.store.transaction(update)
        return changed

    async def blocked(self) -> set[str]:
        """Users whose tokens are refused: disabled and deleted ones."""
        rows = await self.store.fetchall("SELECT name FROM auth_users WHERE status != ?", (ACTIVE,))
        return {row[0] for row in rows}

    async def count(self) -> int:
        row = await self.store.fetchone("SELECT COUNT(*) FROM auth_users")
        return int(row[0]) if row is not None else 0

    async def revoke(self, jti: str, expires: float) -> None:
        await self.store.execute(
            "INSERT INTO auth_revoked (jti, expires) VALUES (?, ?)"
            " ON CONFLICT (jti) DO UPDATE SET expires = excluded.expires",
            (jti, expires),
        )

    async def revoked(self) -> dict[str, float]:
        """Revocations still in force; the expired ones are deleted."""
        now = time.time()
        await self.store.execute("DELETE FROM auth_revoked WHERE expires < ?", (now - 60,))
        rows = await self.store.fetchall("SELECT jti, expires FROM auth_revoked")
        return {row[0]: float(row[1]) for row in rows}

    async def password_changes(self) -> dict[str, float]:
        rows = await self.store.fetchall("SELECT name, password_changed FROM auth_users")
        return {row[0]: float(row[1]) for row in rows}
