"""JSON search spaces and ``make_search``: every form parses, bad input names the parameter."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import scipy.stats
from dask_ml.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.linear_model import LogisticRegression, SGDClassifier

from scaleml.errors import ScalemlError, SearchSpaceError
from scaleml.search import (
    HyperbandSearchCV,
    IncrementalSearchCV,
    SuccessiveHalvingSearchCV,
    make_search,
    parse_space,
)

SPACE_JSON = """{
  "alpha": {"distribution": "loguniform", "low": 1e-5, "high": 1},
  "l1_ratio": {"distribution": "uniform", "low": 0.2, "high": 0.6},
  "n_iter_no_change": {"distribution": "randint", "low": 1, "high": 4},
  "penalty": ["l1", "l2", "elasticnet"],
  "average": [true, false],
  "max_iter": {"range": {"start": 5, "stop": 20, "step": 5}},
  "eta0": {"logspace": {"start": -3, "stop": 0, "num": 4}},
  "power_t": {"linspace": {"start": 0, "stop": 1, "num": 5}}
}"""


def test_every_json_form_parses() -> None:
    space = parse_space(json.loads(SPACE_JSON))
    assert space["penalty"] == ["l1", "l2", "elasticnet"]
    assert space["average"] == [True, False]
    assert space["max_iter"] == [5, 10, 15]
    np.testing.assert_allclose(space["eta0"], [1e-3, 1e-2, 1e-1, 1.0])
    assert space["power_t"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(type(v) is float for v in space["eta0"])  # plain values, not NumPy scalars
    rng = np.random.default_rng(0)
    alpha = space["alpha"].rvs(size=2000, random_state=rng)
    assert alpha.min() >= 1e-5 and alpha.max() <= 1 and np.median(alpha) < 0.01  # log scale
    ratio = space["l1_ratio"].rvs(size=2000, random_state=rng)
    assert ratio.min() >= 0.2 and ratio.max() <= 0.6
    ints = space["n_iter_no_change"].rvs(size=200, random_state=rng)
    assert set(ints) == {1, 2, 3}  # high is exclusive, as in scipy and numpy


def test_python_values_pass_through() -> None:
    dist = scipy.stats.expon(scale=0.1)
    space = parse_space({"alpha": dist, "l1_ratio": np.linspace(0, 1, 3)})
    assert space["alpha"] is dist
    assert space["l1_ratio"] == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "non-empty JSON object"),
        ([1, 2], "non-empty JSON object"),
        ({"alpha": []}, "'alpha' has an empty list"),
        ({"alpha": 0.1}, "'alpha' must be a list of values"),
        ({"alpha": {"low": 1, "high": 2}}, "'alpha' must be a list of values"),
        ({"alpha": {"distribution": "normal", "low": 0, "high": 1}}, "'alpha': distribution"),
        ({"alpha": {"distribution": "uniform", "low": 0}}, "missing ['high']"),
        ({"alpha": {"distribution": "uniform", "low": 0, "high": 1, "x": 1}}, "unknown key"),
        ({"alpha": {"distribution": "uniform", "low": 1, "high": 1}}, "low must be below high"),
        ({"alpha": {"distribution": "loguniform", "low": 0, "high": 1}}, "needs low > 0"),
        ({"alpha": {"distribution": "uniform", "low": "a", "high": 1}}, "low must be a finite"),
        ({"k": {"distribution": "randint", "low": 1.5, "high": 4}}, "low must be an integer"),
        ({"k": {"range": {"start": 5, "stop": 1}}}, "'k': range(start=5, stop=1, step=1) is"),
        ({"k": {"range": {"stop": 5, "step": 0}}}, "'k': range step must not be 0"),
        ({"k": {"range": [1, 5]}}, "'k': range must be an object"),
        ({"a": {"logspace": {"start": -3, "stop": 0}}}, "'a.logspace': missing ['num']"),
        ({"a": {"linspace": {"start": 0, "stop": 1, "num": 0}}}, "num must be between 1"),
        ({"a": {"linspace": {"start": 0, "stop": 1, "num": 2}, "range": {}}}, "'a' must be"),
    ],
)
def test_bad_spaces_raise_a_typed_error_naming_the_parameter(space: Any, message: str) -> None:
    with pytest.raises(SearchSpaceError) as error:
        parse_space(space)
    assert message in str(error.value)
    assert isinstance(error.value, ScalemlError) and isinstance(error.value, ValueError)


def test_grid_accepts_only_finite_lists() -> None:
    finite = {"C": [0.1, 1], "max_iter": {"range": {"start": 50, "stop": 150, "step": 50}}}
    assert parse_space(finite, grid=True)["max_iter"] == [50, 100]
    with pytest.raises(SearchSpaceError, match="'C': a grid search needs a finite list"):
        parse_space({"C": {"distribution": "loguniform", "low": 0.01, "high": 1}}, grid=True)


SGD = SGDClassifier(random_state=0)
SPACE = {"alpha": {"distribution": "loguniform", "low": 1e-5, "high": 1}}


@pytest.mark.parametrize(
    ("method", "estimator", "space", "options", "cls"),
    [
        ("incremental", SGD, SPACE, {"max_iter": 5}, IncrementalSearchCV),
        ("hyperband", SGD, SPACE, {"max_iter": 9, "random_state": 0}, HyperbandSearchCV),
        ("halving", SGD, SPACE, {"n_initial_parameters": 9}, SuccessiveHalvingSearchCV),
        ("grid", LogisticRegression(), {"C": [0.1, 1.0]}, {"cv": 3}, GridSearchCV),
        ("random", LogisticRegression(), {"C": SPACE["alpha"]}, {"n_iter": 3}, RandomizedSearchCV),
    ],
)
def test_make_search_builds_each_method(
    method: str, estimator: Any, space: dict, options: dict, cls: type
) -> None:
    search = make_search(method, estimator, space, **options)
    assert type(search) is cls
    assert search.estimator is estimator
    assert {k: search.get_params()[k] for k in options} == options
    if method == "incremental":
        assert search.decay_rate is None  # no deprecation warning at fit
    if method == "halving":
        assert search.n_initial_iter == 1


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("bayes", SGD, SPACE), {}, "method must be one of incremental, hyperband, halving,"),
        (("hyperband", LogisticRegression(), {"C": [1]}), {}, "needs an estimator with partial"),
        (("grid", SGD, SPACE), {}, "'alpha': a grid search needs a finite list"),
        (("grid", SGD, {"alfa": [1]}), {}, "parameter 'alfa' is not a parameter of SGDClass"),
        (("incremental", SGD, SPACE), {"n_iter": 3}, "unknown search option(s) ['n_iter']"),
        (("random", SGD, SPACE), {"max_iter": 3}, "unknown search option(s) ['max_iter']"),
        (("incremental", SGD, SPACE), {"max_iter": 0}, "max_iter must be an int >= 1"),
        (("hyperband", SGD, SPACE), {"aggressiveness": 1}, "aggressiveness"),
        (("halving", SGD, SPACE), {"n_initial_iter": 0}, "n_initial_iter must be an int >= 1"),
        (("random", SGD, SPACE), {"n_iter": 0}, "n_iter must be an int >= 1"),
        (("grid", SGD, {"alpha": [1]}), {"cv": 1}, "cv must be None, an int >= 2"),
        (("incremental", "SGDClassifier", SPACE), {}, "must be a scikit-learn estimator"),
        (("hyperband", SGD, SPACE), {"scoring": "acuracy"}, "scorer name"),
        (("grid", SGD, {"alpha": [1]}), {"scoring": "r3"}, "got 'r3'"),
    ],
)
def test_make_search_refuses_bad_input_before_any_work(
    args: tuple, options: dict, message: str
) -> None:
    with pytest.raises(SearchSpaceError) as error:
        make_search(*args, **options)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("method", "estimator", "space", "named"),
    [
        ("grid", LogisticRegression(), {"C": [1.0, "abc"]}, "'abc'"),
        ("hyperband", SGDClassifier(), {"penalty": ["l2", "l3"]}, "'l3'"),
        ("incremental", SGDClassifier(), {"alpha": [float("nan"), 0.1]}, "nan"),
        (
            "random",
            SGDClassifier(),
            {"alpha": {"distribution": "uniform", "low": -1, "high": 1}},
            "-1",
        ),
        ("halving", SGDClassifier(), {"n_iter_no_change": {"range": {"start": 0, "stop": 3}}}, "0"),
    ],
)
def test_every_candidate_value_is_checked_before_any_work(
    method: str, estimator: Any, space: dict[str, Any], named: str
) -> None:
    name = next(iter(space))
    with pytest.raises(SearchSpaceError, match=f"parameter '{name}': value {named}") as caught:
        make_search(method, estimator, space)
    assert "must be" in str(caught.value)  # scikit-learn's constraint, as it says it


def test_check_values_accepts_valid_candidates_and_sees_nested_parameters() -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from scaleml.search import check_values

    check_values(SGDClassifier(), parse_space(json.loads(SPACE_JSON)))
    pipeline = make_pipeline(StandardScaler(), SGDClassifier())
    check_values(pipeline, {"sgdclassifier__alpha": [1e-4]})
    with pytest.raises(SearchSpaceError, match="'sgdclassifier__alpha': value -1"):
        check_values(pipeline, {"sgdclassifier__alpha": [1e-4, -1]})
