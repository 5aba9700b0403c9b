"""The sqlite source's file checks: no link, one name, and the file SQLite opened is the one
checked (docs/security.md#links-are-judged-when-a-file-is-used).

SQLite opens its database (and journals) by name itself, so the file cannot be reached through
a directory descriptor as csv and json files are (service/kernel/safefs.py). Instead it is checked
just before the connection opens it and just after, and a descriptor opened meanwhile must be
the checked file: a directory swapped for a symlink in between makes SQLite open another file,
and no new descriptor is then the checked inode.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from service.kernel import safefs
from service.kernel.errors import BadRequest, PathTraversal

_FD_DIR = "/proc/self/fd"


def check_file(path: Path) -> os.stat_result | None:
    """The database file as it is (None: missing), reached without following links below the
    upload dir: never a link, never a file with other names (a hard link would let reads and
    writes reach a database outside)."""
    name = path.name
    info = safefs.lstat(path)
    if info is None:
        return None
    if safefs.anchor(path) is not None and stat.S_ISLNK(info.st_mode):
        raise PathTraversal(f"{name!r} is a symbolic link (or was replaced by one)")
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        raise BadRequest(
            f"{name} has {info.st_nlink} hard links: a sqlite source must be its database"
            " file's only name (a link could lead out of the upload directory)"
        )
    return info


def inode(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


Descriptors = dict[int, tuple[int, int]]


def descriptors() -> Descriptors | None:
    """Each open descriptor of the process and the file it is (None: /proc cannot be read)."""
    try:
        names = os.listdir(_FD_DIR)
    except OSError:
        return None
    found: Descriptors = {}
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            found[int(name)] = inode(os.fstat(int(name)))
    return found


def opened(before: Descriptors | None, wanted: tuple[int, int]) -> bool:
    """Whether a descriptor opened since ``before`` (a new number, or a number now naming
    another file) is the file ``wanted``. Where descriptors cannot be listed (no /proc), the
    name checks are trusted. Only another thread opening the same file at the same moment
    could make a swapped open pass unnoticed."""
    if before is None:
        return True
    now = descriptors() or {}
    return any(file == wanted and before.get(fd) != file for fd, file in now.items())
