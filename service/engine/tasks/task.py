"""A task: one piece of long work (train, accuracy, score, predict, module run) and its state."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal

Status = Literal["PENDING", "RUNNING", "SUCCESS", "FAILURE", "CANCELLED"]
STATUSES: tuple[Status, ...] = ("PENDING", "RUNNING", "SUCCESS", "FAILURE", "CANCELLED")
FINAL: frozenset[str] = frozenset({"SUCCESS", "FAILURE", "CANCELLED"})
Kind = Literal["train", "accuracy", "score", "predict", "module"]
KINDS: tuple[Kind, ...] = ("train", "accuracy", "score", "predict", "module")
# Set on tasks that were PENDING or RUNNING when the server stopped (or was killed).
INTERRUPTED = "interrupted: the server stopped"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment: datetime.datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z: ``2026-12-02T00:14:28.123456Z``."""
    if moment is None:
        return None
    # Always with microseconds: the stored text then sorts as the time does.
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str | None) -> datetime.datetime | None:
    if text is None:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclasses.dataclass
class Progress:
    done: int = 0
    total: int | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "message": self.message}


@dataclasses.dataclass
class Task:
    task_id: str
    kind: str
    target: str
    status: Status = "PENDING"
    progress: Progress = dataclasses.field(default_factory=Progress)
    created: datetime.datetime = dataclasses.field(default_factory=now)
    started: datetime.datetime | None = None
    finished: datetime.datetime | None = None
    result: Any = None
    error: str | None = None
    # The HTTP status the synchronous route would have answered the error with.
    error_status: int | None = None
    ran_on: str | None = None
    owner: str | None = None

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def location(self) -> str:
        return f"/task/{self.task_id}"

    def to_json(self) -> dict[str, Any]:
        """The task as ``GET /task/{id}`` answers it."""
        return {
            "task_id": self.task_id,
            "kind": self.kind,
            "target": self.target,
            "status": self.status,
            "progress": self.progress.to_json(),
            "created": iso(self.created),
            "started": iso(self.started),
            "finished": iso(self.finished),
            "result": self.result,
            "error": self.error,
            "ran_on": self.ran_on,
        }
