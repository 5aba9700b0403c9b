"""Fake plugins: real plugin classes, registered by hand through Registry.register."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Literal

from service.plugins.base import Record, Source, SourceContext
from service.plugins.config import field
from service.plugins.registry import Registry

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


def fake_registry() -> Registry:
    registry = Registry.empty()
    registry.register("source", "fake", FakeSource)
    registry.register("source", "broken", BrokenSource)
    registry.register("source", "exploding", ExplodingSource)
    return registry
