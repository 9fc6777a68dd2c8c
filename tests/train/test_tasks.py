"""``fit_blocks``, the worker task of incremental training, run directly (no cluster)."""

import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import SGDClassifier

from scaleml.data import Dataset
from scaleml.train._tasks import BlockColumns, ModelState, fit_blocks

COLUMNS = BlockColumns(["a", "b"], "y", np.dtype("float64"))


@dataclass
class _Log:
    """What the fake blocks and the fake estimator did, in order, from both threads."""

    events: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    read_started: dict[int, threading.Event] = field(default_factory=dict)

    def add(self, what: str, index: int) -> None:
        with self.lock:
            self.events.append((what, index))


@dataclass(frozen=True)
class _FakeBlock:
    index: int
    log: _Log
    fail: bool = False

    def read(self, columns: list[str]) -> pd.DataFrame:
        self.log.add("read", self.index)
        self.log.read_started.setdefault(self.index, threading.Event()).set()
        if self.fail:
            raise OSError(f"cannot read block {self.index}")
        rows = 3
        return pd.DataFrame({"a": [float(self.index)] * rows, "b": 1.0, "y": 0})


class _Recorder:
    """An estimator that logs each ``partial_fit``; it can wait for the next block's read."""

    def __init__(self, log: _Log, wait_for_next_read: bool) -> None:
        self.log = log
        self.wait_for_next_read = wait_for_next_read

    def __deepcopy__(self, memo: dict) -> "_Recorder":
        return _Recorder(self.log, self.wait_for_next_read)

    def partial_fit(self, x: np.ndarray, y: np.ndarray) -> None:
        index = int(x[0, 0])
        self.log.add("fit", index)
        if self.wait_for_next_read:
            following = self.log.read_started.setdefault(index + 1, threading.Event())
            assert following.wait(timeout=10), f"block {index + 1} not read during fit {index}"
        self.log.add("fitted", index)


def test_blocks_are_fitted_in_order_as_a_plain_loop_would(classification: Dataset) -> None:
    estimator = SGDClassifier(random_state=2)
    order = [3, 0, 7, 1, 5]
    blocks = [classification.blocks[i] for i in order]
    columns = BlockColumns(classification.features, "target", classification.feature_dtype)
    state = ModelState(estimator, rows_seen=10, partial_fit_calls=1)
    reference = clone(estimator)
    for index in order:
        x, y = classification.read_xy(index)
        reference.partial_fit(x, y, classes=[0, 1])
    for prefetch in (1, 2, 4, 10):
        fitted = fit_blocks(state, blocks, columns, np.array([0, 1]), prefetch=prefetch)
        np.testing.assert_array_equal(fitted.estimator.coef_, reference.coef_)
        np.testing.assert_array_equal(fitted.estimator.intercept_, reference.intercept_)
        assert fitted.rows_seen == 10 + 5 * 6_000
        assert fitted.partial_fit_calls == 1 + 5
    assert not hasattr(estimator, "coef_")  # the input state is left as it was


@pytest.mark.parametrize("prefetch", [1, 2, 3])
def test_at_most_prefetch_blocks_are_in_memory(prefetch: int) -> None:
    log = _Log()
    blocks = [_FakeBlock(i, log) for i in range(8)]
    fitted = fit_blocks(ModelState(_Recorder(log, False)), blocks, COLUMNS, None, prefetch=prefetch)
    assert fitted.partial_fit_calls == 8 and fitted.rows_seen == 24
    assert [i for what, i in log.events if what == "fit"] == list(range(8))
    held = 0  # blocks read and not yet fitted, plus the one being read
    for what, _ in log.events:
        held += {"read": 1, "fitted": -1, "fit": 0}[what]
        assert held <= prefetch, log.events


def test_the_next_block_is_read_while_the_current_one_is_fitted() -> None:
    log = _Log()
    blocks = [_FakeBlock(i, log) for i in range(5)]
    # Each fit returns only once the next block's read has started (there is no block 5).
    log.read_started[5] = threading.Event()
    log.read_started[5].set()
    fitted = fit_blocks(ModelState(_Recorder(log, True)), blocks, COLUMNS, None, prefetch=2)
    assert fitted.partial_fit_calls == 5


def test_a_failed_read_reaches_the_caller() -> None:
    log = _Log()
    blocks = [_FakeBlock(0, log), _FakeBlock(1, log, fail=True), _FakeBlock(2, log)]
    with pytest.raises(OSError, match="cannot read block 1"):
        fit_blocks(ModelState(_Recorder(log, False)), blocks, COLUMNS, None, prefetch=2)
    assert ("fit", 1) not in log.events
