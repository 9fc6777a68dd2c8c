"""Job specs: every candidate value of a search space is checked at submit, and ``promote``
takes always / if-better / never."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from scaleml.coordinator.specs import parse_spec
from tests.coordinator.conftest import search_spec, train_spec


@pytest.mark.parametrize(
    ("method", "space", "named"),
    [
        ("grid", {"penalty": ["l2", "l3"]}, "value 'l3' is refused"),
        # (NaN is refused before this check, by the spec's limits: tests/security.)
        ("random", {"alpha": [-0.5, 0.1]}, "value -0.5 is refused"),
        ("hyperband", {"alpha": {"distribution": "uniform", "low": -1, "high": 1}}, "value -1"),
    ],
)
def test_a_refused_candidate_value_is_a_422_error_on_the_space(
    method: str, space: dict, named: str
) -> None:
    spec = search_spec(Path("data"), method=method, space=space)
    with pytest.raises(pydantic.ValidationError) as caught:
        parse_spec(spec)
    [error] = caught.value.errors()
    assert error["loc"][-1] == "space"
    assert named in error["msg"] and "must be" in error["msg"]


def test_promote_defaults_to_if_better_and_takes_three_values() -> None:
    assert parse_spec(train_spec(Path("data"))).promote == "if-better"
    for value in ("always", "if-better", "never"):
        assert parse_spec(search_spec(Path("data"), promote=value)).promote == value
    with pytest.raises(pydantic.ValidationError) as caught:
        parse_spec(train_spec(Path("data"), promote="sometimes"))
    assert [e["loc"][-1] for e in caught.value.errors()] == ["promote"]
