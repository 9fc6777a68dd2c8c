"""The batcher on its own: no server, no cluster; waits on events, not sleeps."""

from __future__ import annotations

import asyncio

import pytest

from scaleml.gateway._batcher import Batcher, BatchSizeMismatch, QueueFull

WAIT = 5.0  # seconds; every await is bounded


class Recorder:
    """A predict function that records its batches and can be held until released."""

    def __init__(self, hold: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.called = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.called.set()
        await self.release.wait()
        return [item * 10 for item in items]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT * 4))


def test_an_idle_model_predicts_a_lone_request_at_once_without_waiting() -> None:
    async def scenario() -> None:
        predict = Recorder()
        batcher = Batcher(predict, max_batch_size=64, max_wait_ms=60_000, max_queue=10)
        assert await asyncio.wait_for(batcher.submit(4), WAIT) == 40
        assert predict.batches == [[4]]
        await batcher.close()

    run(scenario())


def test_requests_queued_behind_a_busy_batch_go_together_and_each_gets_its_own_result() -> None:
    async def scenario() -> None:
        predict = Recorder(hold=True)
        batcher = Batcher(
            predict, max_batch_size=5, max_wait_ms=60_000, max_queue=100, max_inflight=2
        )
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.wait_for(predict.called.wait(), WAIT)
        predict.called.clear()
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 8)]
        # The second slot is free but the batch waits until it is full (5 rows): max_wait is long.
        await asyncio.wait_for(predict.called.wait(), WAIT)
        assert predict.batches == [[0], [1, 2, 3, 4, 5]]
        predict.release.set()
        results = await asyncio.wait_for(asyncio.gather(first, *rest), WAIT)
        assert results == [i * 10 for i in range(8)]
        assert predict.batches[2:] == [[6, 7]]
        await batcher.close()

    run(scenario())


def test_the_oldest_request_is_flushed_after_max_wait_ms_even_if_the_batch_is_not_full() -> None:
    async def scenario() -> None:
        predict = Recorder(hold=True)
        batcher = Batcher(
            predict, max_batch_size=100, max_wait_ms=20, max_queue=100, max_inflight=2
        )
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.wait_for(predict.called.wait(), WAIT)
        predict.called.clear()
        second = asyncio.ensure_future(batcher.submit(2))
        await asyncio.wait_for(predict.called.wait(), WAIT)  # sent on time, first still busy
        assert predict.batches == [[1], [2]]
        predict.release.set()
        assert await asyncio.wait_for(asyncio.gather(first, second), WAIT) == [10, 20]
        await batcher.close()

    run(scenario())


def test_rows_count_toward_the_batch_size_and_a_big_request_goes_alone() -> None:
    async def scenario() -> None:
        predict = Recorder(hold=True)
        batcher = Batcher(
            predict, max_batch_size=10, max_wait_ms=60_000, max_queue=100, max_inflight=2
        )
        blocker = asyncio.ensure_future(batcher.submit(0))
        await asyncio.wait_for(predict.called.wait(), WAIT)
        predict.called.clear()
        big = asyncio.ensure_future(batcher.submit(1, size=25))
        await asyncio.wait_for(predict.called.wait(), WAIT)
        assert predict.batches[1] == [1]
        predict.release.set()
        assert await asyncio.wait_for(asyncio.gather(blocker, big), WAIT) == [0, 10]
        await batcher.close()

    run(scenario())


def test_a_full_queue_refuses_at_once_with_a_retry_hint() -> None:
    async def scenario() -> None:
        predict = Recorder(hold=True)
        batcher = Batcher(predict, max_batch_size=1, max_wait_ms=0, max_queue=2)
        busy = asyncio.ensure_future(batcher.submit(0))
        await asyncio.wait_for(predict.called.wait(), WAIT)
        queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)  # let both enqueue
        with pytest.raises(QueueFull) as refused:
            await asyncio.wait_for(batcher.submit(3), WAIT)
        assert refused.value.retry_after_s >= 1
        predict.release.set()
        assert await asyncio.wait_for(asyncio.gather(busy, *queued), WAIT) == [0, 10, 20]
        await batcher.close()

    run(scenario())


def test_a_failing_batch_fails_only_its_callers_and_the_loop_lives_on() -> None:
    async def scenario() -> None:
        async def predict(items: list[int]) -> list[int]:
            if -1 in items:
                raise ValueError("boom")
            return items

        batcher = Batcher(predict, max_batch_size=1, max_wait_ms=0, max_queue=10)
        with pytest.raises(ValueError, match="boom"):
            await asyncio.wait_for(batcher.submit(-1), WAIT)
        assert await asyncio.wait_for(batcher.submit(7), WAIT) == 7
        await batcher.close()

    run(scenario())


def test_an_output_of_the_wrong_length_fails_its_batch_and_not_the_next() -> None:
    async def scenario() -> None:
        async def predict(items: list[int]) -> list[int]:
            return [] if items == [0] else items

        batcher = Batcher(predict, max_batch_size=4, max_wait_ms=0, max_queue=10)
        with pytest.raises(BatchSizeMismatch, match="0 results for 1 requests"):
            await asyncio.wait_for(batcher.submit(0), WAIT)
        assert await asyncio.wait_for(batcher.submit(3), WAIT) == 3
        await batcher.close()

    run(scenario())


def test_in_flight_batches_are_bounded() -> None:
    async def scenario() -> None:
        predict = Recorder(hold=True)
        batcher = Batcher(predict, max_batch_size=1, max_wait_ms=0, max_queue=10, max_inflight=2)
        futures = [asyncio.ensure_future(batcher.submit(i)) for i in range(4)]
        while len(predict.batches) < 2:
            predict.called.clear()
            await asyncio.wait_for(predict.called.wait(), WAIT)
        for _ in range(5):
            await asyncio.sleep(0)
        assert batcher.inflight == 2 and len(predict.batches) == 2 and batcher.queue_depth == 2
        predict.release.set()
        assert await asyncio.wait_for(asyncio.gather(*futures), WAIT) == [0, 10, 20, 30]
        await batcher.close()

    run(scenario())


def test_a_caller_that_gave_up_is_skipped_and_close_drains_the_rest() -> None:
    async def scenario() -> None:
        predict = Recorder(hold=True)
        batcher = Batcher(
            predict, max_batch_size=10, max_wait_ms=60_000, max_queue=10, max_inflight=2
        )
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.wait_for(predict.called.wait(), WAIT)
        gave_up = asyncio.ensure_future(batcher.submit(2))
        kept = asyncio.ensure_future(batcher.submit(3))
        await asyncio.sleep(0)
        gave_up.cancel()
        closing = asyncio.ensure_future(batcher.close())
        predict.release.set()
        await asyncio.wait_for(closing, WAIT)
        assert await first == 10 and await kept == 30
        assert [3] in predict.batches and all(2 not in b for b in predict.batches)

    run(scenario())


def test_callers_that_gave_up_free_their_places_in_the_queue() -> None:
    async def scenario() -> None:
        predict = Recorder(hold=True)
        batcher = Batcher(predict, max_batch_size=1, max_wait_ms=0, max_queue=1)
        busy = asyncio.ensure_future(batcher.submit(0))
        await asyncio.wait_for(predict.called.wait(), WAIT)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.submit(1), 0.01)
        queued = asyncio.ensure_future(batcher.submit(2))  # not refused: the place is free
        predict.release.set()
        assert await asyncio.wait_for(asyncio.gather(busy, queued), WAIT) == [0, 20]
        assert [1] not in predict.batches
        await batcher.close()

    run(scenario())


@pytest.mark.parametrize(
    ("knob", "value"),
    [("max_batch_size", 0), ("max_queue", 0), ("max_inflight", 0), ("max_wait_ms", -1)],
)
def test_knobs_are_validated_where_they_enter(knob: str, value: float) -> None:
    knobs = {"max_batch_size": 8, "max_wait_ms": 1.0, "max_queue": 8, "max_inflight": 1}
    knobs[knob] = value

    async def predict(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError, match=knob):
        Batcher(predict, **knobs)
