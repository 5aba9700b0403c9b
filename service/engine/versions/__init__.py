"""Model versions and aliases: each training of a model with a ``location`` keeps a numbered,
immutable copy of what it saved; ``{ctx}@{version or alias}`` predicts with one of them.

On disk, beside the model's own file (docs/inference.md#versions)::

    LOCATION/versions/versions.json      {"next", "versions": [...], "aliases": {...}}
    LOCATION/versions/N-FILENAME         the saved model of version N, never rewritten

At most ``keep`` versions stay (``-keep-versions``): the oldest that no alias names go first.
The alias ``latest`` moves with each training; others are set by clients. Only the built-in
models (:class:`TrainableModel`) save files, so only they have versions.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import errno
import re
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson

from service.contexts import ContextStore
from service.kernel import safefs
from service.kernel.errors import BadRequest, InsufficientStorage, NotFound
from service.kernel.jsoncodec import dumps
from service.kernel.sandbox import save_temp_name
from service.plugins.models.trainable import TrainableModel, TrainableModelContext
from service.sdk.base import ModelContext

LATEST = "latest"
MANIFEST = "versions.json"
ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
MAX_ALIASES = 64
# Versions held loaded for ``ctx@N`` at once (each is a fitted model in memory).
LOADED = 8


@dataclasses.dataclass(frozen=True)
class Manifest:
    next: int
    versions: list[dict[str, Any]]
    aliases: dict[str, int]

    def public(self) -> dict[str, Any]:
        return {"versions": self.versions, "aliases": self.aliases}


def _parent(model: ModelContext) -> TrainableModel[Any, Any] | None:
    if isinstance(model, TrainableModelContext) and model.parent.saved_file is not None:
        return model.parent
    return None


def _folder(parent: TrainableModel[Any, Any]) -> Path:
    location: Path | None = parent.config.location
    assert location is not None
    return location / "versions"


def _read(parent: TrainableModel[Any, Any]) -> Manifest:
    try:
        raw = safefs.read_bytes(_folder(parent) / MANIFEST)
    except FileNotFoundError:
        return Manifest(1, [], {})
    except OSError as exc:
        raise BadRequest(f"Cannot read the model's versions: {exc.strerror}") from None
    try:
        data = orjson.loads(raw)
        return Manifest(int(data["next"]), list(data["versions"]), dict(data["aliases"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise BadRequest(f"The model's {MANIFEST} is not one this server wrote") from None


def _write(parent: TrainableModel[Any, Any], manifest: Manifest) -> None:
    path = _folder(parent) / MANIFEST
    body = dumps(dataclasses.asdict(manifest))
    safefs.write_atomically(path, lambda out: out.write(body), save_temp_name(MANIFEST))


class Versions:
    """Every model's versions, read from and written to its location; the loaded ones cached."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._lock = asyncio.Lock()
        # (configured model, version) -> its context; the model is held to compare identity.
        self._loaded: OrderedDict[
            tuple[int, int], tuple[TrainableModel[Any, Any], ModelContext]
        ] = OrderedDict()

    async def kept(self, model: ModelContext, sources: list[str]) -> None:
        """After a training: keep what it saved as the next version (a no-op without location)."""
        parent = _parent(model)
        if parent is None or self.keep == 0:
            return
        async with self._lock:
            try:
                await asyncio.to_thread(self._keep, parent, sources)
            except OSError as exc:
                cls = InsufficientStorage if exc.errno == errno.ENOSPC else BadRequest
                raise cls(
                    f"Trained and saved, but the version could not be kept: {exc.strerror}"
                ) from None

    def _keep(self, parent: TrainableModel[Any, Any], sources: list[str]) -> None:
        saved = parent.saved_file
        assert saved is not None
        data = safefs.read_bytes(saved)
        manifest = _read(parent)
        number = manifest.next
        name = f"{number}-{parent.FILENAME}"
        safefs.write_atomically(
            _folder(parent) / name,
            lambda out: out.write(data),
            save_temp_name(name),
            create_dirs=True,
        )
        trained = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        versions = [
            *manifest.versions,
            {"version": number, "trained": trained, "sources": sources, "score": None},
        ]
        aliases = {**manifest.aliases, LATEST: number}
        named = set(aliases.values())
        while len(versions) > self.keep:
            oldest = next((v for v in versions if v["version"] not in named), None)
            if oldest is None:
                break
            versions.remove(oldest)
            safefs.unlink_file(_folder(parent) / f"{oldest['version']}-{parent.FILENAME}")
        _write(parent, Manifest(number + 1, versions, aliases))

    async def listing(self, model: ModelContext) -> dict[str, Any]:
        parent = _parent(model)
        if parent is None:
            return {"versions": [], "aliases": {}}
        return (await asyncio.to_thread(_read, parent)).public()

    async def alias(self, model: ModelContext, alias: str, version: Any) -> dict[str, Any]:
        if not ALIAS.match(alias) or alias == LATEST:
            raise BadRequest(
                f"Alias {alias!r}: a letter, then letters, digits, '_', '.', '-' (at most 64);"
                f" {LATEST!r} moves by itself"
            )
        if type(version) is not int:
            raise BadRequest('Body must be {"version": N}')
        parent = self._require(model)
        async with self._lock:
            return await asyncio.to_thread(self._alias, parent, alias, version)

    def _alias(self, parent: TrainableModel[Any, Any], alias: str, version: int) -> dict[str, Any]:
        manifest = _read(parent)
        if not any(v["version"] == version for v in manifest.versions):
            raise NotFound(f"No version {version} of this model")
        aliases = {**manifest.aliases, alias: version}
        if len(aliases) > MAX_ALIASES:
            raise BadRequest(f"At most {MAX_ALIASES} aliases per model")
        updated = Manifest(manifest.next, manifest.versions, aliases)
        _write(parent, updated)
        return updated.public()

    def _require(self, model: ModelContext) -> TrainableModel[Any, Any]:
        parent = _parent(model)
        if parent is None:
            raise BadRequest("This model keeps no versions: configure it with a 'location'")
        return parent

    async def version_numbers(self, model: ModelContext) -> list[int]:
        return [v["version"] for v in (await self.listing(model))["versions"]]

    async def pinned(self, model: ModelContext, wanted: str) -> ModelContext:
        """The context that predicts with version ``wanted`` (a number or an alias)."""
        parent = _parent(model)
        if parent is None:
            raise NotFound(
                f"No version {wanted!r} of this model: without a 'location' it keeps none"
            )
        manifest = await asyncio.to_thread(_read, parent)
        number = manifest.aliases.get(wanted)
        if number is None and wanted.isdigit():
            number = int(wanted)
        if number is None or not any(v["version"] == number for v in manifest.versions):
            raise NotFound(f"No version {wanted!r} of this model")
        key = (id(parent), number)
        found = self._loaded.get(key)
        if found is not None and found[0] is parent:
            self._loaded.move_to_end(key)
            return found[1]
        path = _folder(parent) / f"{number}-{parent.FILENAME}"
        state = await asyncio.to_thread(_load, parent, path)
        # The configured model, with this version's fitted state in place of the current one.
        frozen = copy.copy(parent)
        frozen.state = state
        context = frozen.context()
        self._loaded[key] = (parent, context)
        while len(self._loaded) > LOADED:
            self._loaded.popitem(last=False)
        return context


def _load(parent: TrainableModel[Any, Any], path: Path) -> Any:
    found = parent.read_state(path, "Version file")
    if found is None:
        raise NotFound(f"Version file {path.name} is gone")
    state, signature = found
    if signature != parent.signature():
        raise BadRequest(f"Version file {path.name} was saved with another configuration")
    return state


def split(label: str) -> tuple[str, str | None]:
    """``salary@2`` -> (``salary``, ``2``); a label without ``@`` is itself."""
    base, at, version = label.rpartition("@")
    if not at or not base or not version:
        return label, None
    return base, version


async def model(store: ContextStore, versions: Versions, label: str) -> ModelContext:
    """The model context a predict, score or infer names: ``ctx`` or ``ctx@version``.

    A context whose own label holds ``@`` is found first, so no existing label changes meaning.
    """
    try:
        return store.model(label)
    except NotFound:
        base, version = split(label)
        if version is None:
            raise
    return await versions.pinned(store.model(base), version)
