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
import time
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
from service.plugins.models import columnar, worker_side
from service.sdk import offload
from service.sdk.base import Model, ModelContext, SourceContext
from service.sdk.columns import ColumnType, Scan
from service.sdk.config import field
from service.sdk.feature import Feature, finite_float
from service.sdk.progress import progress
from service.sdk.records import Record

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

Row = list[float]
Label = str | int | float | bool
Prediction = tuple[Any, float]

# Reading records never suspends when a source is in memory; yield to the event loop this
# often so a large training set cannot stall other requests while it is read.
YIELD_EVERY = 1024
# Records predicted together: one call into the estimator (and at most one thread hop).
PREDICT_BATCH = 512
# Records predicted together where the server lent its executor (predictions over a whole
# source, as a task): one round trip to a worker, and one copy of the fitted state, per batch.
OFFLOAD_BATCH = 8192


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    features: list[Feature] = field('features the model reads: "Years:int:1" or {"name", ...}')
    predict: Feature = field('the feature to predict: "Salary:float:1"')
    location: Path | None = field(
        "directory the trained model is saved in and loaded from (inside the upload dir when a"
        " client names it; also accepted as 'directory'). Without it the model lives in memory",
        default=None,
        aliases=("directory",),
    )

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("'features' needs at least one feature")
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"feature {duplicated[0]!r} is listed twice")
        if self.predict.name in names:
            raise ValueError(f"predicted feature {self.predict.name!r} is also a feature")
        if self.predict.length != 1:
            raise ValueError(f"predicted feature {self.predict.name!r} must have length 1")


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
            if f.name == "location":
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
        try:
            data = safefs.read_bytes(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BadRequest(f"Cannot read saved model {path.name}: {exc.strerror}") from None
        try:
            signature, state = self.decode(data)
        except ValueError as exc:
            raise BadRequest(f"Saved model {path.name} cannot be loaded: {exc}") from None
        if signature != self.signature():
            log.warning("Ignoring %s: saved with another configuration (%s)", path, signature)
            return None
        return state

    def arrays(
        self, scans: Sequence[Scan], columns: dict[str, ColumnType]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and targets read from ``scans`` (in the worker); columnar.Unfit when they must
        be read as records instead."""
        import numpy as np

        config = self.config
        names = [feature.name for feature in config.features]
        xs, ys = [], []
        for scan, table in columnar.read(scans, columns):
            xs.append(columnar.features(table, names))
            target_column = table.column(config.predict.name)
            if self.CLASSIFIER:
                ys.append(columnar.labels(target_column, config.predict, scan.value))
            else:
                ys.append(columnar.floats(target_column))
            progress(sum(len(x) for x in xs), None, "reading columns")
        x, y = np.concatenate(xs), np.concatenate(ys)
        if not len(x):
            raise columnar.Unfit  # the record path says there is nothing to train on
        return x, y

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


def as_dtype(value: Any, dtype: str) -> Any:
    """A regressor's number in the predicted feature's declared type, as DFFML casts it:
    ``Salary:int:1`` predicts the JSON integer 70, not 70.00000000000001 (rounded, so
    69.99999999999999 is 70 too); ``float`` stays a float. Other dtypes keep the number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if dtype == "int":
        return round(value) if math.isfinite(value) else value
    if dtype == "float":
        return float(value)
    return value


_stamp: tuple[int, str] = (-1, "")


def timestamp() -> str:
    """``2019-10-15T08:19:41Z``, the form DFFML writes ``last_updated`` in.

    Formatted once per second: formatting the time took ~5% of a 2-record predict request.
    """
    global _stamp
    second = int(time.time())
    if second != _stamp[0]:
        _stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _stamp[1]


def feature_row(record: Record, features: Sequence[Feature]) -> Row:
    """The record's features as one row of numbers; a feature of length n gives n columns."""
    row: Row = []
    for feature in features:
        value = _value(record, feature.name)
        if feature.length == 1:
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            row.append(number(value, record.key, feature.name))
            continue
        if not (isinstance(value, list) and len(value) == feature.length):
            raise BadRequest(
                f"Record {record.key!r} feature {feature.name!r} must be a list of"
                f" {feature.length} numbers"
            )
        row.extend(number(item, record.key, feature.name) for item in value)
    return row


def target(record: Record, predict: Feature, *, classifier: bool) -> Any:
    """The value to learn: a number for regressors, a class label for classifiers."""
    value = _value(record, predict.name)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not classifier:
        return number(value, record.key, predict.name)
    return label(value, predict.dtype, record.key, predict.name)


def number(value: Any, key: str, name: str) -> float:
    result = finite_float(value)
    if result is None:
        raise _not_numeric(value, key, name)
    return result


def label(value: Any, dtype: str, key: str, name: str) -> Label:
    """A class label in the predicted feature's dtype, so "1" and 1 are one class."""
    if isinstance(value, (list, dict)) or value is None:
        raise BadRequest(f"Record {key!r} feature {name!r} must be a single class label")
    if dtype == "str":
        return str(value)
    if dtype == "bool":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return bool(number(value, key, name))
    result = number(value, key, name)
    if dtype == "int":
        if not result.is_integer():
            raise BadRequest(f"Record {key!r} feature {name!r} must be an integer class")
        return int(result)
    return result


def _value(record: Record, name: str) -> Any:
    try:
        return record.features[name]
    except KeyError:
        raise BadRequest(f"Record {record.key!r} is missing feature {name!r}") from None


def _not_numeric(value: Any, key: str, name: str) -> BadRequest:
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return BadRequest(f"Record {key!r} feature {name!r} must be a number, got {shown}")


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a torn write; the location's
    directories are made and entered without following links (service/kernel/safefs.py)."""
    safefs.write_atomically(
        path, lambda out: out.write(data), save_temp_name(path.name), create_dirs=True
    )
