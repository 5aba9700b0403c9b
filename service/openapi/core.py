"""Declarations of the core routes (the DFFML API), kept here so their handlers stay as they are.

New routes declare themselves with ``@operation`` beside their handler instead; this table is
for handlers that predate the spec. Statuses listed are the ones each handler (or what it
calls) raises; the generator adds the envelope, 400/413 for JSON bodies and the common ones.
"""

from __future__ import annotations

from service.handlers import models, modules, plugins, scorers, sources, uploads
from service.openapi.declare import OK_SCHEMA, Body, Operation, Response, document
from service.openapi.schemas import configure_body, configure_variants, ref
from service.plugins.base import KINDS

KIND = {"enum": list(KINDS)}
CHUNK = {"type": "integer", "minimum": 1}
NO_SOURCE = "No source context of that label is open"
NO_MODEL = "No model context of that label is open"
BUSY = "The source's storage is busy or failing for now (sqlite locked); retry later"
NO_ITERKEY = "The iterkey is unknown, expired, released or belongs to another context"
BAD_CHUNK = "chunk_size is not an integer in range"
NO_UPLOADS = "The server was started without -upload-dir"
FILE_PATH = {"type": "string", "description": "A path inside the upload directory"}

document(
    plugins.list_plugins,
    Operation(
        "List installed plugins of a kind with their config options",
        tags=("plugins",),
        params={"kinds": {"enum": [kind + "s" for kind in KINDS]}},
        responses={
            200: {"type": "object", "additionalProperties": {"type": "object"}},
            404: "Unknown plugin kind",
        },
    ),
)
document(
    plugins.configure,
    Operation(
        "Configure a plugin under a label (replacing the label's previous plugin)",
        tags=("plugins",),
        description=(
            "The body is the plugin's config, flat ({field: value}) or in DFFML's nested form. "
            "Each installed plugin also has its own path below, with its own body schema."
        ),
        params={"kind": KIND},
        body=configure_body,
        variants=configure_variants,
        responses={
            200: OK_SCHEMA,
            400: "The config does not fit the plugin, or the plugin failed to open",
            404: "Unknown kind or plugin",
            409: "Too many labels (-max-labels), another label already holds the file"
            " read-write, or the label being replaced could not save",
            507: "The label being replaced could not save its updates (it is kept)",
        },
    ),
)
document(
    plugins.release_plugin,
    Operation(
        "Release a configured label and every context opened from it",
        tags=("plugins",),
        params={"kind": KIND},
        query={"discard": {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}},
        responses={
            200: OK_SCHEMA,
            400: "Saving the read-write source reached a symbolic link; the label is kept",
            404: "No such label",
            409: "The read-write source's file changed on disk; the label is kept",
            507: "Saving the read-write source failed; the label and its updates are kept",
        },
    ),
)
document(
    plugins.open_context,
    Operation(
        "Open a context of a configured label (replacing one of the same context label)",
        tags=("plugins",),
        params={"kind": KIND},
        responses={
            200: OK_SCHEMA,
            400: "The plugin failed to open a context",
            404: "No such label",
        },
    ),
)
document(
    plugins.release_context,
    Operation(
        "Close a context",
        tags=("plugins",),
        params={"kind": KIND},
        responses={
            200: OK_SCHEMA,
            400: "Closed, but saving the read-write source reached a symbolic link",
            404: "No context of that label is open",
            409: "Closed, but the read-write source's file changed on disk: not saved",
            507: "Closed, but saving the read-write source failed (its updates are kept)",
        },
    ),
)
document(
    uploads.upload,
    Operation(
        "Upload a file into the upload directory (multipart field 'file')",
        tags=("files",),
        params={"path": FILE_PATH},
        query={"overwrite": {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}},
        body=Body(
            {
                "multipart/form-data": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "contentMediaType": "application/octet-stream"}
                    },
                    "required": ["file"],
                }
            }
        ),
        responses={
            200: Response(
                "Saved (new or replacing a file of that name)", {"application/json": OK_SCHEMA}
            ),
            400: "No 'file' field, a bad path or a bad overwrite flag",
            408: "The upload received nothing for -upload-idle-timeout seconds",
            409: "The file exists and overwrite=false, or it is being uploaded right now",
            501: NO_UPLOADS,
        },
    ),
)
document(
    uploads.list_files,
    Operation(
        "List the files in the upload directory",
        tags=("files",),
        responses={
            200: {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "filename": {"type": "string"},
                        "size": {"type": "integer", "minimum": 0},
                    },
                    "required": ["filename", "size"],
                },
            },
            501: NO_UPLOADS,
        },
    ),
)
document(
    uploads.download,
    Operation(
        "Download a file of the upload directory",
        tags=("files",),
        params={"path": FILE_PATH},
        responses={
            200: Response("The file", {"application/octet-stream": {}}),
            400: "The path leaves the upload directory",
            404: "File not found",
            501: NO_UPLOADS,
        },
    ),
)
document(
    uploads.delete,
    Operation(
        "Delete a file of the upload directory",
        tags=("files",),
        params={"path": FILE_PATH},
        responses={
            200: OK_SCHEMA,
            400: "The path leaves the upload directory or names a directory",
            404: "File not found",
            501: NO_UPLOADS,
        },
    ),
)
document(
    sources.record,
    Operation(
        "One record of a source context (a missing record is just its key)",
        tags=("sources",),
        responses={200: ref("Record"), 404: NO_SOURCE, 503: BUSY},
    ),
)
document(
    sources.update,
    Operation(
        "Create or replace one record",
        tags=("sources",),
        body=Body.json(ref("RecordIn")),
        responses={
            200: OK_SCHEMA,
            400: "Not a record, the source is read-only, or a feature a csv file cannot keep",
            404: NO_SOURCE,
            409: "The read-write source's file changed on disk since it was read",
            503: BUSY,
            507: "The -spool-max-bytes budget is spent, or the last save failed and still fails",
        },
    ),
)
document(
    sources.records_stream,
    Operation(
        "Every record, streamed as NDJSON (one JSON record a line)",
        tags=("sources",),
        responses={
            200: Response("One record a line", {"application/x-ndjson": {"type": "string"}}),
            404: NO_SOURCE,
            406: "The Accept header rules out application/x-ndjson",
            503: BUSY,
        },
    ),
)
document(
    sources.records_first,
    Operation(
        "The first chunk of records and an iterkey for the rest",
        tags=("sources",),
        params={"chunk_size": CHUNK},
        responses={200: ref("RecordPage"), 400: BAD_CHUNK, 404: NO_SOURCE, 503: BUSY},
    ),
)
document(
    sources.records_next,
    Operation(
        "The next chunk of records of an iterkey",
        tags=("sources",),
        params={"chunk_size": CHUNK},
        responses={200: ref("RecordPage"), 400: BAD_CHUNK, 404: NO_ITERKEY, 503: BUSY},
    ),
)
document(
    sources.records_release,
    Operation(
        "Release an iterkey before it expires",
        tags=("sources",),
        responses={200: OK_SCHEMA, 404: NO_ITERKEY},
    ),
)
document(
    models.train,
    Operation(
        "Train a model context on the records of source contexts",
        tags=("models",),
        body=Body.json(ref("SourceLabels")),
        responses={200: OK_SCHEMA, 400: "The records do not fit the model", 404: NO_SOURCE},
    ),
)
document(
    models.accuracy,
    Operation(
        "Score a model with its own natural scorer (the PyPI release's route)",
        tags=("models",),
        body=Body.json(ref("SourceLabels")),
        responses={200: ref("Accuracy"), 400: "Model not trained", 404: NO_SOURCE},
    ),
)
document(
    models.predict,
    Operation(
        "Predict the body's records, or every record of ?source=; chunk_size 0: all at once",
        tags=("models",),
        params={"chunk_size": {"type": "integer", "minimum": 0}},
        query={"source": {"type": "string", "description": "A source context to predict"}},
        body=Body.json(
            {"type": "object", "additionalProperties": ref("RecordIn")},
            required=False,
            description="{key: record} to predict; leave it out with ?source=",
        ),
        responses={
            200: ref("RecordPage"),
            400: "Model not trained, or records that do not fit it",
            404: NO_MODEL,
        },
    ),
)
document(
    models.predict_next,
    Operation(
        "The next chunk of predictions of an iterkey",
        tags=("models",),
        params={"chunk_size": CHUNK},
        responses={200: ref("RecordPage"), 400: BAD_CHUNK, 404: NO_ITERKEY},
    ),
)
document(
    models.predict_release,
    Operation(
        "Release a predictions iterkey",
        tags=("models",),
        responses={200: OK_SCHEMA, 404: NO_ITERKEY},
    ),
)
document(
    scorers.score,
    Operation(
        "Score a model context with a scorer context over source contexts",
        tags=("scorers",),
        body=Body.json(ref("SourceLabels")),
        responses={
            200: ref("Accuracy"),
            400: "Model not trained, or records the scorer cannot use",
            404: "No such scorer, model or source context",
        },
    ),
)
document(
    modules.run,
    Operation(
        "Run a function of a module context over files of the upload directory",
        tags=("modules",),
        body=Body.json(
            {
                "type": "object",
                "properties": {
                    "files": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "options": {"type": "object"},
                },
                "required": ["files"],
                "additionalProperties": False,
            }
        ),
        responses={
            200: {
                "type": "object",
                "properties": {
                    "run": {"type": "string"},
                    "function": {"type": "string"},
                    "output_dir": {"type": "string"},
                    "files": {"type": "array", "items": {"type": "object"}},
                    "logs": {"type": "array"},
                },
                "required": ["run", "function", "output_dir", "files"],
            },
            400: "Bad options, or input files that are missing or of the wrong type",
            404: "No such module context or function",
            409: "'outputs' in the upload directory is a file",
            501: NO_UPLOADS,
            503: "The server is shutting down",
            504: "The function exceeded -module-timeout and was stopped",
        },
    ),
)
