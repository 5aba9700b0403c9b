"""The upload directory: receive a file atomically, list, find and delete files.

Transport-free: the upload handler passes an async iterator of body chunks. Every path a client
names goes through the Sandbox first. A file being received lives under a reserved temporary
name in its target directory (so the final rename stays on one filesystem and is atomic) and
only becomes visible under its real name once complete; those temporary names are never
listed, served or deleted, and are removed whatever ends the upload early.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterable, Callable
from pathlib import Path
from typing import BinaryIO

import aiofiles

from service.kernel import safefs
from service.kernel.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from service.kernel.sandbox import Sandbox, is_temporary, upload_temp_name

__all__ = ["FileEntry", "Saved", "UploadDir", "is_temporary"]


@dataclasses.dataclass(frozen=True)
class FileEntry:
    filename: str
    size: int
    # Seconds since the epoch of the last change (st_mtime).
    modified: float = 0.0


@dataclasses.dataclass(frozen=True)
class Saved:
    size: int
    replaced: bool


class UploadDir:
    def __init__(self, sandbox: Sandbox, *, max_size: int) -> None:
        self.sandbox = sandbox
        self.max_size = max_size

    def target(self, relative: str) -> Path:
        """Where an upload named ``relative`` goes; its directory must already exist."""
        path = self._resolve(relative)
        if is_temporary(path.name):
            raise BadRequest(f"{path.name!r} is a reserved name for uploads in progress")
        if path == self.sandbox.root or path.is_dir():
            raise BadRequest(f"{relative!r} is a directory, not a file name")
        if not path.parent.is_dir():
            parent = self.sandbox.relative(path.parent)
            raise BadRequest(
                f"Directory {parent!r} does not exist in the upload directory "
                "(the server creates no directories)"
            )
        return path

    async def save(
        self, target: Path, chunks: AsyncIterable[bytes], *, overwrite: bool = True
    ) -> Saved:
        """Write ``chunks`` to a temporary file beside ``target``, then rename it into place.

        Over ``max_size`` bytes, on any error, or when the client goes away (cancellation), the
        temporary file is removed and ``target`` is left as it was.
        """
        temp = upload_temp_name()
        # The target's directory, reached without following links, held for the whole upload:
        # the temporary is created in it and renamed within it, so a directory swapped for a
        # symlink meanwhile changes nothing (service/kernel/safefs.py).
        created = asyncio.ensure_future(asyncio.to_thread(_create_temp, target, temp))
        try:
            dir_fd, fd = await asyncio.shield(created)
        except asyncio.CancelledError:
            # The client went away while the thread made the temporary: undo it once made.
            created.add_done_callback(lambda done: _discard(done, temp))
            raise
        size = 0
        try:
            async with aiofiles.open(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_size:
                        raise PayloadTooLarge(
                            f"Upload larger than {self.max_size} bytes (-upload-max-size)"
                        )
                    await out.write(chunk)
                await out.flush()
                # Durable before visible: a crash after the rename must not leave a short file.
                await asyncio.to_thread(os.fsync, out.fileno())
            replaced = await asyncio.to_thread(
                _move_into_place, dir_fd, temp, target.name, overwrite
            )
        except BaseException:
            # Synchronous on purpose: one unlink is quick, and it must also run when this task
            # is being cancelled because the client went away.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=dir_fd)
            raise
        finally:
            os.close(dir_fd)
        return Saved(size, replaced)

    async def listing(self) -> list[FileEntry]:
        root = self.sandbox.root  # the caller's root (users/U/ for user U)
        hides = self.sandbox.hides
        return await asyncio.to_thread(self._walk, root, hides)

    def existing(self, relative: str) -> Path:
        """The regular file ``relative`` names, or NotFound."""
        path = self._resolve(relative)
        if is_temporary(path.name) or not path.is_file():
            raise NotFound(f"File not found: {relative}")
        return path

    async def open(self, relative: str) -> tuple[Path, BinaryIO]:
        """The regular file ``relative`` names, opened for reading without following links."""
        path = self.existing(relative)
        try:
            return path, await asyncio.to_thread(safefs.open_read, path)
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"File not found: {relative}") from None

    async def delete(self, relative: str) -> None:
        path = self.existing(relative)
        try:
            await asyncio.to_thread(safefs.unlink_file, path)
        except FileNotFoundError:
            raise NotFound(f"File not found: {relative}") from None

    def _resolve(self, relative: str) -> Path:
        return self.sandbox.resolve(relative)

    def _walk(self, root: Path, hides: Callable[[Path], bool]) -> list[FileEntry]:
        entries = []
        for directory, dirnames, filenames in os.walk(root):
            # Symlinked directories are not followed: one pointing back up would loop forever.
            dirnames.sort()
            for name in filenames:
                if is_temporary(name):
                    continue
                path = Path(directory, name)
                resolved = path.resolve()
                if not resolved.is_relative_to(root) or not resolved.is_file():
                    continue
                try:
                    stat = resolved.stat()
                except FileNotFoundError:  # deleted while walking
                    continue
                relative = path.relative_to(root)
                if hides(relative):
                    continue
                entries.append(FileEntry(relative.as_posix(), stat.st_size, stat.st_mtime))
        entries.sort(key=lambda entry: entry.filename)
        return entries


def _create_temp(target: Path, temp: str) -> tuple[int, int]:
    """(directory descriptor, descriptor of the new temporary ``temp``) beside ``target``."""
    dir_fd = _directory(target.parent)
    try:
        return dir_fd, safefs.open_file(dir_fd, temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except BaseException:
        os.close(dir_fd)
        raise


def _discard(created: asyncio.Future[tuple[int, int]], temp: str) -> None:
    """Remove and close what ``_create_temp`` made for an upload that was cancelled."""
    if created.cancelled() or created.exception() is not None:
        return
    dir_fd, fd = created.result()
    os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp, dir_fd=dir_fd)
    os.close(dir_fd)


def _directory(path: Path) -> int:
    try:
        return safefs.open_directory(path)
    except (FileNotFoundError, NotADirectoryError):
        raise BadRequest(
            f"Directory {path.name!r} does not exist in the upload directory "
            "(the server creates no directories)"
        ) from None


def _move_into_place(dir_fd: int, temp: str, name: str, overwrite: bool) -> bool:
    """Rename ``temp`` to ``name`` in ``dir_fd``; whether a file was replaced. Refuses when not
    allowed."""
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        existed = True
    except FileNotFoundError:
        existed = False
    if overwrite:
        # A link of that name is replaced itself; nothing is written where it pointed.
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return existed
    try:
        # link() fails when the name exists, so no file appearing meanwhile is clobbered.
        os.link(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        raise Conflict(f"File exists: {name} (upload with ?overwrite=true to replace it)") from None
    os.unlink(temp, dir_fd=dir_fd)
    return False
