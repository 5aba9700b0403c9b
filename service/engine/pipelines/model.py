"""Pipelines, runs and jobs as the API shows them."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal

RunStatus = Literal["PENDING", "RUNNING", "FINISHED", "FAILED", "CANCELLED"]
JobStatus = Literal["PENDING", "QUEUED", "RUNNING", "FINISHED", "FAILED", "CANCELLED"]
FINAL: frozenset[str] = frozenset({"FINISHED", "FAILED", "CANCELLED"})
INTERRUPTED = "interrupted: the server stopped"


def now() -> str:
    """UTC, ISO 8601 with milliseconds: sortable as text."""
    stamp = datetime.datetime.now(datetime.timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True)
class Task:
    """One step of a pipeline: a function of an open module context, with its options."""

    module: str
    function: str
    options: dict[str, Any]

    def export(self) -> dict[str, Any]:
        return {"module": self.module, "function": self.function, "options": self.options}


@dataclasses.dataclass(frozen=True)
class Pipeline:
    id: str
    name: str
    tasks: tuple[Task, ...]
    created: str

    def export(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "tasks": [task.export() for task in self.tasks],
            "created": self.created,
        }


@dataclasses.dataclass
class Job:
    id: str
    run: str
    task: int
    function: str
    status: JobStatus = "PENDING"
    output_files: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    logs: list[str] = dataclasses.field(default_factory=list)
    inputs: list[str] = dataclasses.field(default_factory=list)
    started: str | None = None
    finished: str | None = None
    ran_on: str | None = None
    error: str | None = None

    def export(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run": self.run,
            "task": self.task,
            "function": self.function,
            "status": self.status,
            "input_files": self.inputs,
            "output_files": self.output_files,
            "logs": self.logs,
            "started": self.started,
            "finished": self.finished,
            "ran_on": self.ran_on,
            "error": self.error,
        }


@dataclasses.dataclass
class Run:
    id: str
    pipeline: str
    files: list[str]
    tasks: tuple[Task, ...]
    status: RunStatus
    created: str
    jobs: list[Job]
    started: str | None = None
    finished: str | None = None
    error: str | None = None

    def export(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "files": self.files,
            "status": self.status,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
            "jobs": [job.export() for job in self.jobs],
        }
