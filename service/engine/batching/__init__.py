"""Adaptive batching: concurrent predictions on one model context become one model call.

With ``-max-batch-size N`` and ``-max-batch-time S`` both above 0, each ``predict/0`` body and
each Open Inference Protocol ``infer`` waits in its model context's queue; a batch goes to the
model as soon as N records wait, or once the first of them has waited S seconds (a lone request
waits at most S), one batch of a context at a time. The answers are split back by position
(``predict_batch`` keeps the order), so they never cross. When the batch fails, each request of
it is predicted alone, so one bad record fails only its own request. At most ``-max-batch-queue``
records wait per context; beyond, 503 with ``Retry-After`` (docs/inference.md#batching). A
request of ``max_size`` records or more is a batch of its own and goes straight to the model.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import weakref

from service.engine import models
from service.kernel.errors import Unavailable
from service.sdk.base import ModelContext
from service.sdk.records import Record

RETRY_AFTER = "1"


@dataclasses.dataclass(frozen=True)
class Policy:
    max_size: int = 0
    max_time: float = 0.0
    max_queue: int = 1024

    @property
    def on(self) -> bool:
        return self.max_size > 0 and self.max_time > 0


@dataclasses.dataclass
class Stats:
    """Totals since start-up, for /metrics."""

    batches: int = 0
    records: int = 0
    requests: int = 0
    queue_seconds: float = 0.0  # summed over requests: time from arrival to their batch's call
    refused: int = 0
    largest: int = 0


@dataclasses.dataclass(eq=False)
class _Waiting:
    model: ModelContext
    records: list[Record]
    future: asyncio.Future[list[Record]]
    since: float


class Batching:
    """The batchers of every model context (held weakly: a released context's goes with it)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.stats = Stats()
        self._queues: weakref.WeakKeyDictionary[ModelContext, _Queue] = weakref.WeakKeyDictionary()

    async def predict(self, model: ModelContext, records: list[Record]) -> list[Record]:
        """The predictions for ``records``, in order: batched with others' when batching is on."""
        queue = self._queues.get(model)
        policy = queue.policy if queue is not None else self.policy_of(model)
        if not policy.on or not records or len(records) >= policy.max_size:
            # A request of a full batch or more is a batch by itself: it never waits.
            return await models.predict_list(model, records)
        models.require_trained(model)
        if queue is None:
            queue = self._queues[model] = _Queue(policy, self.stats)
        return await queue.put(model, records)

    def policy_of(self, model: ModelContext) -> Policy:
        """The server's policy, with what the model's own config sets in its place."""
        size, wait = model.batch_limits
        if size is None and wait is None:
            return self.policy
        return dataclasses.replace(
            self.policy,
            max_size=self.policy.max_size if size is None else size,
            max_time=self.policy.max_time if wait is None else wait,
        )

    def waiting(self) -> int:
        """Records waiting in every queue now."""
        return sum(queue.queued for queue in list(self._queues.values()))


class _Queue:
    """One model context's waiting requests and the one coroutine that batches them.

    The queue holds no reference to its model between requests (each waiting entry does), so
    the weak table above can let a released context go."""

    def __init__(self, policy: Policy, stats: Stats) -> None:
        self.policy = policy
        self.stats = stats
        self.queued = 0
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    async def put(self, model: ModelContext, records: list[Record]) -> list[Record]:
        if self.queued + len(records) > self.policy.max_queue:
            self.stats.refused += 1
            raise Unavailable(
                f"The model's batch queue is full ({self.policy.max_queue} records,"
                " -max-batch-queue): try again shortly",
                headers={"Retry-After": RETRY_AFTER},
            )
        loop = asyncio.get_running_loop()
        waiting = _Waiting(model, records, loop.create_future(), loop.time())
        self._waiting.append(waiting)
        self.queued += len(records)
        self._arrived.set()
        if self._worker is None:
            self._worker = asyncio.create_task(self._run())
        return await waiting.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                deadline = self._waiting[0].since + self.policy.max_time
                while self.queued < self.policy.max_size:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), remaining)
                    except asyncio.TimeoutError:
                        break
                await self._call(self._take(), loop.time())
        finally:
            self._worker = None
            # Cancelled (shutdown): nobody will answer those still waiting.
            while self._waiting:
                self._waiting.popleft().future.cancel()
            self.queued = 0

    def _take(self) -> list[_Waiting]:
        """Whole requests, up to max_size records."""
        batch: list[_Waiting] = []
        size = 0
        while self._waiting:
            count = len(self._waiting[0].records)
            if batch and size + count > self.policy.max_size:
                break
            waiting = self._waiting.popleft()
            self.queued -= count
            size += count
            batch.append(waiting)
        return batch

    async def _call(self, batch: list[_Waiting], now: float) -> None:
        # Requests whose client went away are not predicted.
        live = [w for w in batch if not w.future.done()]
        if not live:
            return
        records = [record for w in live for record in w.records]
        stats = self.stats
        stats.batches += 1
        stats.records += len(records)
        stats.requests += len(live)
        stats.largest = max(stats.largest, len(records))
        stats.queue_seconds += sum(now - w.since for w in live)
        try:
            # The queue is one model context's: every request of the batch is for it.
            predicted = await models.predict_list(live[0].model, records)
        except Exception as exc:
            if len(live) == 1:
                _answer(live[0], exc)
                return
            predicted = None
        if predicted is None or len(predicted) != len(records):
            for w in live:
                await _alone(w)
            return
        at = 0
        for w in live:
            _answer(w, predicted[at : at + len(w.records)])
            at += len(w.records)


async def _alone(waiting: _Waiting) -> None:
    """Predict one request by itself: its own answer, or its own error."""
    try:
        result: list[Record] | Exception = await models.predict_list(waiting.model, waiting.records)
    except Exception as exc:
        result = exc
    _answer(waiting, result)


def _answer(waiting: _Waiting, result: list[Record] | Exception) -> None:
    if waiting.future.done():  # its client went away
        return
    if isinstance(result, Exception):
        waiting.future.set_exception(result)
    else:
        waiting.future.set_result(result)
