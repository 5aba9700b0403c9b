"""Confine client-supplied paths to the upload directory.

Path semantics, not string prefixes: reject absolute paths, backslashes and NUL bytes, resolve
symlinks and ``..``, then require the result to be ``relative_to`` the resolved root. A sibling
directory sharing the root's prefix (``data`` vs ``data-evil``) is therefore outside.

With ``per_user`` (``-auth token``) the root depends on who asks (service/kernel/scope.py): user U's
is ``users/U/`` inside the directory, so every path U names, uploads, lists or configures stays
relative to, and confined in, U's own root; the operator and admins have the whole directory.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import time
from pathlib import Path, PurePosixPath

from service.kernel import safefs, scope
from service.kernel.errors import BadRequest, Conflict, PathTraversal

log = logging.getLogger(__name__)

# Names of files being written: an upload in progress, a source or model being saved. They
# become visible under their real name by one rename once complete; until then (or for ever,
# after a crash) they are never listed, served or deleted over HTTP, and start-up sweeps them.
_UPLOAD_TEMP = re.compile(r"^\.upload-[0-9a-f]{32}\.part$")
_SAVE_TEMP = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
# Linux's limits on one name and on a whole path, in bytes.
NAME_MAX = 255
PATH_MAX = 4096
# A temporary younger than this is left by the sweep: another server sharing the directory may
# be writing it right now.
SWEEP_MIN_AGE = 60.0


def upload_temp_name() -> str:
    return f".upload-{secrets.token_hex(16)}.part"


def save_temp_name(name: str) -> str:
    """The temporary name beside ``name`` that a save writes before renaming it into place."""
    return f".{name}.{secrets.token_hex(6)}.tmp"


def is_temporary(name: str) -> bool:
    return _UPLOAD_TEMP.match(name) is not None or _SAVE_TEMP.match(name) is not None


def sweep_temporaries(root: Path, *, min_age: float = SWEEP_MIN_AGE) -> list[str]:
    """Remove what a killed server left half-written under ``root``; the names removed.

    Symlinked directories are not followed, and a symlink is never a temporary (it is only
    unlinked if it has a temporary's name, which removes the link, not what it points to).
    """
    removed = []
    cutoff = time.time() - min_age
    for directory, _, filenames in os.walk(root):
        for name in filenames:
            if not is_temporary(name):
                continue
            path = Path(directory, name)
            try:
                if path.lstat().st_mtime > cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path.relative_to(root).as_posix())
    if removed:
        log.warning("removed %d leftover temporary file(s): %s", len(removed), ", ".join(removed))
    return removed


USERS_DIR = "users"


class Sandbox:
    def __init__(self, root: Path, *, per_user: bool = False) -> None:
        self.base = root.resolve()
        # Files below it are opened without following links (service/kernel/safefs.py).
        safefs.register_root(self.base)
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
        # Longer names fail in the OS (ENAMETOOLONG) wherever they are used: refuse them here.
        if len(relative.encode()) > PATH_MAX or any(
            len(part.encode()) > NAME_MAX for part in pure.parts
        ):
            raise BadRequest(
                f"File name too long (at most {NAME_MAX} bytes a name, {PATH_MAX} in all)"
            )
        root = self.root
        # The kernel's bound is on the whole path it is given, the upload dir's own included.
        if len(bytes(root / pure)) >= PATH_MAX:
            raise BadRequest(
                f"File name too long (at most {NAME_MAX} bytes a name, {PATH_MAX} in all)"
            )
        candidate = _resolved(root / pure, relative)
        if not candidate.is_relative_to(root):
            raise PathTraversal()
        return candidate

    def relative(self, path: Path) -> str:
        """How clients name ``path``: relative to the root, with forward slashes."""
        return path.resolve().relative_to(self.root).as_posix()


def _resolved(path: Path, relative: str, *, attempts: int = 3) -> Path:
    """``path`` with its links resolved. A link changing while it is being read (readlink of
    what lstat just called a link fails) is tried again, then refused as a conflict."""
    for _ in range(attempts - 1):
        try:
            return path.resolve()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                break
    try:
        return path.resolve()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathTraversal(f"{relative!r} has a loop of symbolic links") from None
        raise Conflict(
            f"{relative!r} changed while it was being checked ({exc.strerror}); try again"
        ) from None


def require(sandbox: Sandbox | None, what: str) -> Sandbox:
    """The sandbox, or a 400 telling the client the operator must start with -upload-dir."""
    if sandbox is None:
        raise BadRequest(f"{what} needs the server to be started with -upload-dir")
    return sandbox
