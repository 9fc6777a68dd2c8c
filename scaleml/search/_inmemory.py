"""A ``Dataset``'s training blocks as dask arrays, for searches over in-memory estimators.

dask-ml's ``GridSearchCV`` / ``RandomizedSearchCV`` fit scikit-learn estimators that need all
their rows at once: every fit task materialises its whole training fold (all training blocks
but one fold's share, as one float matrix) in a worker's memory, and each worker may hold
several folds at once. So a grid or random search on a ``Dataset`` is for data whose training
blocks fit in one worker's memory a few times over; larger data calls for an adaptive search
(``partial_fit``, block by block) or distributed boosting.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np

from scaleml.errors import DatasetError


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
