"""Dynamic batching: gather the requests for one model into batches and answer every caller.

A batch is sent when it holds ``max_batch_size`` rows, or when the oldest queued request has
waited ``max_wait_ms``, whichever comes first; when no batch of the model is in flight the
queue is flushed at once (waiting would only add latency to an idle model). At most
``max_inflight`` batches run at a time. Every caller's future is resolved: with its own
result, or with the exception of its batch. A failing batch, or one whose output has the
wrong length, fails only its own callers; the loop lives on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(Exception):
    """The model's queue is full; the caller should retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BatcherClosed(Exception):
    """The batcher no longer accepts requests (it is draining or stopped)."""


class BatchSizeMismatch(RuntimeError):
    """The predict function returned a different number of results than it got requests."""


@dataclass(slots=True)
class _Entry:
    item: Any
    size: int
    future: asyncio.Future[Any]
    enqueued: float


class _Queue:
    """FIFO of pending entries that counts their rows and skips cancelled callers."""

    def __init__(self) -> None:
        self._entries: deque[_Entry] = deque()
        self.rows = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, entry: _Entry) -> None:
        self._entries.append(entry)
        self.rows += entry.size

    def oldest(self) -> _Entry | None:
        while self._entries and self._entries[0].future.done():  # timed out or cancelled
            self.rows -= self._entries.popleft().size
        return self._entries[0] if self._entries else None

    def prune(self) -> None:
        """Forget every entry whose caller is no longer waiting."""
        if any(entry.future.done() for entry in self._entries):
            self._entries = deque(e for e in self._entries if not e.future.done())
            self.rows = sum(e.size for e in self._entries)

    def take(self, max_rows: int) -> list[_Entry]:
        """Pop entries up to ``max_rows`` rows (always at least one entry)."""
        batch: list[_Entry] = []
        rows = 0
        while self._entries:
            entry = self._entries[0]
            if entry.future.done():
                self.rows -= self._entries.popleft().size
                continue
            if batch and rows + entry.size > max_rows:
                break
            self._entries.popleft()
            self.rows -= entry.size
            rows += entry.size
            batch.append(entry)
        return batch


class Batcher(Generic[T, R]):
    """Batches ``submit``-ted items for ``predict``, a coroutine function mapping a list of
    items to a sequence of results of the same length.

    Args:
        predict: ``async def predict(items: list[T]) -> Sequence[R]``.
        max_batch_size: rows per batch, at most (one larger request still goes alone).
        max_wait_ms: how long the oldest request may wait for a fuller batch while another
            batch is in flight.
        max_queue: queued requests beyond which ``submit`` raises :class:`QueueFull`.
        max_inflight: batches predicted at the same time, at most.
        on_batch: called with ``(rows, requests)`` of every batch sent, e.g. for metrics.
    """

    def __init__(
        self,
        predict: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        max_inflight: int = 1,
        on_batch: Callable[[int, int], object] | None = None,
    ) -> None:
        for name, value, low in (
            ("max_batch_size", max_batch_size, 1),
            ("max_queue", max_queue, 1),
            ("max_inflight", max_inflight, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not max_wait_ms >= 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms!r}")
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_ms = float(max_wait_ms)
        self.max_queue = max_queue
        self.max_inflight = max_inflight
        self._on_batch = on_batch
        self._queue = _Queue()
        self._inflight = 0
        self._changed: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._batch_tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def queue_depth(self) -> int:
        """Requests waiting to be batched."""
        return len(self._queue)

    @property
    def inflight(self) -> int:
        """Batches being predicted now."""
        return self._inflight

    async def submit(self, item: T, size: int = 1) -> R:
        """Queue ``item`` (``size`` rows) and return its result once its batch is predicted.

        Raises:
            QueueFull: the queue holds ``max_queue`` requests already.
            BatcherClosed: the batcher is draining or closed.
        """
        if self._closing:
            raise BatcherClosed("the model is being unloaded; retry")
        if len(self._queue) >= self.max_queue:
            self._queue.prune()  # callers that timed out free their places
        if len(self._queue) >= self.max_queue:
            raise QueueFull(f"the queue is full ({self.max_queue} requests waiting); retry later")
        loop = asyncio.get_running_loop()
        if self._loop_task is None:
            self._changed = asyncio.Event()
            self._loop_task = loop.create_task(self._run())
        future: asyncio.Future[R] = loop.create_future()
        self._queue.put(_Entry(item, size, future, loop.time()))
        self._wake()
        return await future

    async def close(self) -> None:
        """Stop accepting requests, finish the queued and in-flight ones, stop the loop."""
        self._closing = True
        while self._loop_task is not None and (self._queue.oldest() or self._inflight):
            assert self._changed is not None
            self._changed.clear()
            await self._changed.wait()
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def _run(self) -> None:
        while True:
            while self._inflight >= self.max_inflight:
                await self._wait_for_change(None)
            batch = await self._next_batch()
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._process(batch))
            self._batch_tasks.add(task)
            task.add_done_callback(self._batch_tasks.discard)

    async def _next_batch(self) -> list[_Entry]:
        loop = asyncio.get_running_loop()
        while True:
            oldest = self._queue.oldest()
            timeout: float | None = None
            if oldest is not None:
                if self._inflight == 0 or self._queue.rows >= self.max_batch_size:
                    return self._queue.take(self.max_batch_size)
                timeout = oldest.enqueued + self.max_wait_ms / 1000 - loop.time()
                if timeout <= 0:
                    return self._queue.take(self.max_batch_size)
            await self._wait_for_change(timeout)

    async def _wait_for_change(self, timeout: float | None) -> None:
        assert self._changed is not None
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def _process(self, batch: list[_Entry]) -> None:
        try:
            if self._on_batch is not None:
                self._on_batch(sum(e.size for e in batch), len(batch))
            results = await self._predict([entry.item for entry in batch])
            if len(results) != len(batch):
                raise BatchSizeMismatch(
                    f"predict returned {len(results)} results for {len(batch)} requests"
                )
            for entry, result in zip(batch, results, strict=True):
                if not entry.future.done():
                    entry.future.set_result(result)
        except Exception as exc:
            _fail(batch, exc)
        except BaseException:
            _fail(batch, BatcherClosed("the batcher stopped before this batch finished"))
            raise
        finally:
            self._inflight -= 1
            self._wake()


def _fail(batch: list[_Entry], exc: BaseException) -> None:
    for entry in batch:
        if not entry.future.done():
            entry.future.set_exception(exc)
