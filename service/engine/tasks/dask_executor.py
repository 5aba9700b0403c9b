"""The Dask executor: work runs on a Dask distributed cluster instead of local processes.

``-executor dask://HOST:PORT`` connects to a scheduler someone started (``dask scheduler``, with
``dask worker`` processes on any number of machines); ``-executor dask`` starts an in-process
``LocalCluster`` of ``-dask-workers`` worker processes on this machine. Either way the work
function is called as ``fn(reporter, *args)`` in a worker process, like the local executor.

What the server relies on, and how it is kept:

- Files: workers read and write the upload dir by the same absolute path (a shared
  filesystem). :meth:`DaskExecutor.start` writes a probe file there and asks every worker to
  read it back; a worker that cannot is a start-up error, not a stream of failing jobs. The
  probe file stays (named like a temporary: never listed, swept at the next start if left) and
  a worker that joins later reads it before its first piece of work: where it cannot, that
  work fails with the same message instead of with a confusing missing file.
- Progress and logs: the worker publishes them as Dask events on one topic; the scheduler
  forwards them to this client, which hands each to the callbacks of the run it belongs to.
- Cancellation: the future is cancelled (work still queued never starts), and the worker that
  is running it is restarted by its nanny, because Dask cannot interrupt a running function.
- A worker that dies mid-function: the scheduler runs the function again on another worker
  while it has died fewer than ``distributed.scheduler.allowed-failures`` times (1 for the
  in-process cluster: one retry), then the future fails with ``KilledWorker``.
- The scheduler lost mid-run: the client cancels the futures it held; those runs fail with the
  reason, and the next run reconnects (a new client) once the scheduler answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import dask.config
from distributed import Client, LocalCluster
from distributed.client import FutureCancelledError
from distributed.scheduler import KilledWorker

from service.engine.tasks.dask_worker import TOPIC, Probe, blind, call, processing_on, read_probe
from service.engine.tasks.executor import OnStart, Ran, timed_out
from service.engine.workers import WorkerCrashed, outcome_result
from service.kernel.errors import ServiceError, SetupError, Unavailable
from service.kernel.sandbox import save_temp_name

log = logging.getLogger(__name__)

R = TypeVar("R")

# How long start-up waits for the scheduler to answer and for a first worker to join.
CONNECT_SECONDS = 5.0
WORKERS_SECONDS = 30.0
# A worker restarted to stop a cancelled function gets this long (Dask's nanny waits 4 s for
# a graceful close, then kills the process).
RESTART_SECONDS = 30.0
# The in-process cluster: a function whose worker died is tried once more, on another worker.
LOCAL_ALLOWED_FAILURES = 1
# How long the in-process cluster waits for a restarting worker before giving it up.
LOST_WORKER_SECONDS = "300s"
# How often a client reconnecting to a lost scheduler is looked at.
POLL_SECONDS = 0.05


class ExecutorStartError(SetupError):
    """The executor cannot be used (no scheduler, no workers, no shared upload dir): the CLI
    prints the message on one line and exits 2."""


Progress = Callable[[int, int | None, str | None], None]
Log = Callable[[str], None]


class DaskExecutor:
    """Runs ``fn(reporter, *args)`` on Dask workers; ``address`` None starts a LocalCluster."""

    def __init__(
        self,
        address: str | None,
        *,
        workers: int = 2,
        upload_dir: Path | None,
        connect_timeout: float = CONNECT_SECONDS,
    ) -> None:
        self.name = f"dask://{address}" if address is not None else "dask(local)"
        self._address = address
        self._workers = workers
        self._connect_timeout = connect_timeout
        self._upload_dir = upload_dir
        self._cluster: LocalCluster | None = None
        self._client: Client | None = None
        self._scheduler_id: str | None = None
        self._probe: Probe | None = None
        self._connecting = asyncio.Lock()
        self._listeners: dict[str, tuple[Progress | None, Log | None, OnStart | None]] = {}
        self._restarts: set[asyncio.Task[None]] = set()

    @property
    def scheduler_address(self) -> str:
        if self._cluster is not None:
            return str(self._cluster.scheduler_address)
        assert self._address is not None
        return self._address if "://" in self._address else f"tcp://{self._address}"

    async def start(self) -> None:
        if self._address is None:
            self._cluster = await _local_cluster(self._workers)
        client = await self._connect()
        try:
            await _wait_for_workers(client, self.scheduler_address)
            if self._upload_dir is not None:
                self._probe = await _probe(client, self._upload_dir)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._restarts:
            # A restart cut short could leave its worker running the cancelled function.
            await asyncio.wait(set(self._restarts), timeout=RESTART_SECONDS)
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            await cluster.close()
        if self._probe is not None:
            probe, self._probe = self._probe[0], None
            await asyncio.to_thread(Path(probe).unlink, True)

    async def run(
        self,
        fn: Callable[..., R],
        *args: Any,
        on_progress: Progress | None = None,
        on_log: Log | None = None,
        timeout: float | None = None,
        on_start: OnStart | None = None,
    ) -> Ran[R]:
        client = await self._connected()
        key = f"{getattr(fn, '__name__', 'work')}-{secrets.token_hex(8)}"
        self._listeners[key] = (on_progress, on_log, on_start)
        future = client.submit(call, key, fn, args, self._probe, key=key, pure=False)
        try:
            try:
                outcome, payload, ran_on = await asyncio.wait_for(future, timeout)
            except asyncio.TimeoutError:
                if timeout is None:  # Dask's own connection timed out, not ours
                    raise Unavailable(
                        f"the Dask scheduler at {self.scheduler_address} timed out"
                    ) from None
                await self._stop(client, key, future)
                raise timed_out(timeout) from None
            except FutureCancelledError as exc:
                # Not our caller's cancellation (that is a plain CancelledError): the client
                # lost the scheduler and cancelled every future it held.
                raise Unavailable(
                    f"lost the Dask scheduler at {self.scheduler_address} while the work ran:"
                    f" {exc.msg or exc.reason}"
                ) from None
            except KilledWorker:
                raise WorkerCrashed(
                    "the Dask worker running it died, and so did the one it was retried on"
                ) from None
            except asyncio.CancelledError:
                await asyncio.shield(self._stop(client, key, future))
                raise
            except OSError as exc:
                raise Unavailable(
                    f"the Dask scheduler at {self.scheduler_address} failed: {_reason(exc)}"
                ) from None
            except ServiceError:
                raise
            except Exception as exc:  # Dask could not run it (unpicklable result, …)
                log.error("dask: %s failed in Dask itself", key, exc_info=True)
                raise WorkerCrashed(f"Dask could not run the work: {_reason(exc)}") from None
        finally:
            self._listeners.pop(key, None)
        return Ran(outcome_result(outcome, payload), ran_on)

    # --- connection ------------------------------------------------------------------------

    async def _connect(self) -> Client:
        address = self.scheduler_address
        try:
            client = await Client(
                address, asynchronous=True, timeout=self._connect_timeout, set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            raise ExecutorStartError(
                f"cannot reach the Dask scheduler at {address}: {_reason(exc)}"
            ) from None
        self._client, self._scheduler_id = client, None
        self._subscribe(client)
        return client

    def _subscribe(self, client: Client) -> None:
        """Events of this topic come to this client: again after it reconnected to a scheduler
        that was restarted (a new scheduler knows nothing of the old one's subscriptions)."""
        scheduler_id = client.scheduler_info().get("id")
        if scheduler_id != self._scheduler_id:
            client.subscribe_topic(TOPIC, self._on_event)
            self._scheduler_id = scheduler_id

    async def _connected(self) -> Client:
        """The client, or a new one if the old gave up reconnecting (503 while unreachable).

        A client that lost its scheduler tries to reconnect for ``connect_timeout`` seconds,
        then closes: work is handed over only once that is settled either way."""
        async with self._connecting:
            client = self._client
            if client is not None and client.status == "connecting":
                # Polled: Dask offers no event for the end of its reconnect attempts.
                for _ in range(int((self._connect_timeout + 1) / POLL_SECONDS)):
                    if client.status != "connecting":
                        break
                    await asyncio.sleep(POLL_SECONDS)
            if client is not None and client.status in ("running", "newly-created"):
                self._subscribe(client)
                return client
            if client is not None:
                self._client = None
                with contextlib.suppress(Exception):
                    await client.close()
            try:
                return await self._connect()
            except ExecutorStartError as exc:
                raise Unavailable(str(exc)) from None

    # --- events and stopping ---------------------------------------------------------------

    def _on_event(self, event: tuple[float, Any]) -> None:
        _, message = event
        if not isinstance(message, dict):
            return
        listeners = self._listeners.get(str(message.get("key")))
        if listeners is None:
            return
        on_progress, on_log, on_start = listeners
        if message.get("kind") == "started" and on_start is not None:
            on_start(str(message["worker"]))
        elif message.get("kind") == "progress" and on_progress is not None:
            on_progress(message["done"], message.get("total"), message.get("message"))
        elif message.get("kind") == "log" and on_log is not None:
            on_log(str(message["line"]))

    async def _stop(self, client: Client, key: str, future: Any) -> None:
        """Cancel ``future`` and restart the worker running it, so the function really stops."""
        try:
            where = await client.run_on_scheduler(processing_on, key)
            await client.cancel([future], force=True)
        except Exception as exc:  # the scheduler is gone: nothing runs for us any more
            log.warning("dask: could not cancel %s: %s", key, _reason(exc))
            return
        if where is not None:
            task = asyncio.create_task(_restart(client, str(where), key))
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)


async def _restart(client: Client, worker: str, key: str) -> None:
    try:
        await client.restart_workers([worker], timeout=RESTART_SECONDS)
    except Exception as exc:
        log.warning(
            "dask: %s was cancelled but worker %s could not be restarted (%s); it goes on"
            " until the function returns",
            key,
            worker,
            _reason(exc),
        )


async def _local_cluster(workers: int) -> LocalCluster:
    # One thread per worker process: a CPU-bound function gets its core, and restarting the
    # worker to stop one function stops nothing else.
    settings = {
        "distributed.scheduler.allowed-failures": LOCAL_ALLOWED_FAILURES,
        # The dashboard's statistical profiler samples the running thread every 10 ms: time
        # taken from CPU-bound functions, for a dashboard this cluster does not serve.
        "distributed.worker.profile.enabled": False,
    }
    # Read whenever a worker leaves (so set for the process, not only while the cluster
    # starts): a worker restarted by its nanny (after a cancel, or after a function killed it)
    # that is not back within this long is given up for good, and the cluster shrinks. Dask's
    # 15 s is too short for a loaded machine; the nanny's own restart is bounded anyway.
    dask.config.set({"distributed.deploy.lost-worker-timeout": LOST_WORKER_SECONDS})
    with dask.config.set(settings):
        cluster = await LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            # No dashboard, and its HTTP routes on a free port rather than 8787 (often taken).
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
            asynchronous=True,
        )
    assert isinstance(cluster, LocalCluster)
    return cluster


async def _wait_for_workers(client: Client, address: str) -> None:
    try:
        await client.wait_for_workers(1, timeout=WORKERS_SECONDS)
    except (TimeoutError, asyncio.TimeoutError):
        raise ExecutorStartError(
            f"no Dask worker joined the scheduler at {address} within {WORKERS_SECONDS:g} s"
            " (start some with: dask worker " + address + ")"
        ) from None


async def _probe(client: Client, upload_dir: Path) -> Probe:
    """Every worker must see the upload dir by the same path: read back a file written here.
    The file is left for workers that join later (``dask_worker.sees``); aclose removes it."""
    root = await asyncio.to_thread(upload_dir.resolve)
    token = secrets.token_hex(16)
    probe = root / save_temp_name("dask-probe")
    await asyncio.to_thread(probe.write_text, token, encoding="utf-8")
    try:
        answers: dict[str, str | None] = await client.run(read_probe, str(probe), token)
    except BaseException:
        await asyncio.to_thread(probe.unlink, True)
        raise
    unseen = sorted(worker for worker, problem in answers.items() if problem is not None)
    if unseen:
        await asyncio.to_thread(probe.unlink, True)
        raise ExecutorStartError(
            blind(unseen[0], str(root), str(answers[unseen[0]]))
            + (f" ({len(unseen)} of {len(answers)} workers)" if len(unseen) > 1 else "")
        )
    return str(probe), token, str(root)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
