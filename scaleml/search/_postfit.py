"""Applying the best estimator's methods block by block to dask inputs (as dask-ml's
``ParallelPostFit`` does): dask arrays and DataFrames give lazy dask results, in-memory
inputs give the estimator's own return value."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np


def apply(estimator: Any, method: str, X: Any, meta: Any = None) -> Any:
    """``estimator.<method>(X)``, blockwise when ``X`` is a dask collection."""
    if _is_frame(X):
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        return getattr(estimator, method)(X)
    if X.ndim == 2 and X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    if meta is None:
        sample = np.zeros((1, *X.shape[1:]), dtype=X.dtype)
        meta = getattr(estimator, method)(sample)[:0]
    if np.ndim(meta) == 1:
        return X.map_blocks(_call, estimator, method, drop_axis=1, meta=meta)
    columns = np.shape(meta)[1]
    return X.map_blocks(_call, estimator, method, chunks=(X.chunks[0], (columns,)), meta=meta)


def concrete(data: Any) -> Any:
    """Compute a dask collection; other inputs are returned as they are."""
    if _is_frame(data) or isinstance(data, da.Array):
        return data.compute()
    return data


def _call(block: np.ndarray, estimator: Any, method: str) -> Any:
    return getattr(estimator, method)(block)


def _is_frame(data: Any) -> bool:
    module = type(data).__module__
    return module.startswith("dask.dataframe") and hasattr(data, "to_dask_array")
