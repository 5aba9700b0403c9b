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
]


@dataclasses.dataclass(frozen=True)
class Account:
    user: User
    password_hash: str
    password_changed: float


class UserExists(Exception):
    pass


class Accounts:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    @staticmethod
    def register(store: StateStore) -> None:
        store.register_schema(COMPONENT, MIGRATIONS)

    async def get(self, name: str) -> Account | None:
        row = await self.store.fetchone(
            "SELECT name, password_hash, admin, password_changed, rules FROM auth_users"
            " WHERE name = ?",
            (name,),
        )
        if row is None:
            return None
        user = User(row[0], admin=bool(row[2]), rules=tuple(json.loads(row[4])))
        return Account(user, row[1], float(row[3]))

    async def create(self, user: User, password_hash: str) -> None:
        now = time.time()

        def insert(conn: Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO auth_users"
                    " (name, password_hash, admin, created, password_changed, rules)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (user.name, password_hash, int(user.admin), now, now, json.dumps(user.rules)),
                )
            except ConstraintError:
                raise UserExists(user.name) from None

        await self.store.transaction(insert)

    async def set_password(self, name: str, password_hash: str) -> float:
        now = time.time()
        await self.store.execute(
            "UPDATE auth_users SET password_hash = ?, password_changed = ? WHERE name = ?",
            (password_hash, now, name),
        )
        return now

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
