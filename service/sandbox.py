"""Confine client-supplied paths to the upload directory.

Path semantics, not string prefixes: reject absolute paths, backslashes and NUL bytes, resolve
symlinks and ``..``, then require the result to be ``relative_to`` the resolved root. A sibling
directory sharing the root's prefix (``data`` vs ``data-evil``) is therefore outside.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from service.errors import BadRequest, PathTraversal


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, relative: str) -> Path:
        """The absolute path ``relative`` names inside the root, or PathTraversal."""
        if not relative or "\x00" in relative or "\\" in relative:
            raise PathTraversal()
        pure = PurePosixPath(relative)
        if pure.is_absolute():
            raise PathTraversal()
        candidate = (self.root / pure).resolve()
        if not candidate.is_relative_to(self.root):
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
