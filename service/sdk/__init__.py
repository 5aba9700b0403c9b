"""What a plugin author imports: ``from service.sdk import Source, Record, field, ...``.

The one documented place for plugin code (docs/plugins.md). It imports only the kernel, never
aiohttp or the server, so a plugin package can be tested without starting anything.

- contracts: :class:`Source`, :class:`Model`, :class:`Scorer` and their contexts
  (:mod:`service.sdk.base`); :class:`Module`, :class:`Function`, :class:`Job`, :class:`Tag`
  (:mod:`service.sdk.modules`)
- records: :class:`Record` (:mod:`service.sdk.records`); readers for paging
  (:mod:`service.sdk.readers`); column batches and scans beside records
  (:mod:`service.sdk.columns`)
- config: :func:`field` declares a ``CONFIG`` dataclass's options (:mod:`service.sdk.config`);
  :class:`Feature` parses ``name:dtype:length`` (:mod:`service.sdk.feature`)
- progress: ``from service.sdk.progress import progress, log`` inside long work
- errors: raise a :class:`ServiceError` subclass and the client gets its status and message
"""

from service.kernel.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    NotFound,
    ServiceError,
    Unavailable,
)
from service.sdk.base import (
    KINDS,
    AsyncResource,
    Kind,
    Model,
    ModelContext,
    Plugin,
    Scorer,
    ScorerContext,
    Source,
    SourceContext,
)
from service.sdk.config import EmptyConfig, field
from service.sdk.feature import Feature, Signature
from service.sdk.modules import (
    Function,
    InputFile,
    Job,
    Module,
    ModuleContext,
    ModuleServices,
    Tag,
)
from service.sdk.offload import in_worker
from service.sdk.readers import IteratorReader, Reader
from service.sdk.records import Record

__all__ = [
    "KINDS",
    "AsyncResource",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "EmptyConfig",
    "Feature",
    "Function",
    "InputFile",
    "IteratorReader",
    "Job",
    "Kind",
    "Model",
    "ModelContext",
    "Module",
    "ModuleContext",
    "ModuleServices",
    "NotFound",
    "Plugin",
    "Reader",
    "Record",
    "Scorer",
    "ScorerContext",
    "ServiceError",
    "Signature",
    "Source",
    "SourceContext",
    "Tag",
    "Unavailable",
    "field",
    "in_worker",
]
