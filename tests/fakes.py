"""Fake plugins: real plugin classes, registered by hand through Registry.register."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from service.plugins.registry import Registry
from service.sdk.base import Source, SourceContext
from service.sdk.config import field
from service.sdk.modules import Function, Job, Module, Tag
from service.sdk.records import Record

EVENTS: list[str] = []


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    filename: Path = field("file to read")
    readwrite: bool = field("allow updates", default=False)
    count: int = field("how many", default=3)
    ratio: float = field("a ratio", default=0.5)
    mode: Literal["fast", "slow"] = field("how", default="fast")
    tags: list[str] = field("tags", default_factory=list)
    note: str | None = field("optional note", default=None)


class FakeSource(Source[FakeConfig]):
    CONFIG = FakeConfig

    async def __aenter__(self) -> FakeSource:
        EVENTS.append(f"open {self.config.filename.name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        EVENTS.append(f"close {self.config.filename.name}")

    def context(self) -> FakeSourceContext:
        return FakeSourceContext(self)


class FakeSourceContext(SourceContext):
    def __init__(self, parent: FakeSource) -> None:
        self.parent = parent

    async def __aenter__(self) -> FakeSourceContext:
        EVENTS.append("ctx open")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        EVENTS.append("ctx close")

    async def record(self, key: str) -> Record:
        return Record(key, {"n": self.parent.config.count})

    async def records(self) -> AsyncIterator[Record]:
        for i in range(self.parent.config.count):
            yield Record(str(i), {"n": i})


class BrokenSource(Source[FakeConfig]):
    CONFIG = FakeConfig

    async def __aenter__(self) -> BrokenSource:
        raise FileNotFoundError(2, "No such file or directory")

    def context(self) -> FakeSourceContext:
        raise AssertionError("never opened")


class ExplodingSource(Source[FakeConfig]):
    """A plugin with a bug: opening it raises something no handler expects."""

    CONFIG = FakeConfig

    async def __aenter__(self) -> ExplodingSource:
        raise RuntimeError("secret internals")

    def context(self) -> FakeSourceContext:
        raise AssertionError("never opened")


@dataclasses.dataclass(frozen=True)
class EchoOptions:
    count: int = field("copies of each line")
    mode: Literal["upper", "lower"] = field("case of the copies", default="upper")
    prefix: str | None = field("put before each line", default=None)
    loud: bool = field("add an exclamation mark", default=False)


def echo(job: Job) -> None:
    """Write each input's lines ``count`` times, in the chosen case: real work on real files."""
    options: EchoOptions = job.options
    for source in job.inputs:
        lines = source.path.read_text().splitlines()
        text = "".join(
            f"{options.prefix or ''}{getattr(line, options.mode)()}{'!' if options.loud else ''}\n"
            for line in lines
            for _ in range(options.count)
        )
        job.output(source.path.stem + ".echo.txt", lines=len(lines) * options.count).write_text(
            text
        )
        job.log(f"echoed {source.name}")


def sleep(job: Job) -> None:
    """Record the worker's pid beside the outputs folder, then outlast any time limit."""
    (job.output_dir.parent.parent / "sleeper.pid").write_text(str(os.getpid()))
    time.sleep(120)


def reject(job: Job) -> None:
    raise ValueError("line 3 is not a number")


def crash(job: Job) -> None:
    raise RuntimeError("secret module internals")


def vandal(job: Job) -> None:
    """A broken module that writes its input in place."""
    with job.inputs[0].path.open("a") as file:
        file.write("overwritten\n")


class FakeModule(Module[Any]):
    """A module for tests."""

    TAGLINE = "echo lines"
    FUNCTIONS = (
        Function(
            "echo",
            "repeat lines",
            target=echo,
            options=EchoOptions,
            expected_filetype="txt",
            tags=(Tag("lines", "int"),),
        ),
        Function("sleep", "never ends", target=sleep, expected_filetype="txt"),
        Function("reject", "bad data", target=reject, expected_filetype="txt"),
        Function("crash", "a bug", target=crash, expected_filetype="txt"),
        Function("vandal", "writes its input", target=vandal, expected_filetype="txt"),
    )


def fake_registry() -> Registry:
    registry = Registry.empty()
    registry.register("source", "fake", FakeSource)
    registry.register("source", "broken", BrokenSource)
    registry.register("source", "exploding", ExplodingSource)
    registry.register("module", "fake", FakeModule)
    return registry
