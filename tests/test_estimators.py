import math

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier

from scaleml.errors import EstimatorSpecError
from scaleml.estimators import (
    ALLOWED_ESTIMATORS,
    INCREMENTAL_ESTIMATORS,
    EstimatorSpec,
    estimator_class,
    from_spec,
    is_incremental,
    parse_param,
    to_spec,
)


def _same(a: object, b: object) -> bool:
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return both_nan or a == b


@pytest.mark.parametrize("path", ALLOWED_ESTIMATORS)
def test_round_trip_through_json_keeps_every_parameter(path: str) -> None:
    estimator = estimator_class(path)()
    text = to_spec(estimator).model_dump_json()
    rebuilt = from_spec(text)
    assert type(rebuilt) is type(estimator)
    original, again = estimator.get_params(), rebuilt.get_params()
    assert original.keys() == again.keys()
    assert all(_same(original[k], again[k]) for k in original), path


def test_round_trip_keeps_non_default_values_and_tuples() -> None:
    estimator = MLPClassifier(hidden_layer_sizes=(16, 8), alpha=np.float64(0.01), random_state=3)
    spec = to_spec(estimator)
    assert spec.estimator == "sklearn.neural_network.MLPClassifier"
    assert spec.params["hidden_layer_sizes"] == [16, 8]
    rebuilt = from_spec(spec.model_dump())
    assert rebuilt.get_params() == estimator.get_params()
    assert rebuilt.hidden_layer_sizes == (16, 8)


def test_short_names_resolve_to_the_allow_listed_class() -> None:
    estimator = from_spec({"estimator": "SGDClassifier", "params": {"alpha": 0.001}})
    assert isinstance(estimator, SGDClassifier) and estimator.alpha == 0.001


def test_every_incremental_estimator_has_partial_fit() -> None:
    for path in INCREMENTAL_ESTIMATORS:
        assert is_incremental(estimator_class(path)()), path


@pytest.mark.parametrize(
    "name", ["os.system", "sklearn.pipeline.Pipeline", "builtins.eval", "NotAnEstimator"]
)
def test_classes_off_the_allow_list_are_rejected(name: str) -> None:
    with pytest.raises(EstimatorSpecError, match="not on the allow-list"):
        from_spec({"estimator": name})


def test_unknown_parameter_is_named_with_the_valid_ones() -> None:
    with pytest.raises(EstimatorSpecError, match=r"unknown parameter\(s\) \['alpah'\].*'alpha'"):
        from_spec({"estimator": "SGDClassifier", "params": {"alpah": 1.0}})


def test_invalid_value_is_rejected_before_any_fit() -> None:
    with pytest.raises(EstimatorSpecError, match="'alpha' parameter of SGDClassifier"):
        from_spec({"estimator": "SGDClassifier", "params": {"alpha": "high"}})


def test_malformed_specs_are_spec_errors() -> None:
    with pytest.raises(EstimatorSpecError, match="invalid estimator spec"):
        from_spec('{"estimator": "SGDClassifier", "params": [1]}')
    with pytest.raises(EstimatorSpecError, match="invalid estimator spec"):
        from_spec({"estimator": "SGDClassifier", "pickle": "gASV"})


def test_to_spec_refuses_subclasses_and_objects_in_params() -> None:
    class Custom(SGDClassifier):
        pass

    with pytest.raises(EstimatorSpecError, match="not on the allow-list"):
        to_spec(Custom())
    with pytest.raises(EstimatorSpecError, match=r"parameter 'class_weight'.*not JSON"):
        to_spec(SGDClassifier(class_weight=object()))


def test_parse_param_reads_json_values_and_keeps_words_as_text() -> None:
    assert parse_param("alpha=1e-4") == ("alpha", 1e-4)
    assert parse_param("average=true") == ("average", True)
    assert parse_param("loss=log_loss") == ("loss", "log_loss")
    assert parse_param("hidden_layer_sizes=[8, 4]") == ("hidden_layer_sizes", [8, 4])
    with pytest.raises(EstimatorSpecError, match="key=value"):
        parse_param("alpha")


def test_spec_model_is_plain_json() -> None:
    spec = EstimatorSpec(estimator="sklearn.linear_model.SGDRegressor", params={"eta0": 0.1})
    assert spec.model_dump() == {
        "estimator": "sklearn.linear_model.SGDRegressor",
        "params": {"eta0": 0.1},
    }
