"""Confine client-supplied paths to the upload directory.

Path semantics, not string prefixes: reject absolute paths, backslashes and NUL bytes, resolve
symlinks and ``..``, then require the result to be ``relative_to`` the resolved root. A sibling
directory sharing the root's prefix (``data`` vs ``data-evil``) is therefore outside.

With ``per_user`` (``-auth token``) the root depends on who asks (service/auth/scope.py): user U's
is ``users/U/`` inside the directory, so every path U names, uploads, lists or configures stays
relative to, and confined in, U's own root; the operator and admins have the whole directory.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from service.auth import scope
from service.errors import BadRequest, PathTraversal

USERS_DIR = "users"


class Sandbox:
    def __init__(self, root: Path, *, per_user: bool = False) -> None:
        self.base = root.resolve()
        self.per_user = per_user
        self._made: set[str] = set()

    @property
    def root(self) -> Path:
        """The caller's root: the whole directory, or users/U/ for user U (made on first use)."""
        namespace = scope.namespace() if self.per_user else None
        if namespace is None:
            return self.base
        root = self.base / USERS_DIR / namespace
        if namespace not in self._made:
            # One mkdir per user per process: too small to be worth a thread hop.
            root.mkdir(parents=True, exist_ok=True)
            self._made.add(namespace)
        return root

    def hides(self, relative: Path) -> bool:
        """Whether a listing of the whole directory leaves ``relative`` out: the users' files,
        unless an admin asked for everything (``?all=1``)."""
        return (
            self.per_user
            and scope.namespace() is None
            and not scope.current().see_all
            and relative.parts[:1] == (USERS_DIR,)
        )

    def resolve(self, relative: str) -> Path:
        """The absolute path ``relative`` names inside the root, or PathTraversal."""
        if not relative or "\x00" in relative or "\\" in relative:
            raise PathTraversal()
        pure = PurePosixPath(relative)
        if pure.is_absolute():
            raise PathTraversal()
        root = self.root
        candidate = (root / pure).resolve()
        if not candidate.is_relative_to(root):
            raise PathTraversal()
        return candidate

    def relative(self, path: Path) -> str:
        """How clients name ``path``: relative to the root, with forward slashes."""
        return path.resolve().relative_to(self.root).as_posix()


def require(sandbox: Sandbox | None, what: str) -> Sandbox:
    """The sandbox, or a 400 telling the client the operator must start with -upload-dir."""
    if sandbox is None:
        raise BadRequest(f"{what} needs the server to be started with -upload-dir")
    return sandbox
