"""Model specs as ``scaleml serve --model`` takes them."""

from __future__ import annotations

import pytest

from scaleml.gateway import ModelSpec


@pytest.mark.parametrize(
    ("text", "alias", "version"),
    [
        ("churn", "champion", None),
        ("churn@challenger", "challenger", None),
        ("churn/3", None, "3"),
        ("models:/churn@live", "live", None),
    ],
)
def test_specs_name_an_alias_to_follow_or_a_fixed_version(text, alias, version) -> None:
    spec = ModelSpec.parse(text)
    assert (spec.name, spec.alias, spec.version) == ("churn", alias, version)


@pytest.mark.parametrize("text", ["", "churn@", "churn/x", "a/1/2", "churn@a@b"])
def test_bad_specs_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="NAME, NAME@alias or NAME/version"):
        ModelSpec.parse(text)
