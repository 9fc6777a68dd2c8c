"""Boosting estimators: resolving specs to the Dask estimator classes, checking parameters.

Everything here runs before any work is sent to the cluster, so a bad value is a typed error
naming the parameter, not a failure minutes into a training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Literal

from scaleml.errors import EstimatorSpecError, TrainingError
from scaleml.estimators import EstimatorSpec, estimator_class, from_spec

Library = Literal["xgboost", "lightgbm"]

DASK_BOOSTING_ESTIMATORS: dict[str, Library] = {
    "xgboost.dask.DaskXGBClassifier": "xgboost",
    "xgboost.dask.DaskXGBRegressor": "xgboost",
    "lightgbm.DaskLGBMClassifier": "lightgbm",
    "lightgbm.DaskLGBMRegressor": "lightgbm",
}
"""The distributed boosting estimators, by class path."""

_DASK_EQUIVALENT = {
    "XGBClassifier": "xgboost.dask.DaskXGBClassifier",
    "XGBRegressor": "xgboost.dask.DaskXGBRegressor",
    "LGBMClassifier": "lightgbm.DaskLGBMClassifier",
    "LGBMRegressor": "lightgbm.DaskLGBMRegressor",
}
_NOT_JSON = ("client",)  # estimator attributes that are not hyper-parameters


def _int_at_least(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(low: float, high: float = math.inf, *, open_low: bool = False) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return False
        return (value > low if open_low else value >= low) and value <= high

    return check


def _one_of(*allowed: str) -> Callable[[Any], bool]:
    return lambda v: v in allowed


def _metric_names(value: Any) -> bool:
    names = [value] if isinstance(value, str) else value
    return isinstance(names, list) and bool(names) and all(isinstance(n, str) and n for n in names)


_COMMON_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_estimators": (_int_at_least(1), "an integer >= 1"),
    "learning_rate": (_number(0.0, open_low=True), "a number > 0"),
    "subsample": (_number(0.0, 1.0, open_low=True), "a number in (0, 1]"),
    "colsample_bytree": (_number(0.0, 1.0, open_low=True), "a number in (0, 1]"),
    "reg_alpha": (_number(0.0), "a number >= 0"),
    "reg_lambda": (_number(0.0), "a number >= 0"),
    "min_child_weight": (_number(0.0), "a number >= 0"),
    "random_state": (_int_at_least(0), "an integer >= 0"),
    "n_jobs": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "objective": (lambda v: isinstance(v, str) and bool(v), "an objective name"),
}
_RULES: dict[Library, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "xgboost": {
        **_COMMON_RULES,
        "max_depth": (_int_at_least(0), "an integer >= 0"),
        "max_leaves": (_int_at_least(0), "an integer >= 0"),
        "max_bin": (_int_at_least(2), "an integer >= 2"),
        "gamma": (_number(0.0), "a number >= 0"),
        "colsample_bylevel": (_number(0.0, 1.0, open_low=True), "a number in (0, 1]"),
        "colsample_bynode": (_number(0.0, 1.0, open_low=True), "a number in (0, 1]"),
        "early_stopping_rounds": (_int_at_least(1), "an integer >= 1"),
        "eval_metric": (_metric_names, "a metric name or a list of metric names"),
        "booster": (_one_of("gbtree", "gblinear", "dart"), "one of gbtree, gblinear, dart"),
        "tree_method": (_one_of("hist", "approx", "auto"), "one of hist, approx, auto"),
        "grow_policy": (_one_of("depthwise", "lossguide"), "one of depthwise, lossguide"),
    },
    "lightgbm": {
        **_COMMON_RULES,
        "max_depth": (lambda v: _int_at_least(-(2**31))(v), "an integer (<= 0: no limit)"),
        "num_leaves": (_int_at_least(2), "an integer >= 2"),
        "min_child_samples": (_int_at_least(0), "an integer >= 0"),
        "min_split_gain": (_number(0.0), "a number >= 0"),
        "subsample_freq": (_int_at_least(0), "an integer >= 0"),
        "subsample_for_bin": (_int_at_least(1), "an integer >= 1"),
        "max_bin": (_int_at_least(2), "an integer >= 2"),
        "boosting_type": (_one_of("gbdt", "dart", "rf"), "one of gbdt, dart, rf"),
    },
}


def resolve_estimator(estimator: Any) -> tuple[Any, Library]:
    """A fresh, unfitted Dask boosting estimator with ``estimator``'s parameters, and its library.

    ``estimator`` is a spec (an :class:`~scaleml.estimators.EstimatorSpec`, a dict or JSON text)
    or an instance; the single-machine classes (``XGBClassifier``, ``LGBMRegressor`` ...) are
    mapped to their Dask counterparts with the same parameters.

    Raises:
        EstimatorSpecError: the class is not allowed, or a parameter is unknown or not JSON.
        TrainingError: the class is not a boosting estimator, or a parameter value is invalid.
    """
    if isinstance(estimator, EstimatorSpec | dict | str):
        estimator = from_spec(estimator)
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k not in _NOT_JSON}
    name = type(estimator).__name__
    path = _DASK_EQUIVALENT.get(name) or next(
        (p for p in DASK_BOOSTING_ESTIMATORS if p.rsplit(".", 1)[1] == name), None
    )
    if path is None:
        raise TrainingError(
            f"estimator must be one of {sorted(DASK_BOOSTING_ESTIMATORS)} (or their "
            f"single-machine classes), got {type(estimator).__module__}.{name}"
        )
    library = DASK_BOOSTING_ESTIMATORS[path]
    for key, value in params.items():
        try:
            json.dumps(value)
        except TypeError:
            raise EstimatorSpecError(
                f"parameter {key!r} has a value that is not JSON ({type(value).__name__}); "
                "boosting parameters are plain values only"
            ) from None
    check_params(params, library)
    return estimator_class(path)(**params), library


def check_params(params: dict[str, Any], library: Library) -> None:
    """Check the values of known boosting parameters (``None`` means the library's default).

    Raises:
        TrainingError: a value is out of range; the message names the parameter.
    """
    rules = _RULES[library]
    for key, value in params.items():
        if value is None or key not in rules:
            continue
        check, expected = rules[key]
        if not check(value):
            raise TrainingError(f"parameter {key!r} must be {expected}, got {value!r}")


def check_metric_names(value: Any, name: str = "eval_metric") -> list[str] | None:
    """``value`` as a list of metric names (``None`` stays ``None``)."""
    if value is None:
        return None
    if not _metric_names(value):
        raise TrainingError(f"{name} must be a metric name or a list of them, got {value!r}")
    return [value] if isinstance(value, str) else list(value)
