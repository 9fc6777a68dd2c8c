"""XGBoost and LightGBM specs take the keyword parameters each library documents beyond
get_params() (LightGBM's `verbose`, its aliases; XGBoost's booster parameters); typos are
still refused."""

from __future__ import annotations

import pytest

from scaleml.coordinator.specs import parse_spec
from scaleml.errors import EstimatorSpecError
from scaleml.estimators import from_spec
from scaleml.train._boosting_params import resolve_estimator


@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        ("LGBMClassifier", {"verbose": -1}),
        ("LGBMRegressor", {"verbosity": -1, "min_data_in_leaf": 5, "bagging_fraction": 0.8}),
        ("lightgbm.DaskLGBMClassifier", {"verbose": -1}),
        ("XGBClassifier", {"eta": 0.2, "seed": 3}),
    ],
)
def test_documented_keywords_are_accepted_and_reach_the_dask_estimator(
    estimator: str, params: dict
) -> None:
    model = from_spec({"estimator": estimator, "params": params})
    for key, value in params.items():
        assert model.get_params()[key] == value
    dask_model, _ = resolve_estimator({"estimator": estimator, "params": params})
    assert type(dask_model).__name__.startswith("Dask")
    for key, value in params.items():
        assert dask_model.get_params()[key] == value


def test_a_boost_job_spec_accepts_verbose() -> None:
    spec = parse_spec(
        {
            "kind": "boost",
            "estimator": {"estimator": "LGBMClassifier", "params": {"verbose": -1}},
            "dataset": {"path": "data/x.parquet", "target": "y"},
        }
    )
    assert spec.estimator.params == {"verbose": -1}


@pytest.mark.parametrize("estimator", ["LGBMClassifier", "XGBClassifier", "SGDClassifier"])
def test_misspelled_parameters_are_still_refused(estimator: str) -> None:
    with pytest.raises(EstimatorSpecError, match=r"unknown parameter\(s\) \['verbos'\]"):
        from_spec({"estimator": estimator, "params": {"verbos": 1}})
