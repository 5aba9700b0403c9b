"""A predict over a whole source, as a task: predictions go to an NDJSON file, not the store.

``outputs/<task-id>/predictions.ndjson`` in the upload dir, one record (as the predict route
writes it) a line, so a million predictions never sit in memory or in the state store; the
task's result names the file and counts the records. The file is written under a temporary
name and renamed once complete, so it is listed only whole; a failed or cancelled task removes
the folder again, and what a killed server left is swept at the next start.

The records are read here (a source lives in the server), a chunk at a time through the
source's own reader, and the model writes each chunk's lines (``ModelContext.predict_lines``):
the built-in models read a file source's chunk as the encoded bytes it already is, predict it
as one array (in the worker processes of ``-executor local`` or on Dask workers, ``ran_on``
naming the worker, as they train there) and splice each prediction into its record's bytes.
Other models predict in the server as the synchronous route does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import IO, Any

from service.engine import models
from service.kernel.errors import Conflict
from service.kernel.jsoncodec import dumps
from service.kernel.sandbox import Sandbox, save_temp_name
from service.sdk import offload
from service.sdk.base import ModelContext, SourceContext
from service.sdk.progress import Reporter
from service.sdk.records import EncodedRecords, Record

OUTPUTS = "outputs"
FILENAME = "predictions.ndjson"
# Records predicted and written at a time (and reported as progress): one array per chunk.
BATCH = 16384


async def predict_to_file(
    *,
    model: ModelContext,
    source: SourceContext,
    sandbox: Sandbox,
    task_id: str,
    reporter: Reporter,
    runner: offload.Runner | None = None,
) -> dict[str, Any]:
    folder = await asyncio.to_thread(_new_folder, sandbox, task_id)
    path = folder / FILENAME
    # Written under a temporary name (never listed nor served, swept at start-up) and renamed
    # once complete: a server killed mid-way leaves no half-written predictions to download.
    partial = folder / save_temp_name(FILENAME)
    count = 0
    try:
        file = await asyncio.to_thread(partial.open, "wb")
        try:
            models.require_trained(model)
            reader = source.reader()
            try:
                with offload.using(runner):
                    more = True
                    while more:
                        chunk, more = await reader.read(BATCH)
                        size = chunk.count if isinstance(chunk, EncodedRecords) else len(chunk)
                        if size:
                            await asyncio.to_thread(file.write, await model.predict_lines(chunk))
                        count += size
                        reporter.progress(count, None, "records predicted")
            finally:
                await reader.aclose()
            await asyncio.to_thread(_flush_to_disk, file)
        finally:
            await asyncio.to_thread(file.close)
        await asyncio.to_thread(os.replace, partial, path)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    reporter.progress(count, count, "records predicted")
    return {"file": sandbox.relative(path), "records": count}


def _flush_to_disk(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())


def _new_folder(sandbox: Sandbox, task_id: str) -> Path:
    outputs = sandbox.resolve(OUTPUTS)
    try:
        outputs.mkdir(exist_ok=True)
    except FileExistsError:
        raise Conflict(
            f"'{OUTPUTS}' in the upload directory is a file; predictions are written into a"
            " directory of that name"
        ) from None
    folder = outputs / task_id
    folder.mkdir()
    return folder


# An async predict of a request body answers its predictions in the task's result, kept in the
# state store and returned by /task and /tasks: beyond this many bytes of JSON they are written
# to a file instead, as predictions over a source are, and the result names it.
INLINE_RESULT_BYTES = 1024 * 1024


async def body_predictions_result(
    predicted: list[Record], sandbox: Sandbox | None, task_id: str
) -> dict[str, Any]:
    """``{"iterkey": None, "records": {…}}`` as the synchronous route answers, or, over
    ``INLINE_RESULT_BYTES`` (with an upload dir), ``{"file", "records": N}``."""
    lines = [dumps(record.export()) + b"\n" for record in predicted]
    if sandbox is None or sum(len(line) for line in lines) <= INLINE_RESULT_BYTES:
        return {"iterkey": None, "records": {r.key: r.export() for r in predicted}}
    folder = await asyncio.to_thread(_new_folder, sandbox, task_id)
    path = folder / FILENAME
    partial = folder / save_temp_name(FILENAME)
    try:
        await asyncio.to_thread(_write_whole, partial, lines)
        await asyncio.to_thread(os.replace, partial, path)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    return {"file": sandbox.relative(path), "records": len(lines)}


def _write_whole(path: Path, lines: list[bytes]) -> None:
    with path.open("wb") as file:
        for line in lines:
            file.write(line)
        _flush_to_disk(file)
