"""A ``Dataset``'s training blocks as dask arrays, for searches over in-memory estimators.

dask-ml's ``GridSearchCV`` / ``RandomizedSearchCV`` fit scikit-learn estimators that need all
their rows at once: every fit task materialises its whole training fold (all training blocks
but one fold's share, as one float matrix) in a worker's memory, and each worker may hold
several folds at once. So a grid or random search on a ``Dataset`` is for data whose training
blocks fit in one worker's memory a few times over; larger data calls for an adaptive search
(``partial_fit``, block by block) or distributed boosting.

dask-ml's searches retry a failed fit task forever on a distributed client; they run through
:func:`fail_fast_get` instead, which ends the search with the first task's error.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np

from scaleml.errors import DatasetError, SearchSpaceError


def dataset_arrays(dataset: Any) -> tuple[da.Array, da.Array]:
    """``(X, y)``: the training blocks of ``dataset`` as lazy dask arrays, one chunk per block
    (X has the dataset's feature dtype; nothing is read until a task needs it).

    Raises:
        DatasetError: the dataset has no target column.
    """
    from scaleml.data import read_xy

    if dataset.target is None:
        raise DatasetError(f"{dataset!r} has no target column; a search scores on one")
    features, target, dtype = list(dataset.features), dataset.target, dataset.feature_dtype
    blocks = [dataset.blocks[i] for i in dataset.train_blocks]
    rows = [getattr(block, "n_rows", None) for block in blocks]
    if any(n is None for n in rows):  # CSV blocks: count the rows first (one pass)
        counts = [dask.delayed(_rows)(block, target) for block in blocks]
        rows = list(dask.compute(*counts))
    parts = [dask.delayed(read_xy, nout=2)(b, features, target, dtype) for b in blocks]
    y_dtype = np.dtype(dataset.schema[target]) if _numpy_dtype(dataset.schema[target]) else object
    X = da.concatenate(
        [
            da.from_delayed(x, shape=(n, len(features)), dtype=dtype)
            for (x, _), n in zip(parts, rows, strict=True)
        ]
    )
    y = da.concatenate(
        [
            da.from_delayed(t, shape=(n,), dtype=y_dtype)
            for (_, t), n in zip(parts, rows, strict=True)
        ]
    )
    return X, y


def _rows(block: Any, target: str) -> int:
    return len(block.read([target]))


def _numpy_dtype(name: str) -> bool:
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


def fail_fast_get(dsk: Any, keys: Any, **kwargs: Any) -> Any:
    """A dask scheduler ``get`` for dask-ml's ``GridSearchCV`` / ``RandomizedSearchCV``
    (their ``scheduler`` parameter): the search's graph runs on the current distributed client
    (the threaded scheduler without one), and the first task that fails ends the search with
    its error. dask-ml's own loop retries a failed fit task forever, and a fit that fails once
    on bad parameters fails every time.

    Raises:
        SearchSpaceError: a fit or score task raised ``ValueError`` or ``TypeError`` (a
            candidate's parameters or the data do not suit the estimator); the message says
            which error.
    """
    from distributed import get_client

    try:
        client = get_client()
    except ValueError:  # no distributed client: dask's threads
        return dask.threaded.get(dsk, keys)
    try:
        return client.get(dsk, keys, allow_other_workers=True)
    except (ValueError, TypeError) as exc:
        raise SearchSpaceError(
            f"a candidate of the search failed to fit: {type(exc).__name__}: {exc}"
        ) from exc
