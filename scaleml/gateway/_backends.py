"""Where batches are predicted: a thread pool in the gateway (``local``) or Dask workers
that hold the model (``dask``, one :class:`ModelHost` actor per worker and model version).

A backend ``load``-s a model version and returns a handle with ``predict`` (columns in, NumPy
array or DataFrame out), ``capacity`` (batches worth having in flight) and ``unload``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from distributed import Actor, Client

from scaleml.config import Settings
from scaleml.gateway._errors import Unavailable
from scaleml.gateway._host import ModelHost

log = logging.getLogger("scaleml.gateway")


class ModelHandle(Protocol):
    """A model version loaded by a backend."""

    capacity: int
    classes: list[Any] | None  # the classes of predict_proba's columns; None: no probabilities

    async def predict(
        self, names: Sequence[str], arrays: Sequence[np.ndarray], proba: bool = False
    ) -> Any: ...

    async def explain(self, names: Sequence[str], arrays: Sequence[np.ndarray]) -> Any: ...

    async def unload(self) -> None: ...


class LocalBackend:
    """Predicts in the gateway process on ``gateway_local_threads`` threads."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(settings.gateway_local_threads, "scaleml-predict")

    async def start(self) -> None:
        """Nothing to connect to."""

    async def load(self, uri: str) -> _LocalHandle:
        """Load ``uri`` in a thread (the event loop keeps answering health checks)."""
        host = await asyncio.to_thread(ModelHost, uri, self.settings, False)
        # One batch per thread: a batch queued behind a busy thread only delays the batching
        # of the requests that arrive meanwhile.
        return _LocalHandle(host, self._pool, self.settings.gateway_local_threads, host.classes)

    async def refresh(self) -> None:
        """Nothing to follow: the process does not change."""

    async def close(self) -> None:
        """Stop the prediction threads."""
        self._pool.shutdown(wait=True)


@dataclass
class _LocalHandle:
    host: ModelHost
    pool: ThreadPoolExecutor
    capacity: int
    classes: list[Any] | None

    async def predict(
        self, names: Sequence[str], arrays: Sequence[np.ndarray], proba: bool = False
    ) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.host.predict, names, arrays, proba)

    async def explain(self, names: Sequence[str], arrays: Sequence[np.ndarray]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.host.explain, names, arrays)

    async def unload(self) -> None:
        self.host = None  # type: ignore[assignment]


class DaskBackend:
    """Sends each batch to a worker that holds the model (a :class:`ModelHost` actor pinned to
    it); a worker that dies is dropped, the batch retried once on another, and the model
    loaded on workers that join."""

    name = "dask"

    def __init__(self, settings: Settings, scheduler_address: str) -> None:
        self.settings = settings
        self.scheduler_address = scheduler_address
        self.client: Any = None
        self._handles: set[_DaskHandle] = set()
        self.pool = ThreadPoolExecutor(1, "scaleml-inprocess")  # lone small batches
        self._releasing: set[asyncio.Future[Any]] = set()

    async def start(self) -> None:
        """Connect an asynchronous client on the gateway's event loop."""

        # Direct to workers: actor calls go gateway -> worker, not through the scheduler.
        self.client = await Client(
            self.scheduler_address, asynchronous=True, direct_to_workers=True
        )

    async def workers(self) -> list[str]:
        """Addresses of the workers the scheduler knows now."""
        identity = await self.client.scheduler.identity(n_workers=-1)
        return sorted(identity["workers"])

    async def load(self, uri: str) -> _DaskHandle:
        """Load ``uri`` on every worker (all must succeed before the version is served)."""
        workers = await self.workers()
        if not workers:
            raise Unavailable("the Dask cluster has no workers")
        handle = _DaskHandle(self, uri)
        replicas = await asyncio.gather(*(handle.add_replica(address) for address in workers))
        handle.classes = await _await(replicas[0].actor.class_labels())
        await load_in_process(handle, self.settings)
        self._handles.add(handle)
        return handle

    async def refresh(self) -> None:
        """Load every served model on workers that joined; forget workers that left."""
        workers = set(await self.workers())
        for handle in list(self._handles):
            handle.forget_missing(workers)
            for address in workers - set(handle.replicas):
                try:
                    await handle.add_replica(address)
                except Exception as exc:  # a worker that fails to load is skipped, not fatal
                    log.warning("cannot load %s on %s: %s", handle.uri, address, exc)

    async def close(self) -> None:
        """Close the client (actors die with their futures)."""
        if self.client is not None:
            await self.client.close()
        self.pool.shutdown(wait=True)

    def discard(self, handle: _DaskHandle) -> None:
        self._handles.discard(handle)

    async def release(self, futures: Sequence[Any]) -> None:
        """Free the actors of ``futures`` on their workers now.

        Each actor handle holds a reference to its key of its own, dropped only when Python
        collects the handle (after a hot swap under load: maybe never, once ``gc.freeze``
        ran); releasing our futures alone left every drained version loaded on every worker.
        A forced cancel makes the scheduler forget the key, whoever still refers to it.
        """
        if futures and self.client is not None:
            await self.client.cancel(list(futures), force=True, reason="model version drained")

    def release_soon(self, futures: Sequence[Any]) -> None:
        """:meth:`release` from synchronous code on the event loop."""
        task = asyncio.ensure_future(self.release(futures))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)


@dataclass
class _Replica:
    address: str
    future: Any
    actor: Any
    inflight: int = 0


@dataclass(eq=False)
class _DaskHandle:
    backend: DaskBackend
    uri: str
    replicas: dict[str, _Replica] = field(default_factory=dict)
    classes: list[Any] | None = None
    local: ModelHost | None = None  # the gateway's own copy, for lone small batches
    busy: int = 0  # batches in flight, in process or on workers
    on_inprocess: Callable[[], object] | None = None

    @property
    def capacity(self) -> int:
        per_worker = self.backend.settings.gateway_inflight_batches_per_worker
        return max(1, len(self.replicas)) * per_worker

    async def add_replica(self, address: str) -> _Replica:
        client = self.backend.client
        future = client.submit(
            ModelHost,
            self.uri,
            self.backend.settings,
            actor=True,
            workers=[address],
            allow_other_workers=False,
            pure=False,
        )
        timeout = max(60.0, self.backend.settings.gateway_request_timeout_s)
        try:
            await asyncio.wait_for(future.result(), timeout)  # the model is loaded there
        except BaseException:
            self.backend.release_soon([future])  # a load that ends later is not kept
            raise
        # Bind the actor handle to our client, on our event loop: an actor deserialized
        # while another (synchronous) client is the default would route every call through
        # that client's thread and wake this loop late.
        with client.as_current():
            actor = Actor(ModelHost, address, future.key)
        replica = _Replica(address, future, actor)
        self.replicas[address] = replica
        return replica

    def forget_missing(self, workers: set[str]) -> None:
        for address in set(self.replicas) - workers:
            self._drop(address)

    def _drop(self, address: str) -> None:
        replica = self.replicas.pop(address, None)
        if replica is not None:
            log.warning("worker %s lost; %s no longer predicted there", address, self.uri)
            self.backend.release_soon([replica.future])

    async def predict(
        self, names: Sequence[str], arrays: Sequence[np.ndarray], proba: bool = False
    ) -> Any:
        return await self._run("predict", names, arrays, proba)

    async def explain(self, names: Sequence[str], arrays: Sequence[np.ndarray]) -> Any:
        """SHAP contributions of a batch, where its predictions would be made."""
        return await self._run("explain", names, arrays)

    async def _run(
        self, method: str, names: Sequence[str], arrays: Sequence[np.ndarray], *args: Any
    ) -> Any:
        rows = len(arrays[0]) if arrays else 0
        if self.local is not None and self.busy == 0 and rows <= self.local_max_rows:
            return await self._predict_in_process(names, arrays, *args, method=method)
        self.busy += 1
        try:
            return await self._predict_on_workers(names, arrays, *args, method=method)
        finally:
            self.busy -= 1

    @property
    def local_max_rows(self) -> int:
        return self.backend.settings.gateway_inprocess_max_rows

    async def _predict_in_process(
        self, names: Sequence[str], arrays: Sequence[np.ndarray], *args: Any, method: str
    ) -> Any:
        """An idle cluster and a small batch: predicting here costs less than the round trip
        to a worker; under load (anything in flight) batches go to the workers."""
        host, loop = self.local, asyncio.get_running_loop()
        assert host is not None
        self.busy += 1
        try:
            output = await loop.run_in_executor(
                self.backend.pool, getattr(host, method), names, arrays, *args
            )
        finally:
            self.busy -= 1
        if self.on_inprocess is not None:
            self.on_inprocess()
        return output

    async def _predict_on_workers(
        self, names: Sequence[str], arrays: Sequence[np.ndarray], *args: Any, method: str
    ) -> Any:
        tried: set[str] = set()
        for attempt in range(2):
            replica = await self._pick(tried)
            tried.add(replica.address)
            replica.inflight += 1
            try:
                return await self._call(replica, names, arrays, *args, method=method)
            except _WorkerLost as exc:
                self._drop(replica.address)
                if attempt == 1:
                    raise Unavailable(f"no worker could predict the batch: {exc}") from None
                log.warning("retrying a batch of %s elsewhere: %s", self.uri, exc)
            finally:
                replica.inflight -= 1
        raise AssertionError("unreachable")

    async def _pick(self, tried: set[str]) -> _Replica:
        candidates = [r for a, r in self.replicas.items() if a not in tried]
        if candidates:
            return min(candidates, key=lambda r: r.inflight)
        for address in await self.backend.workers():  # reload on a worker that does not hold it
            if address not in tried and address not in self.replicas:
                try:
                    return await self.add_replica(address)
                except Exception as exc:
                    log.warning("cannot load %s on %s: %s", self.uri, address, exc)
        raise Unavailable(f"no worker holds {self.uri}; retry when the cluster has recovered")

    async def _call(
        self,
        replica: _Replica,
        names: Sequence[str],
        arrays: Sequence[Any],
        *args: Any,
        method: str = "predict",
    ) -> Any:
        call = asyncio.ensure_future(
            _await(getattr(replica.actor, method)(list(names), list(arrays), *args))
        )
        deadline = (
            asyncio.get_running_loop().time() + self.backend.settings.gateway_request_timeout_s
        )
        try:
            while True:
                done, _ = await asyncio.wait({call}, timeout=0.25)
                if done:
                    break
                if replica.future.status != "finished" or replica.address not in set(
                    await self.backend.workers()
                ):
                    raise _WorkerLost(f"worker {replica.address} is gone")
                if asyncio.get_running_loop().time() > deadline:
                    raise _WorkerLost(f"worker {replica.address} did not answer in time")
        finally:
            if not call.done():
                call.cancel()
        try:
            return call.result()
        except concurrent.futures.CancelledError as exc:  # the lost worker's actor was released
            raise _WorkerLost(f"worker {replica.address}: its model was released") from exc
        except (OSError, RuntimeError) as exc:  # comm closed, "Worker holding Actor was lost"
            if _is_model_error(exc):
                raise
            raise _WorkerLost(f"worker {replica.address}: {exc}") from exc

    async def unload(self) -> None:
        self.local = None
        futures = [self.replicas.pop(address).future for address in list(self.replicas)]
        self.backend.discard(self)
        await self.backend.release(futures)


async def load_in_process(handle: _DaskHandle, settings: Settings) -> None:
    """Load the gateway's own copy of ``handle``'s model (``gateway_inprocess_max_rows`` > 0);
    without it every batch goes to the workers."""
    if settings.gateway_inprocess_max_rows <= 0:
        return
    try:
        handle.local = await asyncio.to_thread(ModelHost, handle.uri, settings, False)
    except Exception as exc:
        log.warning(
            "cannot load %s in the gateway; every batch goes to workers: %s", handle.uri, exc
        )


class _WorkerLost(Exception):
    pass


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _is_model_error(exc: BaseException) -> bool:
    return not isinstance(exc, OSError) and "Worker holding Actor was lost" not in str(exc)
