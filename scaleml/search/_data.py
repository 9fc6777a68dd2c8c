"""Putting a search's training blocks and test set on the cluster, as futures.

Training data stays in blocks on the workers (dask chunks or partitions, persisted; or a
``Dataset``'s training blocks, each read by a worker task). The test set, which like dask-ml's
must fit in one worker's memory, is concatenated on the workers, one copy per worker, so a
model is scored where it lives. The client never holds the data.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import dask.array as da
import numpy as np
from distributed import Client, Future, futures_of, wait

from scaleml.search._pins import PINNED, wait_pinned
from scaleml.search._tasks import concat_test_set, hold, read_blocks, read_test_set


@dataclass
class SearchData:
    """The data of one search, on the cluster."""

    train: list[Any]
    """One ``(X, y)`` per training block: a future of a pair, or a pair of futures."""
    tests: dict[str, Future]
    """A copy of the concatenated test set per worker address."""
    train_rows: list[int]
    futures: list[Future] = field(default_factory=list, repr=False)

    def test_on(self, worker: str) -> Future:
        """The copy of the test set on ``worker`` (any copy if it has none)."""
        return self.tests.get(worker) or next(iter(self.tests.values()))

    def release(self) -> None:
        """Drop this search's data from the cluster."""
        for future in chain(self.futures, self.tests.values()):
            future.release()
        self.futures, self.tests = [], {}


class Prefetcher:
    """Fetches training blocks to the workers that will train on them, ahead of the steps:
    a small task that depends on a block makes its worker fetch a copy while it computes."""

    def __init__(self, client: Client, data: SearchData, token: str) -> None:
        self.client = client
        self.data = data
        self.token = token
        parts = [xy if isinstance(xy, tuple) else (xy,) for xy in data.train]
        who_has = client.who_has([f for part in parts for f in part])
        self.holders = [
            frozenset.intersection(*(frozenset(who_has[f.key]) for f in part)) for part in parts
        ]
        """The workers that held each training block (all its parts) when the search began."""
        self._pending: dict[tuple[int, str], Future] = {}

    def fetch(self, into: dict[tuple[int, str], Future], block: int, worker: str) -> None:
        """Have ``worker`` fetch ``block`` unless it holds it, and keep the fetch in ``into``
        (the fetch is forgotten when that dict is)."""
        if worker in self.holders[block]:
            return
        where = (block, worker)
        future = self._pending.get(where)
        if future is None:
            future = self.client.submit(
                hold,
                self.data.train[block],
                key=f"prefetch-{self.token}-{uuid.uuid4().hex[:10]}",
                workers=[worker],
                allow_other_workers=True,
                priority=1,
            )
            self._pending[where] = future
        into[where] = future

    def forget(self, fetches: dict[tuple[int, str], Future]) -> None:
        """Drop ``fetches`` from the ones shared with later steps (a later step fetches
        again: the copy may be gone by then)."""
        for where in fetches:
            self._pending.pop(where, None)


def is_dataset(X: Any) -> bool:
    """Whether ``X`` is a scaleml ``Dataset`` (checked without importing dask.dataframe)."""
    from scaleml.data import Dataset

    return isinstance(X, Dataset)


def check_inputs(X: Any, y: Any) -> tuple[Any, Any]:
    """Validate ``X``/``y`` and turn in-memory arrays into one-block dask arrays."""
    if is_dataset(X):
        if y is not None:
            raise ValueError("y must be None when X is a Dataset (its target column is y)")
        if X.target is None:
            raise ValueError(f"{X!r} has no target column; adaptive searches score on one")
        if not X.validation_blocks:
            raise ValueError(
                f"{X!r} has no validation blocks to score on; "
                "create it with validation_fraction > 0 and at least two blocks"
            )
        return X, None
    if y is None:
        raise ValueError("y is required: the search scores models on a held-out part of (X, y)")
    X, y = _as_dask(X, "X"), _as_dask(y, "y")
    if isinstance(X, da.Array):
        if X.ndim != 2:
            raise ValueError(f"X must be 2-dimensional, got a dask array of shape {X.shape}")
        if isinstance(y, da.Array) and y.chunks[0] != X.chunks[0]:
            if any(np.isnan(c) for c in X.chunks[0]):
                raise ValueError("X and y must have the same row chunks; X's are unknown")
            y = y.rechunk({0: X.chunks[0]})
    if isinstance(X, da.Array) != isinstance(y, da.Array):
        raise ValueError(
            "X and y must both be dask arrays or both dask DataFrame/Series, got "
            f"{type(X).__name__} and {type(y).__name__}"
        )
    return X, y


def training_block_bytes(X: Any, y: Any, test_size: float) -> float:
    """The expected bytes of a training block of dask arrays ``X`` and ``y`` (before they are
    computed); infinite when unknown (DataFrames, unknown chunks, a ``Dataset``)."""
    total = 0.0
    for array in (X, y):
        if not isinstance(array, da.Array) or not math.isfinite(array.nbytes):
            return math.inf
        total += array.nbytes / max(array.numblocks[0], 1)
    return total * (1 - test_size)


def default_test_size(X: Any) -> float:
    """dask-ml's default: one block's share of the data, at most 20%."""
    blocks = len(X.train_blocks) + len(X.validation_blocks) if is_dataset(X) else X.npartitions
    return min(0.2, 1 / blocks)


def place(
    client: Client,
    X: Any,
    y: Any,
    *,
    test_size: float,
    random_states: Mapping[Hashable, Any],
    pinned: bool = True,
) -> dict[Hashable, SearchData]:
    """Put the training blocks and one copy of the test set per worker on the cluster, for
    each train/test split named in ``random_states`` (``{split: random_state}``, as dask-ml's
    ``train_test_split`` takes it; Hyperband's brackets each split with their own, as in
    dask-ml). With several splits the input is persisted first, so they share its blocks.
    ``pinned`` (for models that will follow the blocks): the input is persisted first and each
    block of a split is computed on the worker that holds its input block, so no block moves
    (the test set is then copied to every worker); otherwise one split is computed as one
    graph, its generation and split pipelined, where the scheduler likes. A ``Dataset`` has
    one split, its validation blocks, shared by all."""
    token = uuid.uuid4().hex[:8]
    workers = sorted(client.nthreads())
    if not workers:
        raise RuntimeError("the Dask cluster has no workers")
    if is_dataset(X):
        shared = _place_dataset(client, X, workers, token)
        return dict.fromkeys(random_states, shared)
    from dask_ml.model_selection import train_test_split

    homes: list[list[str] | None] | None = None
    if pinned or len(random_states) > 1:
        # The input's blocks first, once for every split; then, pinned, each split's blocks
        # are computed on the worker holding their input block (left to itself, the
        # scheduler may compute a block's split elsewhere, moving the input block there).
        X, y = client.persist([X, y])
        inputs = [f for f in _block_futures(X) if not any(f.key[2:])]  # one per row block
        homes = [None] * len(inputs)
        if pinned:
            wait(inputs)
            who_has = client.who_has(inputs)
            # Every holder of an input block: a second copy (left where its y was computed,
            # say) may be dropped by the Active Memory Manager before the split runs; the
            # scheduler then picks a holder that still has it.
            homes = [sorted(who_has.get(f.key, ())) or None for f in inputs]
    out = {}
    for n, (split, random_state) in enumerate(random_states.items()):
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_size, random_state=random_state, shuffle=True
        )
        if isinstance(X_train, da.Array) and X_train.ndim == 2 and X_train.numblocks[1] != 1:
            X_train, X_test = X_train.rechunk({1: -1}), X_test.rechunk({1: -1})
        collections = [X_train, y_train, X_test, y_test]
        if homes is None:
            parts = [_block_futures(c) for c in client.persist(collections)]
        else:
            # Pinned: work stealing would move the input blocks to idle workers.
            parts = _persist_at(client, collections, homes)
            wait_pinned(client, [f for part in parts for f in part], token)
        x_blocks, y_blocks, xt_blocks, yt_blocks = parts
        train = list(zip(x_blocks, y_blocks, strict=True))
        tests = {
            w: client.submit(
                concat_test_set,
                xt_blocks,
                yt_blocks,
                key=f"search-test-{token}-{n}-{i}",
                workers=[w],
                allow_other_workers=True,
            )
            for i, w in enumerate(workers)
        }
        rows = client.gather(
            [
                client.submit(len, b, pure=False, **_near(home))
                for b, home in zip(y_blocks, homes or [None] * len(y_blocks), strict=True)
            ]
        )
        _raise_errors(list(tests.values()))
        futures = [*x_blocks, *y_blocks, *xt_blocks, *yt_blocks]
        out[split] = SearchData(train, tests, list(rows), futures)
    return out


def _place_dataset(client: Client, dataset: Any, workers: list[str], token: str) -> SearchData:
    columns = (list(dataset.features), dataset.target, dataset.feature_dtype)
    train = [
        client.submit(
            read_blocks,
            [dataset.blocks[i]],
            *columns,
            key=f"search-block-{token}-{i}",
            workers=[workers[n % len(workers)]],
            allow_other_workers=True,
        )
        for n, i in enumerate(dataset.train_blocks)
    ]
    validation = [dataset.blocks[i] for i in dataset.validation_blocks]
    tests = {
        w: client.submit(
            read_test_set,
            validation,
            *columns,
            key=f"search-test-{token}-{n}",
            workers=[w],
            allow_other_workers=True,
        )
        for n, w in enumerate(workers)
    }
    rows = [getattr(dataset.blocks[i], "n_rows", 0) or 0 for i in dataset.train_blocks]
    _raise_errors([*train, *tests.values()])
    return SearchData(train, tests, rows, list(train))


def _persist_at(
    client: Client, collections: list[Any], homes: list[list[str] | None]
) -> list[list[Future]]:
    """Persist ``collections`` (each with ``len(homes)`` row blocks) block by block, block
    ``i`` pinned to the workers ``homes[i]`` (``scaleml.search._pins``); their block futures."""
    where: dict[tuple[str, ...] | None, list[tuple[int, int]]] = {}
    for i, home in enumerate(homes):
        where.setdefault(home and tuple(home), []).extend((c, i) for c in range(len(collections)))
    out: list[list[Any]] = [[None] * len(homes) for _ in collections]
    for home, places in where.items():
        blocks = [_block(collections[c], i) for c, i in places]
        if home is None:
            persisted = client.persist(blocks)
        else:
            persisted = client.persist(blocks, workers=list(home), **PINNED)
        for (c, i), block in zip(places, persisted, strict=True):
            out[c][i] = futures_of(block)[0]
    return out


def _near(home: list[str] | None) -> dict[str, Any]:
    """``Client.submit`` keywords to run a small task on one of ``home``'s workers if it can."""
    return {"workers": home, "allow_other_workers": True} if home else {}


def _block(collection: Any, i: int) -> Any:
    """Row block ``i`` of a dask array, DataFrame or Series, as a one-block collection."""
    return collection.blocks[i] if isinstance(collection, da.Array) else collection.partitions[i]


def _raise_errors(futures: Sequence[Future]) -> None:
    """Wait for ``futures``; raise the first one's error here (an unreadable file, a test
    set with NaNs), before any model is trained."""
    wait(futures)
    for future in futures:
        if future.status == "error":
            future.result()


def _block_futures(collection: Any) -> list[Future]:
    """A persisted collection's block futures, in block order (keys are ``(name, i, ...)``)."""
    futures = futures_of(collection)
    if len({f.key[0] for f in futures}) != 1:
        raise RuntimeError("expected the blocks of one persisted dask collection")
    return sorted(futures, key=lambda f: f.key[1:])


def _as_dask(data: Any, name: str) -> Any:
    import dask.dataframe as dd  # not at module level: workers import this package
    import pandas as pd

    if isinstance(data, da.Array | dd.DataFrame | dd.Series):
        return data
    if isinstance(data, pd.DataFrame | pd.Series):
        return dd.from_pandas(data, npartitions=1)
    if isinstance(data, np.ndarray | list):
        array = np.asarray(data)
        return da.from_array(array, chunks=array.shape)
    raise ValueError(
        f"{name} must be a dask array, a dask DataFrame/Series, a NumPy array or a scaleml "
        f"Dataset, got {type(data).__name__}"
    )
