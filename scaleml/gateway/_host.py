"""A loaded model where predictions run: in the gateway (local backend) or on a Dask worker.

``ModelHost`` is also the Dask actor class: one instance per worker and model version, so a
worker loads each model version once and every batch of it goes to a worker that holds it.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from scaleml.config import Settings


class ModelHost:
    """Loads ``uri`` from the MLflow registry and predicts batches of columns.

    Args:
        uri: ``models:/name/version``.
        settings: scaleml settings (tracking URI, ``gateway_predict_threads``).
        freeze_gc: move everything loaded out of the garbage collector's sight afterwards (full
            collections of the ~400k objects of MLflow, pandas and the model take ~150 ms).
    """

    def __init__(self, uri: str, settings: Settings, freeze_gc: bool = True) -> None:
        from scaleml.tracking import load_model

        self.uri = uri
        _limit_threads(settings.gateway_predict_threads)
        self.model = load_model(uri, settings=settings)
        _limit_model_threads(self.model, settings.gateway_predict_threads)
        if freeze_gc:
            gc.collect()
            gc.freeze()

    def predict(self, names: Sequence[str], arrays: Sequence[np.ndarray]) -> Any:
        """Predict one batch given as column names and arrays; a NumPy array or DataFrame."""
        frame = pd.DataFrame(dict(zip(names, arrays, strict=True)), columns=list(names))
        return as_output(self.model.predict(frame))

    def ping(self) -> str:
        """The URI of the loaded model (a cheap liveness call)."""
        return self.uri


def as_output(predictions: Any) -> Any:
    """A pyfunc prediction as a NumPy array or a DataFrame (the forms the gateway splits)."""
    if isinstance(predictions, pd.DataFrame | np.ndarray):
        return predictions
    if isinstance(predictions, pd.Series):
        return predictions.to_numpy()
    return np.asarray(predictions)


def _limit_threads(n: int) -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return
    threadpool_limits(limits=n)


def _limit_model_threads(model: Any, n: int) -> None:
    """XGBoost/LightGBM use every core by default and then fight the event loop for them."""
    try:
        raw = model.get_raw_model()
    except Exception:
        return
    if hasattr(raw, "set_params") and "n_jobs" in getattr(raw, "get_params", dict)():
        raw.set_params(n_jobs=n)
    elif hasattr(raw, "set_param") and type(raw).__name__ == "Booster":
        raw.set_param({"nthread": n})
