"""Placing boosting data on the workers: one training part per worker, read or gathered there.

Distributed XGBoost and LightGBM train on whatever partitions each worker holds. Here every
worker that takes part gets exactly one training part (its share of the training blocks, read
by a task pinned to it, so the client never holds the data), and the validation set is either
spread over the same workers (XGBoost: its evaluation metrics are all-reduced across workers)
or copied whole to each of them (LightGBM: every worker evaluates its local validation rows
and decides early stopping on its own, so all of them must see the same rows, or they stop at
different rounds and the training hangs; lightgbm/LightGBM#6351).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, Future, wait

from scaleml.data import Block, Dataset
from scaleml.data._checks import check_frame
from scaleml.errors import TrainingError


@dataclass
class PlacedData:
    """Training and validation data held on the workers, as futures and as dask collections."""

    X: Any
    y: Any
    X_val: Any | None
    y_val: Any | None
    validation_parts: list[tuple[Future, Future]]
    """One copy of the validation set, as ``(X part, y part)`` futures, for scoring."""
    features: list[str] | None
    workers: list[str]
    futures: list[Future] = field(default_factory=list, repr=False)

    @property
    def first_part(self) -> Future:
        """The first worker's training features (a source of example rows)."""
        return self.futures[0]

    def release(self) -> None:
        """Drop this placement's data from the cluster."""
        for future in self.futures:
            future.release()
        self.futures = []


def place_dataset(client: Client, dataset: Dataset, *, replicate_validation: bool) -> PlacedData:
    """Read ``dataset``'s training blocks on the workers, one part per worker, and its
    validation blocks spread over those workers or copied to each of them."""
    workers = _worker_addresses(client)
    shares = [dataset.train_blocks[k :: len(workers)] for k in range(len(workers))]
    used = [(worker, share) for worker, share in zip(workers, shares, strict=True) if share]
    columns = dataset.columns
    meta = dataset.meta
    features, target = list(dataset.features), dataset.target
    futures: list[Future] = []

    def read(blocks: list[int], worker: str) -> tuple[Future, Future]:
        frame = client.submit(
            _read_blocks,
            [dataset.blocks[i] for i in blocks],
            columns,
            features,
            target,
            workers=[worker],
            pure=False,
        )
        x = client.submit(operator.getitem, frame, features, workers=[worker], pure=False)
        y = client.submit(operator.getitem, frame, target, workers=[worker], pure=False)
        futures.extend([x, y])
        return x, y

    train = [read(share, worker) for worker, share in used]
    validation: list[tuple[Future, Future]] = []
    if dataset.validation_blocks:
        if replicate_validation:
            validation = [read(dataset.validation_blocks, worker) for worker, _ in used]
        else:
            spread = [dataset.validation_blocks[k :: len(used)] for k in range(len(used))]
            # Fewer validation blocks than workers: only some workers hold validation rows.
            validation = [
                read(blocks, worker)
                for (worker, _), blocks in zip(used, spread, strict=True)
                if blocks
            ]
    return _collections(
        train,
        validation,
        meta[features],
        meta[target],
        replicate_validation,
        features,
        [worker for worker, _ in used],
        futures,
    )


def place_collections(
    client: Client,
    X: Any,
    y: Any,
    eval_set: tuple[Any, Any] | None,
    *,
    replicate_validation: bool,
) -> PlacedData:
    """Compute dask collections ``X``, ``y`` (and the validation pair) on the workers and
    gather each worker's training partitions into one part there."""
    x_parts, y_parts = _partitions(X, "X"), _partitions(y, "y")
    if len(x_parts) != len(y_parts):
        raise TrainingError(
            f"X and y must have the same partitions, got {len(x_parts)} and {len(y_parts)}"
        )
    computed_x = client.compute(x_parts)
    computed_y = client.compute(y_parts)
    wait(computed_x + computed_y)
    for part in computed_x + computed_y:
        if part.status == "error":
            part.result()
    where = client.who_has(computed_x)
    by_worker: dict[str, list[int]] = {}
    for index, part in enumerate(computed_x):
        by_worker.setdefault(sorted(where[part.key])[0], []).append(index)
    futures: list[Future] = []

    def gather_on(worker: str, xs: list[Future], ys: list[Future]) -> tuple[Future, Future]:
        x = client.submit(_concat, *xs, workers=[worker], pure=False)
        y_part = client.submit(_concat, *ys, workers=[worker], pure=False)
        futures.extend([x, y_part])
        return x, y_part

    workers = sorted(by_worker)
    train = [
        gather_on(w, [computed_x[i] for i in by_worker[w]], [computed_y[i] for i in by_worker[w]])
        for w in workers
    ]
    validation: list[tuple[Future, Future]] = []
    if eval_set is not None:
        X_val, y_val = eval_set
        vx = client.compute(_partitions(X_val, "eval_set X"))
        vy = client.compute(_partitions(y_val, "eval_set y"))
        if len(vx) != len(vy):
            raise TrainingError("eval_set's X and y must have the same partitions")
        if replicate_validation:
            validation = [gather_on(w, vx, vy) for w in workers]
        else:
            validation = [
                gather_on(workers[k], vx[k :: len(workers)], vy[k :: len(workers)])
                for k in range(min(len(workers), len(vx)))
            ]
        del vx, vy
    del computed_x, computed_y  # the gathered parts hold the data now
    features = [str(c) for c in X.columns] if isinstance(X, dd.DataFrame) else None
    return _collections(
        train, validation, X._meta, y._meta, replicate_validation, features, workers, futures
    )


def _collections(
    train: list[tuple[Future, Future]],
    validation: list[tuple[Future, Future]],
    x_meta: Any,
    y_meta: Any,
    replicated: bool,
    features: list[str] | None,
    workers: list[str],
    futures: list[Future],
) -> PlacedData:
    X, y = _collection([x for x, _ in train], x_meta), _collection([y for _, y in train], y_meta)
    X_val = y_val = None
    if validation:
        X_val = _collection([x for x, _ in validation], x_meta)
        y_val = _collection([y for _, y in validation], y_meta)
    return PlacedData(
        X=X,
        y=y,
        X_val=X_val,
        y_val=y_val,
        validation_parts=validation[:1] if replicated else validation,
        features=features,
        workers=workers,
        futures=futures,
    )


def _collection(parts: list[Future], meta: Any) -> Any:
    if isinstance(meta, pd.DataFrame | pd.Series):
        return dd.from_delayed(parts, meta=meta, verify_meta=False)
    client = parts[0].client
    lengths = client.gather([client.submit(len, part, pure=False) for part in parts])
    arrays = [
        da.from_delayed(part, shape=(rows, *meta.shape[1:]), dtype=meta.dtype)
        for part, rows in zip(parts, lengths, strict=True)
    ]
    return da.concatenate(arrays, axis=0)


def _partitions(collection: Any, name: str) -> list[Any]:
    if isinstance(collection, dd.DataFrame | dd.Series):
        return list(collection.to_delayed())
    if isinstance(collection, da.Array):
        if collection.ndim == 2 and collection.numblocks[1] != 1:
            collection = collection.rechunk({1: -1})
        return list(collection.to_delayed().ravel())
    raise TrainingError(
        f"{name} must be a dask array, dask DataFrame or dask Series, "
        f"got {type(collection).__name__}"
    )


def _worker_addresses(client: Client) -> list[str]:
    workers = sorted(client.nthreads())
    if not workers:
        raise TrainingError("the Dask cluster has no workers")
    return workers


def _read_blocks(
    blocks: list[Block], columns: list[str], features: list[str], target: str
) -> pd.DataFrame:
    frames = []
    for block in blocks:
        frame = block.read(columns)
        check_frame(block, frame, features, target)  # NaN features are missing values here
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _concat(*parts: Any) -> Any:
    if isinstance(parts[0], pd.DataFrame | pd.Series):
        return pd.concat(parts, ignore_index=True)
    return np.concatenate(parts, axis=0)
