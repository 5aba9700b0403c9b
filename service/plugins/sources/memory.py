"""``memory``: records given in the config, kept in memory; updates last until the label goes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from service.sdk.base import Source, SourceContext
from service.sdk.config import field
from service.sdk.readers import POSITION_BYTES
from service.sdk.records import Record


@dataclasses.dataclass(frozen=True)
class MemorySourceConfig:
    records: dict[str, Any] = field(
        'records by key: {"KEY": {"features": {...}, "extra": {...}}}', default_factory=dict
    )

    def __post_init__(self) -> None:
        for key, value in self.records.items():
            Record.from_json(key, value)


class MemorySource(Source[MemorySourceConfig]):
    CONFIG = MemorySourceConfig

    def __init__(self, config: MemorySourceConfig) -> None:
        super().__init__(config)
        # Shared by every context of this label. ``order`` lists the keys in source order and
        # only grows (an update of a known key keeps its place), so a reader can walk it by
        # position while updates happen, without a copy per reader.
        self.records: dict[str, Record] = {
            key: Record.from_json(key, value) for key, value in config.records.items()
        }
        self.order: list[str] = list(self.records)

    def context(self) -> MemorySourceContext:
        return MemorySourceContext(self)


class MemorySourceContext(SourceContext):
    def __init__(self, parent: MemorySource) -> None:
        self.parent = parent

    async def record(self, key: str) -> Record:
        return self.parent.records.get(key) or Record(key)

    async def records(self) -> AsyncIterator[Record]:
        records, order = self.parent.records, self.parent.order
        position = 0
        while position < len(order):
            yield records[order[position]]
            position += 1

    def reader(self) -> MemoryReader:
        return MemoryReader(self.parent)

    async def update(self, record: Record) -> None:
        if record.key not in self.parent.records:
            self.parent.order.append(record.key)
        self.parent.records[record.key] = record


class MemoryReader:
    """Pages by position in the source's key order: nothing copied, whatever its size."""

    def __init__(self, parent: MemorySource) -> None:
        self._parent = parent
        self._next = 0

    async def read(self, size: int) -> tuple[list[Record], bool]:
        records, order = self._parent.records, self._parent.order
        keys = order[self._next : self._next + size]
        self._next += len(keys)
        return [records[key] for key in keys], self._next < len(order)

    def held_bytes(self) -> int:
        return POSITION_BYTES

    async def aclose(self) -> None:
        self._next = len(self._parent.order)
