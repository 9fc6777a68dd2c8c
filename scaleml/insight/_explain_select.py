"""Which explainer a model gets, and its background: native TreeSHAP for XGBoost and LightGBM,
``shap.TreeExplainer`` for scikit-learn tree ensembles, exact linear SHAP for linear models,
and shap's exact or permutation explainer for any other model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scaleml.errors import ScalemlError
from scaleml.insight._explain_methods import (
    AgnosticExplainer,
    Explainer,
    LightGBMExplainer,
    LinearExplainer,
    TreeExplainer,
    XGBoostExplainer,
)


class ExplainError(ScalemlError, ValueError):
    """An explanation was asked for with arguments that cannot work, or failed its additivity
    check (the message says which)."""


@dataclass
class Background:
    """What explaining needs besides the model: the mean of each feature over the training
    rows (linear models) and a small set of training rows (model-agnostic explainers)."""

    features: list[str]
    mean: np.ndarray
    rows: pd.DataFrame
    n_rows: int
    """How many training rows the mean is over."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (the rows are stored apart, as a table)."""
        return {
            "features": list(self.features),
            "mean": [float(v) for v in self.mean],
            "n_rows": int(self.n_rows),
            "n_background_rows": len(self.rows),
        }

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, n_rows: int | None = None) -> Background:
        """A background of in-memory rows (their mean, and the rows themselves)."""
        values = frame.to_numpy(dtype=np.float64)
        return cls(
            [str(c) for c in frame.columns],
            np.nanmean(values, axis=0),
            frame.reset_index(drop=True),
            int(n_rows if n_rows is not None else len(frame)),
        )


_TREE_PROBABILITY = ("RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier")
_TREE_MARGIN = ("GradientBoostingClassifier", "HistGradientBoostingClassifier")
_TREE_REGRESSORS = (
    "RandomForestRegressor",
    "ExtraTreesRegressor",
    "DecisionTreeRegressor",
    "GradientBoostingRegressor",
    "HistGradientBoostingRegressor",
)


def explainer_kind(model: Any) -> str:
    """``xgboost``, ``lightgbm``, ``tree``, ``linear`` or ``agnostic``."""
    module = type(model).__module__.split(".")[0]
    name = type(model).__name__
    if module == "xgboost":
        return "xgboost"
    if module == "lightgbm":
        return "lightgbm"
    if module == "sklearn" and name in (*_TREE_PROBABILITY, *_TREE_MARGIN, *_TREE_REGRESSORS):
        return "tree"
    if (
        type(model).__module__.startswith("sklearn.linear_model")
        and hasattr(model, "coef_")
        and hasattr(model, "intercept_")
    ):
        return "linear"
    return "agnostic"


def needs_background(model: Any) -> bool:
    """Linear and model-agnostic explainers need a background; tree explainers do not."""
    return explainer_kind(model) in ("linear", "agnostic")


def _is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier

    try:
        return bool(is_classifier(model)) and getattr(model, "classes_", None) is not None
    except Exception:  # not a scikit-learn-API estimator
        return False


def _class_names(model: Any) -> list[str]:
    return [_text(c) for c in np.asarray(model.classes_).tolist()]


def _text(value: Any) -> str:
    return str(value.item() if hasattr(value, "item") else value)


def _margin_names(model: Any) -> list[str]:
    names = _class_names(model)
    return names[1:] if len(names) == 2 else names  # binary: one margin, the second class's


def make_explainer(
    model: Any, features: list[str], background: Background | None, *, seed: int = 0
) -> Explainer:
    """The explainer of ``model`` over ``features`` (``background`` for linear and
    model-agnostic explainers).

    Raises:
        ExplainError: the model cannot predict, or a needed background is missing or has
            other features.
    """
    if not hasattr(model, "predict"):
        raise ExplainError(f"the model ({type(model).__name__}) has no predict method")
    kind = explainer_kind(model)
    classifier = _is_classifier(model)
    if kind in ("xgboost", "lightgbm"):
        cls = XGBoostExplainer if kind == "xgboost" else LightGBMExplainer
        names = _margin_names(model) if classifier else ["prediction"]
        output = "margin" if classifier else "prediction"
        return cls(model, kind, output, names)
    if kind == "tree":
        explainer = _tree(model, features)
        if explainer is not None:
            return explainer
        kind = "agnostic"
    if background is None:
        raise ExplainError(
            f"a {type(model).__name__} is explained against a background of training rows: "
            "pass a dataset with training blocks, or background="
        )
    if list(background.features) != list(features):
        raise ExplainError(
            f"the background's features {background.features} are not the model's {features}"
        )
    if kind == "linear":
        names = _margin_names(model) if classifier else ["prediction"]
        output = "margin" if classifier else "prediction"
        return LinearExplainer(model, "linear", output, names, mean=np.asarray(background.mean))
    if classifier and hasattr(model, "predict_proba"):
        output, names = "probability", _class_names(model)
    else:
        output, names = "prediction", ["prediction"]
    if len(background.rows) == 0:
        raise ExplainError("the background holds no rows")
    return AgnosticExplainer(
        model, "agnostic", output, names, background=background.rows[features], seed=seed
    )


def _tree(model: Any, features: list[str]) -> TreeExplainer | None:
    import shap

    name = type(model).__name__
    try:
        explainer = shap.TreeExplainer(model)
    except Exception:  # a tree model shap does not know: explained model-agnostically
        return None
    if name in _TREE_PROBABILITY:
        return TreeExplainer(model, "tree", "probability", _class_names(model), explainer=explainer)
    if name in _TREE_MARGIN:
        return TreeExplainer(model, "tree", "margin", _margin_names(model), explainer=explainer)
    return TreeExplainer(model, "tree", "prediction", ["prediction"], explainer=explainer)


def additivity_tolerance(kind: str) -> float:
    """Largest allowed |base + sum - output|, relative to max(1, |output|): XGBoost and
    LightGBM compute in float32, the others in float64."""
    return 1e-4 if kind in ("xgboost", "lightgbm") else 1e-6
