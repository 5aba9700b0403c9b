"""The sqlite source's file checks: no link, one name, and the file SQLite opened is the one
checked (docs/security.md#links-are-judged-when-a-file-is-used).

SQLite opens its database (and journals) by name itself, so the file cannot be reached through
a directory descriptor as csv and json files are (service/safefs.py). Instead it is checked
just before the connection opens it and just after, and the process's descriptors must include
the checked file once SQLite has opened it: a directory swapped for a symlink in between makes
SQLite open another file, which no descriptor of the checked inode then shows.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from service import safefs
from service.errors import BadRequest, PathTraversal

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


def opened(wanted: tuple[int, int]) -> bool:
    """Whether one of the process's descriptors is the file ``wanted`` (where they cannot be
    listed, Linux's /proc missing, the name checks are trusted). Every descriptor is looked at,
    not only new ones, so a number reused meanwhile never refuses a good open; another label
    holding the same file open is the one case where a swapped open would pass unnoticed."""
    try:
        names = os.listdir(_FD_DIR)
    except OSError:
        return True
    for fd in names:
        with contextlib.suppress(OSError, ValueError):
            if inode(os.fstat(int(fd))) == wanted:
                return True
    return False
