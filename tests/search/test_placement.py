"""Models travel to the data: on a cluster of 4 worker processes, a search moves its models'
states between workers, not its training blocks (distributed's own transfer counters), and
still trains the models dask-ml would; incremental training reads its blocks where the model
is and moves none."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from dask_ml.datasets import make_classification
from distributed import Client, LocalCluster, get_task_stream, wait
from sklearn.base import clone
from sklearn.linear_model import SGDClassifier

from scaleml.data import Dataset
from scaleml.search import HyperbandSearchCV, IncrementalSearchCV, observe
from scaleml.search._data import training_block_bytes
from scaleml.search._placement import (
    BLOCKS,
    MODELS,
    dealt_utilization,
    follows_blocks,
    initial_mode,
    traveling_batches,
    traveling_utilization,
)
from scaleml.search._tasks import TrialState
from scaleml.train import train_incremental
from tests.search.conftest import PARAMS

MODEL = SGDClassifier(tol=1e-3, penalty="elasticnet", random_state=0)
ROWS, BLOCK_ROWS, FEATURES = 60_000, 10_000, 20
"""6 blocks of 1.6 MB (1.3 MB of training rows each after the split): large enough that the
models follow them (``_placement.MIN_BLOCK_BYTES``)."""


@pytest.fixture(scope="module")
def four_workers() -> Iterator[Client]:
    """4 small worker processes, one thread each: what a 4-machine cluster looks like."""
    with (
        LocalCluster(
            n_workers=4,
            threads_per_worker=1,
            processes=True,
            memory_limit="1GiB",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def xy(four_workers: Client) -> tuple[Any, Any]:
    X, y = make_classification(
        n_samples=ROWS, n_features=FEATURES, n_informative=5, chunks=BLOCK_ROWS, random_state=3
    )
    X, y = four_workers.persist([X, y])
    wait([X, y])
    return X, y


def moved_bytes(client: Client) -> float:
    """Bytes the workers have sent so far, to each other and to the client (distributed's
    counters)."""

    def sent(dask_worker: Any) -> float:
        return float(dask_worker.transfer_outgoing_bytes_total)

    return sum(client.run(sent).values())


def measured_fit(client: Client, search: Any, X: Any, y: Any) -> float:
    before = moved_bytes(client)
    search.fit(X, y, classes=[0, 1])
    return moved_bytes(client) - before


def state_bytes(search: Any) -> float:
    """The bytes of one model state as Dask counts them, for the search's best model."""
    from dask.sizeof import sizeof

    return float(sizeof(TrialState(search.best_estimator_, 0)))


@pytest.fixture(scope="module")
def incremental(four_workers: Client, xy: tuple[Any, Any]) -> tuple[Any, float]:
    search = IncrementalSearchCV(
        MODEL, PARAMS, n_initial_parameters=8, max_iter=15, random_state=5, decay_rate=None
    )
    return search, measured_fit(four_workers, search, *xy)


def test_a_search_moves_model_states_not_blocks(incremental: tuple[Any, float]) -> None:
    search, moved = incremental
    train_bytes = ROWS * 5 / 6 * (FEATURES + 1) * 8
    test_bytes = ROWS / 6 * (FEATURES + 1) * 8
    calls = sum(h[-1]["partial_fit_calls"] for h in search.model_history_.values())
    assert calls == 8 * 15
    # States x calls, plus the test set: one copy per worker, gathered from its 6 blocks
    # (0.8 x the training data here, with a test set of 1/6 of the rows on 4 workers).
    bound = state_bytes(search) * calls + 4 * test_bytes
    assert moved <= bound, (moved, bound)
    assert moved - 4 * test_bytes < 0.1 * train_bytes  # fetching blocks was ~3 x train_bytes


def test_models_that_travel_are_the_models_dask_ml_trains(
    incremental: tuple[Any, float], xy: tuple[Any, Any]
) -> None:
    """dask-ml's procedure replayed by hand: same samples, split, block order, scores."""
    from dask_ml.model_selection import train_test_split
    from sklearn.model_selection import ParameterSampler

    search, _ = incremental
    X_train, X_test, y_train, y_test = train_test_split(
        *xy, test_size=1 / 6, random_state=5, shuffle=True
    )
    blocks = [
        (a.compute(), b.compute()) for a, b in zip(X_train.blocks, y_train.blocks, strict=True)
    ]
    X_test, y_test = X_test.compute(), y_test.compute()
    rng = np.random.RandomState(5)
    order: list[int] = []
    while len(order) < 15:
        passes = list(range(len(blocks)))
        rng.shuffle(passes)
        order.extend(passes)
    expected = []
    for params in ParameterSampler(PARAMS, 8, random_state=5):
        model = clone(MODEL).set_params(**params)
        for call in range(15):
            model.partial_fit(*blocks[order[call]], classes=[0, 1])
        expected.append(model.score(X_test, y_test))
    assert list(search.cv_results_["test_score"]) == expected


def test_hyperband_with_scored_decisions_moves_model_states_not_blocks(
    four_workers: Client, xy: tuple[Any, Any]
) -> None:
    """Hyperband's decisions depend on the scores (and its brackets split the data each
    their own way): still only states and test sets move, and every model reports each
    round in order."""
    records: list[dict[str, Any]] = []
    search = observe(
        HyperbandSearchCV(MODEL, PARAMS, max_iter=4, random_state=0), on_record=records.append
    )
    moved = measured_fit(four_workers, search, *xy)
    calls = sum(h[-1]["partial_fit_calls"] for h in search.model_history_.values())
    brackets = len(search.metadata_["brackets"])
    test_bytes = ROWS / 6 * (FEATURES + 1) * 8
    y_bytes = ROWS * 8  # each bracket's split may fetch an input y block to its X block
    bound = state_bytes(search) * calls + brackets * (4 * test_bytes + y_bytes)
    assert moved <= bound, (moved, bound)
    assert calls == search.metadata_["partial_fit_calls"]
    for history in search.model_history_.values():
        steps = [r["partial_fit_calls"] for r in history]
        assert steps == sorted(steps)


def test_incremental_training_reads_its_blocks_where_the_model_is(
    four_workers: Client, classification: Dataset
) -> None:
    """The model goes from task to task; every block is read from storage by the worker
    that trains on it: no block crosses between workers."""
    before = moved_bytes(four_workers)
    result = train_incremental(
        SGDClassifier(random_state=0),
        classification,
        epochs=2,
        client=four_workers,
        classes=[0, 1],
        random_state=0,
        blocks_per_task=2,
    )
    moved = moved_bytes(four_workers) - before
    block_bytes = classification.n_rows / classification.n_blocks * 9 * 8
    assert len(result.history) == 2
    assert moved < block_bytes / 4, (moved, block_bytes)


def stealing_runs(dask_scheduler: Any) -> bool:
    """On the scheduler: whether its work stealing is on."""
    callback = dask_scheduler.periodic_callbacks.get("stealing")
    return callback is not None and callback.is_running()


def where_it_ran(seconds: float) -> str:
    from distributed import get_worker

    time.sleep(seconds)
    return get_worker().address


def test_searches_leave_work_stealing_on_for_other_work(
    four_workers: Client, xy: tuple[Any, Any]
) -> None:
    """Two searches at once, one cancelled mid-way: meanwhile another user's tasks, all
    queued on one worker, are still spread by work stealing, and stealing is on after."""
    assert four_workers.run_on_scheduler(stealing_runs)
    small = {"n_initial_parameters": 4, "max_iter": 6, "random_state": 1, "decay_rate": None}
    finished: list[Any] = []
    background = threading.Thread(
        target=lambda: finished.append(
            IncrementalSearchCV(MODEL, PARAMS, **small).fit(*xy, classes=[0, 1])
        )
    )
    seen: dict[str, Any] = {}

    def other_users_work_then_cancel(record: dict[str, Any]) -> None:
        if record["partial_fit_calls"] < 2:
            return
        with Client(four_workers.scheduler.address) as other:
            victim = sorted(other.nthreads())[0]
            futures = [
                other.submit(
                    where_it_ran, 0.05, workers=[victim], allow_other_workers=True, pure=False
                )
                for _ in range(60)
            ]
            seen["workers"] = set(other.gather(futures))
        seen["stealing"] = four_workers.run_on_scheduler(stealing_runs)
        raise KeyboardInterrupt  # as a cancelled job's callback does

    background.start()
    cancelled = observe(
        IncrementalSearchCV(MODEL, PARAMS, **small), on_record=other_users_work_then_cancel
    )
    with pytest.raises(KeyboardInterrupt):
        cancelled.fit(*xy, classes=[0, 1])
    background.join(timeout=120)
    assert finished and list(finished[0].cv_results_["partial_fit_calls"]) == [6] * 4
    assert seen["stealing"] and len(seen["workers"]) > 1, seen
    assert four_workers.run_on_scheduler(stealing_runs)


@pytest.mark.parametrize(
    ("n_models", "workers", "block_bytes", "expected"),
    [
        # The tutorial's 10 models in 4 traveling batches keep 2 workers busy ~0.8 of the
        # time; dealt 5 and 5 they keep both busy, for one copy of the data per pass.
        (10, 2, 16e6, BLOCKS),
        (4, 2, 16e6, BLOCKS),
        # 3 models: one worker gets 2, the other 1, no better than traveling.
        (3, 2, 16e6, MODELS),
        # 81 models in 11 batches keep the workers busy.
        (81, 2, 16e6, MODELS),
        # Past two workers the copies grow with the cluster: the models travel.
        (10, 8, 16e6, MODELS),
        (8, 4, 16e6, MODELS),
        (10, 3, 16e6, MODELS),
        # Blocks under 1 MiB always travel.
        (81, 8, 100e3, BLOCKS),
    ],
)
def test_a_search_chooses_what_travels_by_workers_models_and_block_size(
    n_models: int, workers: int, block_bytes: float, expected: str
) -> None:
    assert initial_mode([n_models], workers, block_bytes) == expected


def test_the_modelled_idle_time_of_traveling_batches_is_the_drivers() -> None:
    """The batches the driver cuts (2 per worker, at most 8 models each), and the busy share
    the choice expects of them."""
    assert traveling_batches(10, 2) == 4
    assert traveling_batches(81, 2) == 11
    assert traveling_batches(10, 8) == 10
    assert traveling_utilization([10], 2) == pytest.approx(0.8)
    # Groups train at once: Hyperband's 5 brackets on 2 workers, 11 + 5 + 4 + 4 + 4 batches.
    assert traveling_utilization([81, 34, 15, 8, 5], 2) == pytest.approx(28 / 29)
    assert initial_mode([81, 34, 15, 8, 5], 2, 16e6) == MODELS
    assert initial_mode([8], 2, 16e6) == BLOCKS
    assert dealt_utilization(10, 2) == 1.0
    assert dealt_utilization(3, 2) == 0.75


@pytest.fixture(scope="module")
def large_blocks() -> tuple[Any, Any]:
    """4 blocks of 1.4 MB: large enough to follow."""
    return make_classification(
        n_samples=36_000, n_features=20, n_informative=5, chunks=9_000, random_state=5
    )


def fetched_blocks(client: Client, search: Any, xy: tuple[Any, Any]) -> list[str]:
    with get_task_stream(client) as stream:
        search.fit(*xy, classes=[0, 1])
    return [str(t["key"]) for t in stream.data if str(t["key"]).startswith("prefetch-")]


def test_on_two_workers_four_models_stay_put_and_the_blocks_travel(
    client: Client, large_blocks: tuple[Any, Any]
) -> None:
    """The default on two workers for few models: the blocks travel (fetched ahead), and the
    models trained are the ones that travel with ``placement="models"`` (which fetches no
    block)."""
    options = {"n_initial_parameters": 4, "max_iter": 6, "random_state": 0, "decay_rate": None}
    auto = IncrementalSearchCV(MODEL, PARAMS, **options)
    traveling = IncrementalSearchCV(MODEL, PARAMS, placement="models", **options)
    assert fetched_blocks(client, auto, large_blocks)
    assert not fetched_blocks(client, traveling, large_blocks)
    assert list(auto.cv_results_["test_score"]) == list(traveling.cv_results_["test_score"])
    assert auto.best_params_ == traveling.best_params_


@pytest.mark.parametrize("placement", ["model", "", None, 2])
def test_an_unknown_placement_is_refused_before_any_work(
    client: Client, small_xy: tuple[Any, Any], placement: Any
) -> None:
    search = HyperbandSearchCV(MODEL, PARAMS, max_iter=3, placement=placement)
    with get_task_stream(client) as stream, pytest.raises(ValueError, match="placement must be"):
        search.fit(*small_xy, classes=[0, 1])
    assert not stream.data


def test_the_split_is_pinned_only_for_a_search_with_a_group_that_follows_its_blocks() -> None:
    assert not follows_blocks("auto", [10], 2, 16e6)  # the tutorial on two workers
    assert follows_blocks("auto", [81, 34, 15, 8, 5], 2, 16e6)  # Hyperband's first bracket
    assert follows_blocks("auto", [10], 8, 16e6)
    assert not follows_blocks("auto", [10], 8, 100e3)
    assert not follows_blocks("auto", [2, 2], 2, 16e6)  # two groups, 4 batches in all
    assert follows_blocks("auto", [4, 4], 2, 16e6)  # 8 batches
    assert follows_blocks("models", [3], 2, 100e3)
    assert not follows_blocks("blocks", [81], 8, 16e6)


def test_a_training_block_is_sized_before_it_is_computed() -> None:
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

    X = da.zeros((1_000, 10), chunks=(250, 10))
    y = da.zeros(1_000, chunks=250)
    assert training_block_bytes(X, y, test_size=0.2) == (250 * 10 * 8 + 250 * 8) * 0.8
    frame = dd.from_pandas(pd.DataFrame({"a": range(10)}), npartitions=2)
    assert training_block_bytes(frame, y, test_size=0.2) == float("inf")
    unknown = da.zeros((1_000, 10), chunks=(250, 10))[da.zeros(1_000, chunks=250) > 0]
    assert training_block_bytes(unknown, y, test_size=0.2) == float("inf")
