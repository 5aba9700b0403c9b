"""Modules: named functions over files, declared once for listing, validation and running."""

from __future__ import annotations

import dataclasses
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from service.kernel.errors import NotFound
from service.sdk import progress as plugin_progress
from service.sdk.base import AsyncResource, ConfigT, Kind, Plugin
from service.sdk.config import EmptyConfig, FieldSpec
from service.sdk.config import fields_of as config_fields
from service.sdk.records import Record

ResultT = TypeVar("ResultT")


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

    ``options`` is a frozen dataclass declared with :func:`service.sdk.config.field`, like a
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
