"""A loaded model where predictions run: in the gateway (local backend) or on a Dask worker.

``ModelHost`` is also the Dask actor class: one instance per worker and model version, so a
worker loads each model version once and every batch of it goes to a worker that holds it.
"""

from __future__ import annotations

import gc
import weakref
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
        self.settings = settings
        self._explainer: Any = None
        _LOADED.add(self)
        _limit_threads(settings.gateway_predict_threads)
        self.model = load_model(uri, settings=settings)
        _limit_model_threads(self.model, settings.gateway_predict_threads)
        self._proba_model = _proba_model(self.model)
        self.classes = (
            None if self._proba_model is None else np.asarray(self._proba_model.classes_).tolist()
        )
        if freeze_gc:
            gc.collect()
            gc.freeze()

    def predict(
        self, names: Sequence[str], arrays: Sequence[np.ndarray], proba: bool = False
    ) -> Any:
        """Predict one batch given as column names and arrays; a NumPy array or DataFrame,
        or with ``proba`` the labels and the class probabilities (``n x len(classes)``)."""
        frame = pd.DataFrame(dict(zip(names, arrays, strict=True)), columns=list(names))
        labels = as_output(self.model.predict(frame))
        if not proba:
            return labels
        if self._proba_model is None:
            raise ValueError(f"{self.uri} has no predict_proba")
        return labels, np.asarray(self._proba_model.predict_proba(frame), dtype=np.float64)

    def explain(self, names: Sequence[str], arrays: Sequence[np.ndarray]) -> dict[str, Any]:
        """SHAP contributions of one batch (``scaleml.insight``'s explainer of this model,
        built on first use with the background logged with the model):
        ``{"values": (n, outputs, features), "base": (outputs,), "features", "outputs",
        "output"}``."""
        from scaleml.gateway._explain_host import explain_batch

        if self._explainer is None:
            from scaleml.gateway._explain_host import build_explainer

            self._explainer = build_explainer(self.model, self.uri, list(names), self.settings)
        return explain_batch(self._explainer, names, arrays)

    def class_labels(self) -> list[Any] | None:
        """The classes, in the order of the probabilities' columns (None: no predict_proba)."""
        return self.classes

    def ping(self) -> str:
        """The URI of the loaded model (a cheap liveness call)."""
        return self.uri


_LOADED: weakref.WeakSet[ModelHost] = weakref.WeakSet()


def loaded_models() -> list[str]:
    """The URIs of the models loaded in this process (a worker: every version it holds),
    sorted, one entry per :class:`ModelHost` alive."""
    return sorted(host.uri for host in list(_LOADED))


def as_output(predictions: Any) -> Any:
    """A pyfunc prediction as a NumPy array or a DataFrame (the forms the gateway splits)."""
    if isinstance(predictions, pd.DataFrame | np.ndarray):
        return predictions
    if isinstance(predictions, pd.Series):
        return predictions.to_numpy()
    return np.asarray(predictions)


def _proba_model(model: Any) -> Any:
    """The flavor's own model when it is a classifier with ``predict_proba`` and
    ``classes_`` (scikit-learn, XGBoost's and LightGBM's scikit-learn API), else None."""
    try:
        raw = model.get_raw_model()
    except Exception:
        return None
    has_classes = getattr(raw, "classes_", None) is not None
    return raw if callable(getattr(raw, "predict_proba", None)) and has_classes else None


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
