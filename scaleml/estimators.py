"""Estimators as JSON specs, resolved against an allow-list. No pickles from clients, ever.

A spec is ``{"estimator": "sklearn.linear_model.SGDClassifier", "params": {"alpha": 1e-4}}``.
The short class name (``"SGDClassifier"``) is accepted too.
"""

from __future__ import annotations

import difflib
import importlib
import json
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from scaleml.errors import EstimatorSpecError

INCREMENTAL_ESTIMATORS: tuple[str, ...] = (
    "sklearn.linear_model.SGDClassifier",
    "sklearn.linear_model.SGDRegressor",
    "sklearn.linear_model.PassiveAggressiveClassifier",
    "sklearn.linear_model.PassiveAggressiveRegressor",
    "sklearn.linear_model.Perceptron",
    "sklearn.naive_bayes.MultinomialNB",
    "sklearn.naive_bayes.BernoulliNB",
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.cluster.MiniBatchKMeans",
    "sklearn.neural_network.MLPClassifier",
    "sklearn.neural_network.MLPRegressor",
)
"""Estimators with ``partial_fit``: trained out of core, block by block."""

IN_MEMORY_ESTIMATORS: tuple[str, ...] = (
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.LinearRegression",
    "sklearn.linear_model.Ridge",
    "sklearn.linear_model.RidgeClassifier",
    "sklearn.linear_model.Lasso",
    "sklearn.linear_model.ElasticNet",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.tree.DecisionTreeRegressor",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.neighbors.KNeighborsClassifier",
    "sklearn.neighbors.KNeighborsRegressor",
    "sklearn.svm.SVC",
    "sklearn.svm.SVR",
    "xgboost.XGBClassifier",
    "xgboost.XGBRegressor",
    "xgboost.dask.DaskXGBClassifier",
    "xgboost.dask.DaskXGBRegressor",
    "lightgbm.LGBMClassifier",
    "lightgbm.LGBMRegressor",
    "lightgbm.DaskLGBMClassifier",
    "lightgbm.DaskLGBMRegressor",
)
"""Estimators fitted on data in memory (or, for the Dask variants, on dask collections)."""

ALLOWED_ESTIMATORS: tuple[str, ...] = INCREMENTAL_ESTIMATORS + IN_MEMORY_ESTIMATORS

_JSONValue = None | bool | int | float | str | list[Any] | dict[str, Any]


class EstimatorSpec(BaseModel):
    """A JSON description of an estimator: an allow-listed class and its parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")

    estimator: str = Field(description="Class path from the allow-list, or its short name.")
    params: dict[str, _JSONValue] = Field(default_factory=dict)


def allowed_estimators(*, incremental_only: bool = False) -> list[str]:
    """The class paths a spec may name (only those with ``partial_fit`` if asked)."""
    return list(INCREMENTAL_ESTIMATORS if incremental_only else ALLOWED_ESTIMATORS)


def canonical_name(name: str) -> str:
    """The allow-listed class path for ``name`` (a full path or a unique short class name)."""
    if name in ALLOWED_ESTIMATORS:
        return name
    matches = [path for path in ALLOWED_ESTIMATORS if path.rsplit(".", 1)[1] == name]
    if len(matches) == 1:
        return matches[0]
    names = [*ALLOWED_ESTIMATORS, *(path.rsplit(".", 1)[1] for path in ALLOWED_ESTIMATORS)]
    close = difflib.get_close_matches(name[:200], names, n=3, cutoff=0.6)
    hint = (
        f"did you mean {' or '.join(map(repr, close))}?"
        if close
        else "see scaleml.estimators.ALLOWED_ESTIMATORS"
    )
    raise EstimatorSpecError(f"estimator {name[:200]!r} is not on the allow-list; {hint}")


def estimator_class(name: str) -> type:
    """Import and return the allow-listed class ``name``."""
    path = canonical_name(name)
    module_name, class_name = path.rsplit(".", 1)
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise EstimatorSpecError(
            f"estimator {path!r} is allowed but not available here: {exc}"
        ) from exc


def from_spec(spec: EstimatorSpec | dict[str, Any] | str) -> Any:
    """Build an unfitted estimator from a spec (an ``EstimatorSpec``, a dict, or JSON text).

    Raises:
        EstimatorSpecError: the class is not allowed, a parameter is unknown, or a value is
            rejected by the estimator's own parameter validation.
    """
    spec = _parse_spec(spec)
    cls = estimator_class(spec.estimator)
    defaults = cls().get_params(deep=False)
    valid = sorted(defaults)
    unknown = sorted(set(spec.params) - set(valid) - library_keywords(cls))
    if unknown:
        raise EstimatorSpecError(
            f"unknown parameter(s) {unknown} for {canonical_name(spec.estimator)}; "
            f"valid parameters: {valid}"
        )
    params = {
        # JSON has no tuples: give tuple-valued parameters (hidden_layer_sizes) their type back.
        key: tuple(value)
        if isinstance(defaults.get(key), tuple) and isinstance(value, list)
        else value
        for key, value in spec.params.items()
    }
    estimator = cls(**params)
    _validate_values(estimator)
    return estimator


# XGBoost's documented booster parameters that its scikit-learn classes take as keyword
# arguments beyond get_params() (aliases included).
_XGBOOST_KEYWORDS = frozenset(
    {
        "eta", "alpha", "lambda", "min_split_loss", "seed", "nthread", "verbose",
        "disable_default_eval_metric", "refresh_leaf", "process_type", "updater",
        "max_cached_hist_node", "seed_per_iteration", "lambda_bias", "sketch_eps",
        "normalize_type", "rate_drop", "one_drop", "skip_drop", "sample_type", "feature_selector",
        "top_k", "tweedie_variance_power", "huber_slope", "quantile_alpha",
        "aft_loss_distribution", "aft_loss_distribution_scale", "lambdarank_pair_method",
        "lambdarank_num_pair_per_sample", "lambdarank_unbiased", "lambdarank_bias_norm",
        "ndcg_exp_gain", "num_class", "max_cat_threshold",
    }
)  # fmt: skip


def library_keywords(cls: type) -> frozenset[str]:
    """Keyword parameters an estimator class documents beyond ``get_params()``: every
    LightGBM parameter and alias (``verbose``, ``min_data_in_leaf`` ...), XGBoost's booster
    parameters (``eta``, ``seed`` ...); none for other libraries."""
    library = cls.__module__.split(".", 1)[0]
    if library == "lightgbm":
        return _lightgbm_keywords()
    if library == "xgboost":
        return _XGBOOST_KEYWORDS
    return frozenset()


def _lightgbm_keywords() -> frozenset[str]:
    from lightgbm.basic import _ConfigAliases  # LightGBM's own table, from its C library

    names = {"verbose"}
    for canonical, aliases in _ConfigAliases._get_all_param_aliases().items():
        names.add(canonical)
        names.update(aliases)
    return frozenset(names)


def to_spec(estimator: Any) -> EstimatorSpec:
    """The spec of an allow-listed estimator instance; ``from_spec`` gives it back.

    Raises:
        EstimatorSpecError: the estimator's class is not allowed or a parameter is not JSON.
    """
    cls = type(estimator)
    path = next(
        (p for p in ALLOWED_ESTIMATORS if p.rsplit(".", 1)[1] == cls.__name__ and _is(p, cls)),
        None,
    )
    if path is None:
        raise EstimatorSpecError(
            f"{cls.__module__}.{cls.__qualname__} is not on the allow-list of estimators"
        )
    params = {}
    for key, value in estimator.get_params(deep=False).items():
        params[key] = _to_json_value(key, value)
    return EstimatorSpec(estimator=path, params=params)


def is_incremental(estimator: Any) -> bool:
    """Whether the estimator can learn block by block (has ``partial_fit``)."""
    return callable(getattr(estimator, "partial_fit", None))


def name_features(estimator: Any, names: list[str]) -> None:
    """Give a model fitted on arrays the column names of its data, so that ``predict`` checks
    DataFrames by name as it does for a model fitted on a DataFrame (only when all names are
    strings and their number matches, as scikit-learn itself requires)."""
    if not names or not all(isinstance(n, str) for n in names):
        return
    if getattr(estimator, "n_features_in_", None) == len(names):
        estimator.feature_names_in_ = np.asarray(names, dtype=object)


def parse_param(assignment: str) -> tuple[str, Any]:
    """Parse a ``key=value`` parameter as given on a command line; values are JSON if they
    parse as JSON (``1e-4``, ``true``, ``null``, ``[1, 2]``), else strings."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise EstimatorSpecError(f"expected a parameter as key=value, got {assignment!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def _parse_spec(spec: EstimatorSpec | dict[str, Any] | str) -> EstimatorSpec:
    if isinstance(spec, EstimatorSpec):
        return spec
    try:
        if isinstance(spec, str):
            return EstimatorSpec.model_validate_json(spec)
        return EstimatorSpec.model_validate(spec)
    except ValueError as exc:
        raise EstimatorSpecError(f"invalid estimator spec: {exc}") from exc


def _validate_values(estimator: Any) -> None:
    validate = getattr(estimator, "_validate_params", None)
    if validate is None or not hasattr(estimator, "_parameter_constraints"):
        return
    try:
        validate()
    except (ValueError, TypeError) as exc:
        raise EstimatorSpecError(str(exc)) from exc


def _is(path: str, cls: type) -> bool:
    try:
        return estimator_class(path) is cls
    except EstimatorSpecError:
        return False


def _to_json_value(key: str, value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value)
    except TypeError:
        raise EstimatorSpecError(
            f"parameter {key!r} has a value that is not JSON ({type(value).__name__}); "
            "specs hold plain values only"
        ) from None
    return value
