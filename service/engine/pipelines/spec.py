"""JSON schemas of pipelines, runs and jobs for the OpenAPI contract (docs/pipelines.md)."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING_OR_NULL: Schema = {"type": ["string", "null"]}
TASK: Schema = {
    "type": "object",
    "properties": {
        "module": {"type": "string", "minLength": 1},
        "function": {"type": "string", "minLength": 1},
        "options": {"type": "object"},
    },
    "required": ["module", "function"],
    "additionalProperties": False,
}
PIPELINE: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "tasks": {"type": "array", "items": TASK},
        "created": {"type": "string"},
    },
    "required": ["id", "name", "tasks", "created"],
}
PIPELINE_BODY: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "tasks": {"type": "array", "items": TASK, "minItems": 1, "maxItems": 50},
    },
    "required": ["name", "tasks"],
    "additionalProperties": False,
}
JOB: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "run": {"type": "string"},
        "task": {"type": "integer", "minimum": 0},
        "function": {"type": "string"},
        "status": {"enum": ["PENDING", "QUEUED", "RUNNING", "FINISHED", "FAILED", "CANCELLED"]},
        "input_files": {"type": "array", "items": {"type": "string"}},
        "output_files": {"type": "array", "items": {"type": "object"}},
        "logs": {"type": "array", "items": {"type": "string"}},
        "started": STRING_OR_NULL,
        "finished": STRING_OR_NULL,
        "ran_on": STRING_OR_NULL,
        "error": STRING_OR_NULL,
    },
    "required": ["id", "run", "task", "function", "status", "output_files", "logs", "ran_on"],
}
RUN: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "pipeline": {"type": "string"},
        "files": {"type": "array", "items": {"type": "string"}},
        "status": {"enum": ["PENDING", "RUNNING", "FINISHED", "FAILED", "CANCELLED"]},
        "created": {"type": "string"},
        "started": STRING_OR_NULL,
        "finished": STRING_OR_NULL,
        "error": STRING_OR_NULL,
        "jobs": {"type": "array", "items": JOB},
    },
    "required": ["id", "pipeline", "files", "status", "jobs"],
}
RUN_BODY: Schema = {
    "type": "object",
    "properties": {
        "pipeline": {"type": "string", "minLength": 1},
        "files": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1000},
    },
    "required": ["pipeline", "files"],
    "additionalProperties": False,
}
PAGE: Schema = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
    "offset": {"type": "integer", "minimum": 0},
}
