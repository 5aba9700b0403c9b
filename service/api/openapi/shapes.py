"""Schemas and descriptions the core routes' declarations share (path parameters, common errors)."""

from __future__ import annotations

from service.api.openapi.declare import Schema
from service.sdk.base import KINDS

KIND: Schema = {"enum": list(KINDS)}
CHUNK: Schema = {"type": "integer", "minimum": 1}
NO_SOURCE = "No source context of that label is open"
NO_MODEL = "No model context of that label is open"
BUSY = "The source's storage is busy or failing for now (sqlite locked); retry later"
NO_ITERKEY = "The iterkey is unknown, expired, released or belongs to another context"
BAD_CHUNK = "chunk_size is not an integer in range"
NO_UPLOADS = "The server was started without -upload-dir"
FILE_PATH: Schema = {"type": "string", "description": "A path inside the upload directory"}
