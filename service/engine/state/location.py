"""Where the state lives: ``-state FILE`` or ``-state postgresql://…``, or a default file beside
(never inside) -upload-dir."""

from __future__ import annotations

from pathlib import Path

from service.engine.state.backend import is_url
from service.engine.state.sqlite import MEMORY

SUFFIX = ".state.sqlite3"
# The token signing key sits beside the state file: ./data.state.sqlite3 -> ./data.jwt-key.
KEY_SUFFIX = ".jwt-key"


class StateLocationError(Exception):
    """A -state that would be served by /service/files, or no place for the default."""


def state_path(state: str | None, upload_dir: Path | None) -> str:
    """The database for ``-state`` and ``-upload-dir``: MEMORY, a PostgreSQL URL as given, or
    an absolute file.

    The default for ``-upload-dir ./data`` is ``./data.state.sqlite3``: one per upload dir (the
    labels it keeps name files in that dir), outside it so no client can list or download it.
    Without -upload-dir the default keeps nothing: there is no place the operator chose.
    """
    if state == MEMORY:
        return MEMORY
    if state is not None and is_url(state):
        return state
    if state is None or state == "":
        if upload_dir is None:
            return MEMORY
        base = upload_dir.expanduser().absolute().resolve()
        if base.parent == base:
            raise StateLocationError(
                "-upload-dir is the file system root: give -state FILE for the state store"
            )
        return str(base.with_name(base.name + SUFFIX))
    path = Path(state).expanduser().absolute()
    if upload_dir is not None:
        root = upload_dir.expanduser().absolute().resolve()
        resolved = path.parent.resolve() / path.name
        if resolved == root or resolved.is_relative_to(root):
            raise StateLocationError(
                f"-state {state}: inside -upload-dir, where clients could download or delete it"
            )
    if path.is_dir():
        raise StateLocationError(f"-state {state}: is a directory, not a file")
    return str(path)


def key_path(state: str) -> Path | None:
    """The default -token-key-file for the state path ``state`` (from :func:`state_path`):
    beside it, outside the upload dir like it; None when the state is kept in memory.

    A PostgreSQL state has no file to sit beside, and every host must sign with the same key:
    the operator names it (the same file on every host) or gives it in the environment."""
    if state == MEMORY:
        return None
    if is_url(state):
        raise StateLocationError(
            "-state postgresql://… keeps no key file beside it: give every host the same"
            " -token-key-file FILE (or DFFML_SERVICE_HTTP_SECRET_KEY)"
        )
    path = Path(state)
    stem = path.name.removesuffix(SUFFIX) if path.name.endswith(SUFFIX) else path.name
    return path.with_name(stem + KEY_SUFFIX)
