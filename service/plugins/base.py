"""The contracts plugin authors implement.

Every plugin is a class with a ``CONFIG`` dataclass (see :mod:`service.plugins.config`) and an
async ``context()``: the server configures a plugin under a label (``Plugin(config)``, entered
with ``async with``) and then opens contexts of it under context labels. Plugins never see
aiohttp; they raise :class:`service.errors.ServiceError` subclasses for bad input.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, TypeVar

import orjson

from service.errors import BadRequest, NotFound
from service.plugins import progress as plugin_progress
from service.plugins.config import EmptyConfig, FieldSpec
from service.plugins.config import fields_of as config_fields
from service.streaming import IteratorReader, Reader

Kind = Literal["source", "model", "scorer", "module"]
KINDS: tuple[Kind, ...] = ("source", "model", "scorer", "module")

ConfigT = TypeVar("ConfigT")
SelfT = TypeVar("SelfT", bound="AsyncResource")
ResultT = TypeVar("ResultT")


class AsyncResource:
    """Something opened with ``async with`` and closed exactly once by the server."""

    async def __aenter__(self: SelfT) -> SelfT:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class Plugin(AsyncResource, Generic[ConfigT]):
    """A configured plugin. ``KIND`` is set by each kind's base class below."""

    KIND: ClassVar[Kind]
    CONFIG: ClassVar[type] = EmptyConfig

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    @abstractmethod
    def context(self) -> AsyncResource:
        """A new context of this plugin; the server enters and exits it."""

    async def flush(self, *, discard: bool = False) -> None:
        """Write what is not saved yet, raising a ServiceError the client is told when that
        fails (the server calls it before releasing or replacing the label, which is kept
        then); ``discard``: drop what is unsaved instead. Nothing to do by default."""

    def claims(self) -> Path | None:
        """A file this plugin alone may write (a read-write csv or json source's): the server
        refuses a second label claiming the same file. None by default."""
        return None

    @classmethod
    def listing_extra(cls) -> dict[str, Any]:
        """Sections added beside the DFFML config shape in ``/list`` (modules add functions)."""
        return {}


@dataclasses.dataclass(slots=True)
class Record:
    """A keyed set of features, as DFFML's HTTP API writes it."""

    key: str
    features: dict[str, Any] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    prediction: dict[str, Any] | None = None
    last_updated: str | None = None

    def export(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "features": self.features, "extra": self.extra}
        if self.prediction is not None:
            out["prediction"] = self.prediction
        if self.last_updated is not None:
            out["last_updated"] = self.last_updated
        return out

    @classmethod
    def from_export(cls, value: dict[str, Any]) -> Record:
        """A record as ``export()`` wrote it (trusted: the server encoded it)."""
        return cls(
            key=value["key"],
            features=value.get("features", {}),
            extra=value.get("extra", {}),
            prediction=value.get("prediction"),
            last_updated=value.get("last_updated"),
        )

    @classmethod
    def from_json(cls, key: str, body: Any) -> Record:
        """A record from a client's JSON; the key in the URL wins over one in the body."""
        if not isinstance(body, dict):
            raise BadRequest(f"Record {key!r} must be a JSON object")
        features = body.get("features", {})
        extra = body.get("extra", {})
        if not isinstance(features, dict):
            raise BadRequest(f"Record {key!r} 'features' must be an object")
        if not isinstance(extra, dict):
            raise BadRequest(f"Record {key!r} 'extra' must be an object")
        for name, part in (("features", features), ("extra", extra)):
            if too_deep(part, MAX_NESTING):
                raise BadRequest(
                    f"Record {key!r} {name!r} nests lists and objects deeper than"
                    f" {MAX_NESTING} levels"
                )
        return cls(key=key, features=features, extra=extra)


# Deepest nesting of lists and objects a stored record may hold: the JSON encoder refuses
# deeper (orjson's limit is 254), so a deeper record could be stored but never served again.
MAX_NESTING = 200


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and dicts more than ``limit`` levels (iteratively: no
    recursion limit of Python's to hit either)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


# --- sources -------------------------------------------------------------------------------


_ENCODE_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class EncodedRecords:
    """Records a source has already encoded for the wire, so serving them is copying bytes.

    ``rows`` holds one line per record, ``"KEY":{record}`` (orjson escapes every newline
    inside strings, so the newline ends a record unambiguously).
    """

    __slots__ = ("count", "rows")

    def __init__(self, rows: bytes, count: int) -> None:
        self.rows = rows
        self.count = count

    @staticmethod
    def encode_row(record: Record) -> bytes:
        return (
            orjson.dumps(record.key)
            + b":"
            + orjson.dumps(record.export(), option=_ENCODE_OPTIONS)
            + b"\n"
        )

    def members(self) -> bytes:
        """The records as the members of a JSON object: ``"k1":{...},"k2":{...}``."""
        return self.rows[:-1].replace(b"\n", b",")

    def lines(self) -> bytes:
        """The records as newline-delimited JSON, one record object a line."""
        return b"".join(row[key_end(row) + 1 :] for row in self.rows.splitlines(True))

    def records(self) -> list[bytes]:
        """Each record's JSON object, without its key, in order."""
        return [row[key_end(row) + 1 : -1] for row in self.rows.splitlines(True)]

    def decode(self) -> list[Record]:
        """The records themselves, in order (a JSON list: rows are never merged by key)."""
        values: list[dict[str, Any]] = orjson.loads(b"[" + b",".join(self.records()) + b"]")
        return [Record.from_export(value) for value in values]


def key_end(row: bytes) -> int:
    """Where the JSON string key that starts ``row`` ends (the index after its closing quote).

    Found by the string's own syntax, never by searching for what follows it: a key may hold
    any text, ``:{"`` included. Inside a JSON string a quote is always escaped, so the closing
    one is the first quote preceded by an even number of backslashes.
    """
    at = 1
    while True:
        quote = row.index(b'"', at)
        backslashes = 0
        while row[quote - 1 - backslashes] == 0x5C:  # a backslash
            backslashes += 1
        if backslashes % 2 == 0:
            return quote + 1
        at = quote + 1


RecordChunk = list[Record] | EncodedRecords


class SourceContext(AsyncResource, ABC):
    """Reads (and for read-write sources, writes) records."""

    @abstractmethod
    async def record(self, key: str) -> Record:
        """The record with ``key``; an unknown key gives ``Record(key)`` (DFFML semantics)."""

    @abstractmethod
    def records(self) -> AsyncIterator[Record]:
        """Every record in source order, streamed: never the whole source in memory at once."""

    def reader(self) -> Reader[RecordChunk]:
        """Reads ``records()`` chunk by chunk for iterkey paging and streaming.

        Sources that can serve chunks faster (an index, pre-encoded rows) override this.
        """
        return IteratorReader(self.records())

    async def update(self, record: Record) -> None:
        raise BadRequest("Source is read-only")


class Source(Plugin[ConfigT]):
    KIND: ClassVar[Kind] = "source"

    @abstractmethod
    def context(self) -> SourceContext: ...


# --- models --------------------------------------------------------------------------------


class ModelContext(AsyncResource, ABC):
    @abstractmethod
    async def train(self, records: AsyncIterator[Record]) -> None:
        """Learn from ``records``; blocking work goes to a worker, never the event loop.

        The server never runs two trainings of one context at once (see ``training_lock``).
        """

    @abstractmethod
    def predict(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
        """Yield each record with ``prediction`` filled in, as a new Record (never mutate
        the records given: they may belong to a source)."""

    async def predict_batch(self, records: list[Record]) -> list[Record]:
        """Predictions for records already in memory (a request body), in order. The default
        goes through ``predict``; models may answer directly, sparing the hot path the
        async-iterator machinery."""
        return [record async for record in self.predict(_iterate(records))]

    @property
    def trained(self) -> bool:
        """False while there is nothing to predict with: the server then refuses predict and
        score with 400 ``Model not trained``. Models without learned state keep the default."""
        return True

    @property
    def natural_scorer(self) -> str | None:
        """The scorer plugin ``POST /model/{ctx}/accuracy`` uses for this model (``r2`` for
        regressors, ``clf`` for classifiers), or None when the model has none."""
        return None

    @functools.cached_property
    def training_lock(self) -> asyncio.Lock:
        """Held by the server around ``train`` so trainings of one context run one at a time."""
        return asyncio.Lock()


async def _iterate(records: list[Record]) -> AsyncIterator[Record]:
    for record in records:
        yield record


class Model(Plugin[ConfigT]):
    KIND: ClassVar[Kind] = "model"

    @abstractmethod
    def context(self) -> ModelContext: ...


# --- scorers -------------------------------------------------------------------------------


class ScorerContext(AsyncResource, ABC):
    @abstractmethod
    async def score(self, model: ModelContext, records: AsyncIterator[Record]) -> float:
        """How well ``model`` predicts ``records``."""


class Scorer(Plugin[ConfigT]):
    KIND: ClassVar[Kind] = "scorer"

    @abstractmethod
    def context(self) -> ScorerContext: ...


# --- modules -------------------------------------------------------------------------------
#
# A module (MLsploit's idea) is a set of named functions. A function runs with typed options over
# files in the upload dir and writes new files, each tagged with values it reports, plus logs.
# The server validates everything a client sends against the declarations below before any
# function code runs, and runs the code in a worker process it can stop.

TagType = Literal["str", "int", "float", "bool"]
_TAG_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


@dataclasses.dataclass(frozen=True)
class Tag:
    """A value a function reports about its output files (``rows: int``)."""

    name: str
    type: TagType
    help: str = ""

    def check(self, value: Any) -> Any:
        """``value`` if it has the declared type (an int is a float too, a bool no number)."""
        if self.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        expected = _TAG_TYPES[self.type]
        if isinstance(value, bool) and expected is not bool:
            raise TypeError(f"tag {self.name!r} must be {self.type}, got {value!r}")
        if not isinstance(value, expected):
            raise TypeError(f"tag {self.name!r} must be {self.type}, got {value!r}")
        return value

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "help": self.help}


@dataclasses.dataclass(frozen=True)
class Function:
    """One function of a module, declared once: listing, validation and running all read it.

    ``options`` is a frozen dataclass declared with :func:`service.plugins.config.field`, like a
    plugin's ``CONFIG``. ``target(job)`` does the work in a worker process; it must be a
    module-level function so it can be sent there. A module context that needs the server
    between worker steps (a model's predictions) overrides :meth:`ModuleContext.run` instead
    and leaves ``target`` None.
    """

    name: str
    help: str
    target: Callable[[Job], None] | None = None
    options: type = EmptyConfig
    expected_filetype: str = "csv"
    optional_filetypes: tuple[str, ...] = ()
    creates_new_files: bool = True
    modifies_input_files: bool = False
    tags: tuple[Tag, ...] = ()

    @property
    def filetypes(self) -> tuple[str, ...]:
        return (self.expected_filetype, *self.optional_filetypes)

    def describe(self) -> dict[str, Any]:
        """This function in ``/list/modules``: everything a client needs to build a form."""
        return {
            "help": self.help,
            "options": [_option(spec) for spec in config_fields(self.options)],
            "expected_filetype": self.expected_filetype,
            "optional_filetypes": list(self.optional_filetypes),
            "creates_new_files": self.creates_new_files,
            "modifies_input_files": self.modifies_input_files,
            "tags": [tag.describe() for tag in self.tags],
        }


def _option(spec: FieldSpec) -> dict[str, Any]:
    """An option as a form needs it: ``str | None`` is a ``str`` that may be left empty."""
    info = {"name": spec.name, **spec.describe()}
    if spec.nullable:
        if info["type"] != "enum":
            info["type"] = spec.base_type_name
        info["nullable"] = True
    return info


@dataclasses.dataclass(frozen=True)
class InputFile:
    """An input as the client named it (``in/a.csv``) and where it is on disk."""

    name: str
    path: Path


@dataclasses.dataclass
class Job:
    """One run of a function: what it reads and what it reports. Sent to and back from workers.

    Functions never write their inputs: a modified input is written as a new file through
    :meth:`modified`, every output through :meth:`output`, inside the run's fresh folder.
    """

    function: Function
    inputs: list[InputFile]
    options: Any
    output_dir: Path
    outputs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    logs: list[str] = dataclasses.field(default_factory=list)

    def output(self, filename: str, **tags: Any) -> Path:
        """Where to write the output ``filename`` (a plain name), tagged with ``tags``."""
        if (
            not filename
            or filename in (".", "..")
            or "/" in filename
            or "\\" in filename
            or "\x00" in filename
        ):
            raise ValueError(f"output name {filename!r} must be a plain file name")
        if filename in self.outputs:
            raise ValueError(f"output {filename!r} written twice")
        self.outputs[filename] = {}
        for name, value in tags.items():
            self.tag(filename, name, value)
        return self.output_dir / filename

    def modified(self, source: InputFile, **tags: Any) -> Path:
        """Where to write the modified copy of ``source``: same name, in the output folder."""
        return self.output(source.path.name, **tags)

    def tag(self, filename: str, name: str, value: Any) -> None:
        declared = {tag.name: tag for tag in self.function.tags}
        if name not in declared:
            raise TypeError(
                f"function {self.function.name!r} does not declare tag {name!r}"
                f" (declared: {', '.join(declared) or 'none'})"
            )
        if filename not in self.outputs:
            raise ValueError(f"tag {name!r} given for {filename!r}, which is not an output")
        self.outputs[filename][name] = declared[name].check(value)

    def log(self, message: str) -> None:
        """A line of the run's log: in the response's ``logs``, and live to a task's events."""
        self.logs.append(message)
        plugin_progress.log(message)


def run_target(target: Callable[[Job], None], job: Job) -> Job:
    """The worker side of a plain function: run it and send the job back with its report."""
    target(job)
    return job


class ModuleServices(ABC):
    """What the server lends a module context while one of its functions runs."""

    @abstractmethod
    async def predict(self, model_ctx: str, records: list[Record]) -> list[Record]:
        """The predictions of open model context ``model_ctx`` for ``records``, in order
        (404 ``Model not loaded``, 400 ``Model not trained`` as for the predict route)."""

    @abstractmethod
    async def in_worker(self, fn: Callable[..., ResultT], *args: Any) -> ResultT:
        """``fn(*args)`` in a worker process, within the run's time limit.

        ``fn`` and ``args`` are pickled: ``fn`` must be a module-level function.
        """


class ModuleContext(AsyncResource):
    """A configured module ready to run its functions."""

    def __init__(self, module: Module[Any]) -> None:
        self.module = module

    async def run(self, function: Function, job: Job, services: ModuleServices) -> Job:
        """Run ``function`` over ``job``: by default its target, in a worker process."""
        if function.target is None:
            raise TypeError(f"function {function.name!r} has no target and no run() override")
        return await services.in_worker(run_target, function.target, job)


class Module(Plugin[ConfigT]):
    """A set of functions. Subclasses set ``TAGLINE``, ``FUNCTIONS`` and a docstring."""

    KIND: ClassVar[Kind] = "module"
    TAGLINE: ClassVar[str] = ""
    FUNCTIONS: ClassVar[tuple[Function, ...]] = ()

    def context(self) -> ModuleContext:
        return ModuleContext(self)

    @classmethod
    def description(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def function(cls, name: str) -> Function:
        for function in cls.FUNCTIONS:
            if function.name == name:
                return function
        available = ", ".join(f.name for f in cls.FUNCTIONS) or "none"
        raise NotFound(f"Function {name!r} not found (available: {available})")

    @classmethod
    def listing_extra(cls) -> dict[str, Any]:
        names = [f.name for f in cls.FUNCTIONS]
        if len(set(names)) != len(names):
            raise TypeError(f"{cls.__name__} declares a function name twice: {names}")
        return {
            "tagline": cls.TAGLINE,
            "description": cls.description(),
            "functions": {f.name: f.describe() for f in cls.FUNCTIONS},
        }


BASES: dict[Kind, Any] = {
    "source": Source,
    "model": Model,
    "scorer": Scorer,
    "module": Module,
}
