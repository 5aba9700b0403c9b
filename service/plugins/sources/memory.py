"""``memory``: records given in the config, kept in memory; updates last until the label goes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from service.plugins.base import Record, Source, SourceContext
from service.plugins.config import field


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
        # Shared by every context of this label, in insertion (source) order.
        self.records: dict[str, Record] = {
            key: Record.from_json(key, value) for key, value in config.records.items()
        }

    def context(self) -> MemorySourceContext:
        return MemorySourceContext(self)


class MemorySourceContext(SourceContext):
    def __init__(self, parent: MemorySource) -> None:
        self.parent = parent

    async def record(self, key: str) -> Record:
        return self.parent.records.get(key) or Record(key)

    async def records(self) -> AsyncIterator[Record]:
        # A snapshot, so updates during iteration cannot break it.
        for record in list(self.parent.records.values()):
            yield record

    async def update(self, record: Record) -> None:
        self.parent.records[record.key] = record
