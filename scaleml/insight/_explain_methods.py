"""The explainers: one small picklable object per kind of model, sent once to each worker.

Each turns a block of features into SHAP contributions ``(rows, outputs, features)`` and base
values ``(outputs,)``, and gives the model's own output in the space it explains
(``raw_output``), so that additivity (base + sum of contributions = output) can be checked on
every row. This module imports only NumPy and pandas at import time: a worker that unpickles
an explainer pays for ``shap``, XGBoost or LightGBM only when it uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

EXACT_MAX_FEATURES = 10
"""Model-agnostic explanations are exact (every coalition) up to this many features, and by
sampled permutations (shap's ``PermutationExplainer``) above."""


@dataclass
class Explainer:
    """Base: ``kind`` (how), ``output`` (the space explained: ``margin``, ``probability`` or
    ``prediction``), ``output_names`` (one per explained output)."""

    model: Any
    kind: str = ""
    output: str = ""
    output_names: list[str] = field(default_factory=list)
    threads: int = 1
    """OpenMP threads of one block's explanation (each worker thread explains a block)."""

    @property
    def needs_nan_free(self) -> bool:
        """Whether features must be finite (XGBoost and LightGBM take NaN as missing)."""
        return True

    def contributions(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(values (n, outputs, features), base_values (outputs,))``."""
        raise NotImplementedError

    def raw_output(self, x: pd.DataFrame) -> np.ndarray:
        """The model's output in the explained space, ``(n, outputs)``."""
        raise NotImplementedError

    def explain_with_output(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``contributions(x)`` and ``raw_output(x)`` together (an explainer may share the
        work of both)."""
        values, base = self.contributions(x)
        return values, base, self.raw_output(x)


def _as_outputs(values: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(n, -1)


def _outputs_first(values: np.ndarray) -> np.ndarray:
    """shap's ``(n, features)`` or ``(n, features, outputs)`` as ``(n, outputs, features)``."""
    return values[:, None, :] if values.ndim == 2 else np.transpose(values, (0, 2, 1))


def _iteration_range(model: Any) -> tuple[int, int]:
    """The trees the scikit-learn API's ``predict`` uses (up to the best round, if any)."""
    try:
        best = model.best_iteration
    except AttributeError:
        return (0, 0)
    return (0, int(best) + 1) if best is not None else (0, 0)


@dataclass
class XGBoostExplainer(Explainer):
    """Exact TreeSHAP by XGBoost itself (``pred_contribs=True``), on the margin."""

    @property
    def needs_nan_free(self) -> bool:
        return False

    def _booster_and_matrix(self, x: pd.DataFrame) -> tuple[Any, Any]:
        import xgboost

        booster = self.model.get_booster() if hasattr(self.model, "get_booster") else self.model
        booster.set_param({"nthread": self.threads})
        return booster, xgboost.DMatrix(x, missing=np.nan, nthread=self.threads)

    def contributions(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self._contributions(*self._booster_and_matrix(x))

    def raw_output(self, x: pd.DataFrame) -> np.ndarray:
        return self._margin(*self._booster_and_matrix(x), len(x))

    def explain_with_output(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        booster, matrix = self._booster_and_matrix(x)  # one DMatrix for both
        values, base = self._contributions(booster, matrix)
        return values, base, self._margin(booster, matrix, len(x))

    def _contributions(self, booster: Any, matrix: Any) -> tuple[np.ndarray, np.ndarray]:
        raw = booster.predict(
            matrix, pred_contribs=True, iteration_range=_iteration_range(self.model)
        )
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim == 2:  # one output: (n, features + 1)
            raw = raw[:, None, :]
        return raw[:, :, :-1], raw[0, :, -1].copy() if len(raw) else np.zeros(raw.shape[1])

    def _margin(self, booster: Any, matrix: Any, n: int) -> np.ndarray:
        margin = booster.predict(
            matrix, output_margin=True, iteration_range=_iteration_range(self.model)
        )
        return _as_outputs(margin, n)


@dataclass
class LightGBMExplainer(Explainer):
    """Exact TreeSHAP by LightGBM itself (``pred_contrib=True``), on the raw score."""

    @property
    def needs_nan_free(self) -> bool:
        return False

    def contributions(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        raw = self.model.predict(x, pred_contrib=True, num_threads=self.threads)
        raw = np.asarray(raw, dtype=np.float64)
        n, width = len(x), x.shape[1] + 1
        raw = raw.reshape(n, -1, width)  # multiclass: the classes' blocks side by side
        base = raw[0, :, -1].copy() if n else np.zeros(raw.shape[1])
        return raw[:, :, :-1], base

    def raw_output(self, x: pd.DataFrame) -> np.ndarray:
        raw = self.model.predict(x, raw_score=True, num_threads=self.threads)
        return _as_outputs(raw, len(x))


@dataclass
class TreeExplainer(Explainer):
    """``shap.TreeExplainer`` (path-dependent TreeSHAP) of a scikit-learn tree ensemble; built
    once on the client, sent once to each worker."""

    explainer: Any = None

    def contributions(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(
            self.explainer.shap_values(x.to_numpy(dtype=np.float64), check_additivity=False),
            dtype=np.float64,
        )
        values = _outputs_first(values)
        base = np.atleast_1d(np.asarray(self.explainer.expected_value, dtype=np.float64))
        return values, base

    def raw_output(self, x: pd.DataFrame) -> np.ndarray:
        if self.output == "probability":
            return _as_outputs(self.model.predict_proba(x), len(x))
        if self.output == "margin":
            return _as_outputs(self.model.decision_function(x), len(x))
        return _as_outputs(self.model.predict(x), len(x))


@dataclass
class LinearExplainer(Explainer):
    """Exact linear SHAP: ``coef * (x - mean)`` against the background ``mean``, on the
    decision function (classifiers) or the prediction (regressors)."""

    mean: np.ndarray | None = None

    def _coef(self) -> tuple[np.ndarray, np.ndarray]:
        coef = np.atleast_2d(np.asarray(self.model.coef_, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(self.model.intercept_, dtype=np.float64))
        return coef, np.broadcast_to(intercept, (coef.shape[0],))

    def contributions(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        assert self.mean is not None
        coef, intercept = self._coef()
        centred = x.to_numpy(dtype=np.float64) - self.mean
        values = centred[:, None, :] * coef[None, :, :]
        return values, coef @ self.mean + intercept

    def raw_output(self, x: pd.DataFrame) -> np.ndarray:
        method = self.model.decision_function if self.output == "margin" else self.model.predict
        return _as_outputs(method(x), len(x))


@dataclass
class AgnosticExplainer(Explainer):
    """shap's ``KernelExplainer`` over a background drawn from the training blocks, on
    ``predict_proba`` (classifiers) or ``predict``. Up to :data:`EXACT_MAX_FEATURES` features
    every coalition is evaluated, so the values are the exact Shapley values against the
    background; above, coalitions are sampled (``seed``). Additive either way."""

    background: pd.DataFrame | None = None
    seed: int = 0

    def _function(self) -> Any:
        method = self.model.predict_proba if self.output == "probability" else self.model.predict
        columns = list(self.background.columns) if self.background is not None else None

        def function(values: np.ndarray) -> np.ndarray:
            return np.asarray(method(pd.DataFrame(values, columns=columns)), dtype=np.float64)

        return function

    def contributions(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        import shap

        assert self.background is not None
        explainer = shap.KernelExplainer(
            self._function(), self.background.to_numpy(dtype=np.float64)
        )
        n_features = x.shape[1]
        exact = n_features <= EXACT_MAX_FEATURES
        samples = 2**n_features - 2 if exact else 2 * n_features + 2048
        state = np.random.get_state()
        np.random.seed(self.seed)
        try:
            values = explainer.shap_values(
                x.to_numpy(dtype=np.float64), nsamples=samples, l1_reg=False, silent=True
            )
        finally:
            np.random.set_state(state)
        values = np.asarray(values, dtype=np.float64)
        values = _outputs_first(values)
        base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
        return values, base

    def raw_output(self, x: pd.DataFrame) -> np.ndarray:
        return _as_outputs(self._function()(x.to_numpy(dtype=np.float64)), len(x))
