"""Use files in the upload directory without following links, whatever changes meanwhile.

``Sandbox.resolve`` judges a path when the request arrives: it resolves links and requires the
result inside the root. Between that check and the moment the file is read or written, a local
user who can write in the upload directory could swap a directory for a symlink leading out.
So every file the server reads, writes, renames or deletes there is reached from a directory
descriptor (``openat`` semantics through ``os.open(..., dir_fd=...)``): the root is opened (it
is the operator's, links and all), then each component below it with ``O_DIRECTORY |
O_NOFOLLOW``, and the file itself with ``O_NOFOLLOW``. Because ``Sandbox.resolve`` hands out
paths with every link already resolved, a link met on the way can only be one made after the
check: it is refused, ``400 Attempted path traversal: ...``, and nothing is read or written
through it. A temporary file and the rename that puts it in place use the same directory
descriptor, so the rename cannot land anywhere but where the temporary was written.

Roots are registered by each ``Sandbox`` (and passed to worker processes that save models).
A path under no registered root (an operator's preload naming any file) is opened as before.
Everything here blocks: callers run it in a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from service.kernel.errors import BadRequest, PathTraversal

_ROOTS: set[Path] = set()
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LINKED = (errno.ELOOP, errno.EMLINK)


def register_root(root: Path) -> None:
    """Files below ``root`` (an absolute path with its links resolved) are opened link-free."""
    _ROOTS.add(root)


def register_roots(roots: Iterable[Path]) -> None:
    for root in roots:
        register_root(root)


def roots() -> tuple[Path, ...]:
    return tuple(_ROOTS)


def anchor(path: Path) -> Path | None:
    """The registered root ``path`` lies in (the deepest one), or None."""
    found = [root for root in _ROOTS if path == root or path.is_relative_to(root)]
    return max(found, key=lambda root: len(root.parts)) if found else None


def _changed(what: str) -> PathTraversal:
    return PathTraversal(f"{what} is a symbolic link (or was replaced by one while in use)")


def _step(fd: int, part: str, *, create: bool) -> int:
    """Open directory ``part`` of directory ``fd`` without following a link; closes ``fd``."""
    try:
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
            return os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno in _LINKED or (exc.errno == errno.ENOTDIR and _is_link(fd, part)):
                raise _changed(repr(part)) from None
            if exc.errno == errno.ENOTDIR:
                # A file, or a link swapped back already: either way not what was checked.
                raise BadRequest(
                    f"{part!r} is not a directory (or was replaced while in use)"
                ) from None
            raise
    finally:
        os.close(fd)


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_directory(path: Path, *, create: bool = False) -> int:
    """A descriptor of directory ``path``, reached without following links below its root
    (``create``: missing directories are made on the way). The caller closes it."""
    root = anchor(path)
    if root is None:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in path.relative_to(root).parts:
        fd = _step(fd, part, create=create)
    return fd


@contextlib.contextmanager
def directory(path: Path, *, create: bool = False) -> Iterator[int]:
    fd = open_directory(path, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def open_file(dir_fd: int, name: str, flags: int, mode: int = 0o666) -> int:
    """``name`` in ``dir_fd`` opened with ``flags``, never through a link."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _LINKED:
            raise _changed(repr(name)) from None
        raise


def open_read(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (never a link, FIFO or device)."""
    # O_NONBLOCK: opening a FIFO someone planted must not hang the thread.
    flags = os.O_RDONLY | os.O_NONBLOCK
    if anchor(path) is None:  # the operator's file: links are theirs to use
        fd = os.open(path, flags | os.O_CLOEXEC)
    else:
        with directory(path.parent) as dir_fd:
            fd = open_file(dir_fd, path.name, flags)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path.name)
        if not stat.S_ISREG(info.st_mode):
            raise BadRequest(f"{path.name} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path) -> bytes:
    with open_read(path) as file:
        return file.read()


def lstat(path: Path) -> os.stat_result | None:
    """What ``path`` itself is (a link is not followed), or None when it does not exist."""
    try:
        with directory(path.parent) as dir_fd:
            return os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def write_atomically(
    path: Path,
    write: Callable[[BinaryIO], object],
    temp_name: str,
    *,
    create_dirs: bool = False,
    before_replace: Callable[[int, str], None] | None = None,
) -> os.stat_result:
    """Write a temporary beside ``path`` with ``write``, flush it to disk, then rename it over
    ``path`` (in the same directory descriptor); the written file's stat.

    ``before_replace(dir_fd, name)`` may refuse at the last moment (raise). On any failure the
    temporary is removed and ``path`` is left as it was.
    """
    with directory(path.parent, create=create_dirs) as dir_fd:
        fd = open_file(dir_fd, temp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
                written = os.fstat(out.fileno())
            if before_replace is not None:
                before_replace(dir_fd, path.name)
            os.replace(temp_name, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name, dir_fd=dir_fd)
            raise
    return written


def probe_writable(directory_path: Path, temp_name: str) -> None:
    """Create and remove a temporary in ``directory_path``: OSError when a save there fails."""
    with directory(directory_path) as dir_fd:
        os.close(open_file(dir_fd, temp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        os.unlink(temp_name, dir_fd=dir_fd)


def unlink_file(path: Path) -> None:
    """Remove the regular file (or link) ``path`` names; FileNotFoundError for anything else."""
    with directory(path.parent) as dir_fd:
        info = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            raise FileNotFoundError(errno.ENOENT, "not a file", path.name)
        os.unlink(path.name, dir_fd=dir_fd)


def identity(info: os.stat_result | None) -> tuple[int, int, int, int] | None:
    """What tells one version of a file from another: device, inode, size, mtime."""
    if info is None:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
