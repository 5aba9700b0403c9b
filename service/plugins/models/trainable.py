"""What every built-in model shares: its config, reading records as numbers, training in a
worker thread, predicting in batches, and saving to / loading from ``location``.

A built-in model implements five hooks: ``fit`` (rows and targets as NumPy arrays → fitted
state, in a worker process the server can kill, or a thread where it lends none: see
:mod:`service.sdk.offload`), ``predict_rows`` (fitted state + rows → (value, confidence)
pairs), ``predict_array`` (the same over an array), ``encode`` and ``decode`` (fitted state ↔
bytes of its saved file).

Training over sources whose rows a worker can read itself (``SourceContext.scan``) sends the
worker where the rows are, not the rows: it reads the columns it needs as arrays
(:mod:`service.plugins.models.columnar`), so the server's memory does not grow with the data.
Other sources' records are read in the server into arrays, as compact as the numbers.

The state lives on the configured model, so every context of one label predicts with the
same training, and a new training replaces it whole (predictions running meanwhile finish
with the state they started with).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from abc import abstractmethod
from array import array
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from service.kernel import safefs
from service.kernel.errors import BadRequest, NotFound
from service.kernel.sandbox import save_temp_name
from service.plugins.models import columnar, encoded, worker_side
from service.plugins.models.config import BATCH_FIELDS
from service.plugins.models.config import ModelConfig as ModelConfig
from service.plugins.models.values import (
    Prediction as Prediction,
)
from service.plugins.models.values import (
    Row as Row,
)
from service.plugins.models.values import (
    as_dtype,
    feature_row,
    target,
    timestamp,
)
from service.sdk import offload
from service.sdk.base import Model, ModelContext, SourceContext
from service.sdk.columns import ClassPairs, ColumnType, ErrorSums, Scan
from service.sdk.feature import Feature, Signature
from service.sdk.progress import progress
from service.sdk.records import EncodedRecords, Record, RecordChunk

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


# Reading records never suspends when a source is in memory; yield to the event loop this
# often so a large training set cannot stall other requests while it is read.
YIELD_EVERY = 1024
# Records predicted together: one call into the estimator (and at most one thread hop).
PREDICT_BATCH = 512
# Records predicted together where the server lent its executor (predictions over a whole
# source, as a task): one round trip to a worker, and one copy of the fitted state, per batch.
OFFLOAD_BATCH = 8192


ConfigT = TypeVar("ConfigT", bound=ModelConfig)
StateT = TypeVar("StateT")


class TrainableModel(Model[ConfigT], Generic[ConfigT, StateT]):
    """A model whose fitted state is trained from records and saved under ``location``."""

    CLASSIFIER: ClassVar[bool] = False
    # Batches up to this many rows are predicted on the event loop: a thread hop costs more
    # than the prediction itself for small batches of cheap models.
    INLINE_ROWS: ClassVar[int] = 0
    FILENAME: ClassVar[str]

    def __init__(self, config: ConfigT) -> None:
        super().__init__(config)
        self.state: StateT | None = None
        # One training at a time per configured model: its contexts share the state and file.
        self.training = asyncio.Lock()
        # Trainings get a thread of their own (they are serialised anyway), so long ones never
        # occupy the loop's shared default executor that file I/O and predictions use.
        self._trainer: ThreadPoolExecutor | None = None
        self._closed = False

    @abstractmethod
    def fit(self, rows: np.ndarray, targets: np.ndarray) -> StateT:
        """Train on rows (a rows by columns float64 array) and their targets (runs in a worker);
        ValueError means unusable data (400)."""

    @abstractmethod
    def predict_array(self, state: StateT, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values, confidences) for each row of a float64 array."""

    def predict_rows(self, state: StateT, rows: list[Row]) -> list[Prediction]:
        """(value, confidence) for each row."""
        import numpy as np

        values, confidences = self.predict_array(state, np.asarray(rows, dtype=float))
        return list(zip(values.tolist(), confidences.tolist(), strict=True))

    @abstractmethod
    def encode(self, signature: dict[str, Any], state: StateT) -> bytes:
        """The bytes of the saved file."""

    @abstractmethod
    def decode(self, data: bytes) -> tuple[dict[str, Any], StateT]:
        """``(signature, state)`` from a saved file; ValueError when it is not one."""

    @property
    def saved_file(self) -> Path | None:
        location = self.config.location
        return None if location is None else location / self.FILENAME

    def signature(self) -> dict[str, Any]:
        """The config a saved model was trained with, minus where it is saved."""
        out: dict[str, Any] = {"model": type(self).__name__}
        for f in dataclasses.fields(self.config):
            value = getattr(self.config, f.name)
            if f.name == "location" or f.name in BATCH_FIELDS:
                continue
            if isinstance(value, Feature):
                value = value.spec()
            elif isinstance(value, list):
                value = [v.spec() if isinstance(v, Feature) else v for v in value]
            out[f.name] = value
        return out

    async def __aenter__(self) -> TrainableModel[ConfigT, StateT]:
        if self.saved_file is not None:
            self.state = await asyncio.to_thread(self._load, self.saved_file)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Training saves as it finishes, so there is nothing left to write here. A training
        # still running completes (and saves) in its thread; no new one can start.
        self.state = None
        self._closed = True
        if self._trainer is not None:
            self._trainer.shutdown(wait=False, cancel_futures=True)
            self._trainer = None

    async def run_training(self, rows: np.ndarray, targets: np.ndarray) -> StateT:
        state: StateT = await self._offload(worker_side.fit, worker_side.train, rows, targets)
        return state

    async def run_training_scans(
        self, scans: list[Scan], columns: dict[str, ColumnType]
    ) -> StateT | None:
        """Train where the rows are read (the worker); None when they must be read as records
        (a scan went stale, or a value needs the record path's conversion)."""
        state: StateT | None = await self._offload(
            worker_side.fit_scans, worker_side.train_scans, scans, columns
        )
        return state

    async def offload_work(self, remote: Callable[..., Any], *args: Any) -> Any:
        """``remote(model class, config, *args, roots)`` in a worker process, or a thread."""
        if self._closed:
            raise NotFound("Model not loaded")
        if offload.available():
            return await offload.in_worker(remote, type(self), self.config, *args, safefs.roots())
        return await asyncio.to_thread(remote, type(self), self.config, *args)

    async def _offload(
        self, remote: Callable[..., Any], local: Callable[..., Any], *args: Any
    ) -> Any:
        if self._closed:
            raise NotFound("Model not loaded")  # its label was reconfigured or deleted meanwhile
        if offload.available():
            # A worker process: killed if the task is cancelled, so the fit stops for real.
            return await offload.in_worker(remote, type(self), self.config, *args, safefs.roots())
        if self._trainer is None:
            self._trainer = ThreadPoolExecutor(1, thread_name_prefix=f"train-{type(self).__name__}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._trainer, local, self, *args)

    def _load(self, path: Path) -> StateT | None:
        found = self.read_state(path, "Saved model")
        if found is None:
            return None
        state, signature = found
        if signature != self.signature():
            log.warning("Ignoring %s: saved with another configuration (%s)", path, signature)
            return None
        return state

    def read_state(self, path: Path, what: str) -> tuple[StateT, dict[str, Any]] | None:
        """The state saved in ``path`` and the signature it was saved with; None when there is
        no such file. A file that cannot be read or decoded is a 400 naming it as ``what``."""
        try:
            data = safefs.read_bytes(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            detail = exc.strerror or exc
            raise BadRequest(f"Cannot read {what.lower()} {path.name}: {detail}") from None
        try:
            signature, state = self.decode(data)
        except ValueError as exc:
            raise BadRequest(f"{what} {path.name} cannot be loaded: {exc}") from None
        return state, signature

    def fit_and_save(self, rows: np.ndarray, targets: np.ndarray) -> StateT:
        """Worker thread or process: train, then replace the saved file atomically."""
        progress(0, len(rows), f"fitting on {len(rows)} records")
        state = self.fit(rows, targets)
        path = self.saved_file
        if path is not None:
            progress(len(rows), len(rows), "saving the model")
            _write_atomically(path, self.encode(self.signature(), state))
        progress(len(rows), len(rows), "fitted")
        return state

    def context(self) -> TrainableModelContext[ConfigT, StateT]:
        return TrainableModelContext(self)


class TrainableModelContext(ModelContext, Generic[ConfigT, StateT]):
    def __init__(self, parent: TrainableModel[ConfigT, StateT]) -> None:
        self.parent = parent

    @property
    def trained(self) -> bool:
        return self.parent.state is not None

    @property
    def natural_scorer(self) -> str:
        return "clf" if self.parent.CLASSIFIER else "r2"

    @property
    def signature(self) -> Signature:
        config = self.parent.config
        return Signature(tuple(config.features), config.predict)

    @property
    def batch_limits(self) -> tuple[int | None, float | None]:
        config = self.parent.config
        return config.max_batch_size, config.max_batch_time

    async def train_from(self, sources: Sequence[SourceContext]) -> None:
        """Columns read by the worker where every source has a scan, else records."""
        parent = self.parent
        config = parent.config
        columns = columnar.wanted(config.features, config.predict, classifier=parent.CLASSIFIER)
        scans = [source.scan() for source in sources]
        present = [scan for scan in scans if scan is not None]
        if columns is not None and present and len(present) == len(scans):
            async with parent.training:
                state = await parent.run_training_scans(present, columns)
            if state is not None:
                parent.state = state
                return
        await super().train_from(sources)

    async def train(self, records: AsyncIterator[Record]) -> None:
        import numpy as np

        parent = self.parent
        config = parent.config
        # Numbers go straight into machine arrays: 8 bytes a value, not a list of floats.
        rows = array("d")
        numbers = array("d")
        labels: list[Any] = []
        count = 0
        async for record in records:
            rows.extend(feature_row(record, config.features))
            value = target(record, config.predict, classifier=parent.CLASSIFIER)
            if parent.CLASSIFIER:
                labels.append(value)
            else:
                numbers.append(value)
            count += 1
            if count % YIELD_EVERY == 0:
                progress(count, None, "reading records")
                await asyncio.sleep(0)
        if not count:
            raise BadRequest("No records to train on")
        progress(count, None, f"read {count} records")
        x = np.frombuffer(rows, dtype=np.float64).reshape(count, -1)
        y = np.asarray(labels) if parent.CLASSIFIER else np.frombuffer(numbers, dtype=np.float64)
        async with parent.training:
            # Failures come back as the errors a client is shown (worker_side.train).
            parent.state = await parent.run_training(x, y)

    async def predict(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
        parent = self.parent
        state = parent.state
        if state is None:
            raise BadRequest("Model not trained")
        batch: list[Record] = []
        size = OFFLOAD_BATCH if offload.available() else PREDICT_BATCH
        async for record in records:
            batch.append(record)
            if len(batch) == size:
                for predicted in await self._predict_batch(state, batch):
                    yield predicted
                batch = []
        if batch:
            for predicted in await self._predict_batch(state, batch):
                yield predicted

    async def error_sums(self, sources: Sequence[SourceContext]) -> ErrorSums | None:
        """Where every source has a scan: read, predicted and summed in the worker."""
        if self.parent.CLASSIFIER:
            return None
        sums: ErrorSums | None = await self._compare(sources, worker_side.error_sums)
        return sums

    async def class_pairs(self, sources: Sequence[SourceContext]) -> ClassPairs | None:
        """Where every source has a scan: read, predicted and counted in the worker."""
        if not self.parent.CLASSIFIER:
            return None
        pairs: ClassPairs | None = await self._compare(sources, worker_side.class_pairs)
        return pairs

    async def _compare(self, sources: Sequence[SourceContext], remote: Callable[..., Any]) -> Any:
        parent = self.parent
        state = parent.state
        config = parent.config
        # The truths of a classifier are compared as the records hold them: read as text.
        columns = columnar.wanted(config.features, config.predict, classifier=parent.CLASSIFIER)
        scans = [source.scan() for source in sources]
        present = [scan for scan in scans if scan is not None]
        if state is None or columns is None or not present or len(present) != len(scans):
            return None
        return await parent.offload_work(remote, state, present, columns)

    async def predict_lines(self, chunk: RecordChunk) -> bytes:
        """Encoded records (a file source's chunk) predicted as one array, each prediction
        spliced into its record's bytes (:mod:`service.plugins.models.encoded`)."""
        if self.parent.state is None:
            raise BadRequest("Model not trained")
        if not isinstance(chunk, EncodedRecords):
            return await super().predict_lines(chunk)
        return await encoded.predict_lines(self.parent, self.parent.state, chunk)

    async def predict_batch(self, records: list[Record]) -> list[Record]:
        state = self.parent.state
        if state is None:
            raise BadRequest("Model not trained")
        if len(records) <= PREDICT_BATCH:
            return await self._predict_batch(state, records)
        out: list[Record] = []
        for start in range(0, len(records), PREDICT_BATCH):
            out += await self._predict_batch(state, records[start : start + PREDICT_BATCH])
            await asyncio.sleep(0)  # inline batches never suspend: let other requests in
        return out

    async def _predict_batch(self, state: StateT, batch: list[Record]) -> list[Record]:
        parent = self.parent
        rows = [feature_row(record, parent.config.features) for record in batch]
        try:
            if offload.available():
                # On the executor (a worker process or a Dask worker), as trainings run.
                results = await offload.in_worker(
                    worker_side.predict, type(parent), parent.config, state, rows
                )
            elif len(rows) <= parent.INLINE_ROWS:
                results = parent.predict_rows(state, rows)
            else:
                results = await asyncio.to_thread(parent.predict_rows, state, rows)
        except ValueError as exc:
            raise BadRequest(f"Prediction failed: {exc}") from None
        except ArithmeticError as exc:
            raise BadRequest(f"Prediction failed: beyond float range ({exc})") from None
        for record, (value, _) in zip(batch, results, strict=True):
            # inf and nan have no JSON spelling: they would reach the client as null.
            if type(value) is float and not math.isfinite(value):
                raise BadRequest(
                    f"Prediction failed: the prediction for record {record.key!r} is beyond"
                    " float range"
                )
        predict = parent.config.predict
        name = predict.name
        if not parent.CLASSIFIER:  # class labels already have the predicted feature's type
            results = [(as_dtype(value, predict.dtype), c) for value, c in results]
        now = timestamp()
        return [
            # Built directly: dataclasses.replace() inspects the fields on every call.
            Record(
                record.key,
                record.features,
                record.extra,
                prediction={name: {"value": value, "confidence": confidence}},
                last_updated=now,
            )
            for record, (value, confidence) in zip(batch, results, strict=True)
        ]


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a torn write; the location's
    directories are made and entered without following links (service/kernel/safefs.py)."""
    safefs.write_atomically(
        path, lambda out: out.write(data), save_temp_name(path.name), create_dirs=True
    )
