"""A predict over a whole source, as a task: predictions go to an NDJSON file, not the store.

``outputs/<task-id>/predictions.ndjson`` in the upload dir, one record (as the predict route
writes it) a line, so a million predictions never sit in memory or in the state store; the
task's result names the file and counts the records. A failed or cancelled task removes the
folder again.

The records are read here (a source lives in the server), a chunk at a time through the
source's own reader, and the model writes each chunk's lines (``ModelContext.predict_lines``):
the built-in models read a file source's chunk as the encoded bytes it already is, predict it
as one array (in the worker processes of ``-executor local`` or on Dask workers, ``ran_on``
naming the worker, as they train there) and splice each prediction into its record's bytes.
Other models predict in the server as the synchronous route does.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from service.engine import models
from service.kernel.errors import Conflict
from service.kernel.sandbox import Sandbox
from service.sdk import offload
from service.sdk.base import ModelContext, SourceContext
from service.sdk.progress import Reporter
from service.sdk.records import EncodedRecords

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
    count = 0
    try:
        file = await asyncio.to_thread(path.open, "wb")
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
            await asyncio.to_thread(file.flush)
        finally:
            await asyncio.to_thread(file.close)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    reporter.progress(count, count, "records predicted")
    return {"file": sandbox.relative(path), "records": count}


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
