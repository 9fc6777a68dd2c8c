"""Contracts: computed out of core on the session's workers, equal to pandas on the same rows;
read back from JSON; as a pandera schema; checked on batches."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pandera.errors
import pytest
from distributed import Client
from sklearn.linear_model import SGDClassifier

from scaleml.data import Dataset
from scaleml.monitor import (
    FORMAT_VERSION,
    Contract,
    ContractError,
    ContractViolation,
    compute_contract,
)
from scaleml.monitor._sketch import merge, rank_error, sketch


@pytest.fixture(scope="module")
def dataset(classification_path) -> Dataset:
    return Dataset(str(classification_path), target="target")


@pytest.fixture(scope="module")
def model(dataset: Dataset) -> SGDClassifier:
    frame = dataset.read_block(dataset.train_blocks[0])
    return SGDClassifier(random_state=0).fit(frame[dataset.features], frame["target"])


@pytest.fixture(scope="module")
def computed(dataset: Dataset, model: SGDClassifier, client: Client) -> Contract:
    return compute_contract(dataset, model, client=client)


def test_contract_out_of_core_equals_pandas_on_the_training_rows(
    dataset: Dataset, model: SGDClassifier, computed: Contract
) -> None:
    frame = pd.concat(list(dataset.iter_blocks(dataset.train_blocks)), ignore_index=True)
    assert 0 < computed.rank_error <= 0.01
    for name in dataset.features:
        spec, column = computed.features[name], frame[name]
        assert spec.kind == "numeric" and spec.rows == len(frame)
        assert spec.nulls == int(column.isna().sum())
        assert spec.minimum == column.min() and spec.maximum == column.max()
        assert spec.mean == pytest.approx(column.mean(), rel=1e-9)
        assert spec.std == pytest.approx(column.std(ddof=0), rel=1e-6)
        # Each quantile's rank is within the stated sketch error of its probability.
        ordered = np.sort(column.to_numpy())
        for probability, value in zip(np.linspace(0, 1, 101), spec.quantiles, strict=True):
            rank = np.searchsorted(ordered, value, side="right") / len(ordered)
            low = np.searchsorted(ordered, value, side="left") / len(ordered)
            assert low - computed.rank_error <= probability <= rank + computed.rank_error
        # The reference histogram: fixed bins cut at the quantiles, shares as in pandas.
        edges = np.asarray(spec.edges)
        counts = np.bincount(np.searchsorted(edges[1:-1], column, side="left"))
        assert np.allclose(spec.proportions, counts / len(frame), atol=2 * computed.rank_error)
        assert len(edges) == 21 and sum(spec.proportions) == pytest.approx(1.0)
    balance = frame["target"].value_counts(normalize=True).sort_index()
    assert computed.target is not None and computed.target.kind == "categorical"
    assert computed.target.categories == balance.index.tolist()
    assert np.allclose(computed.target.proportions, balance.to_numpy())
    validation = pd.concat(list(dataset.iter_blocks(dataset.validation_blocks)))
    predicted = pd.Series(model.predict(validation[dataset.features])).value_counts(normalize=True)
    assert computed.output is not None
    assert dict(zip(computed.output.categories, computed.output.proportions, strict=True)) == (
        pytest.approx(predicted.sort_index().to_dict())
    )


def test_contract_round_trips_through_json_and_refuses_a_newer_format(computed: Contract) -> None:
    document = json.loads(computed.to_json())
    assert document["format_version"] == FORMAT_VERSION
    again = Contract.from_dict(document)
    assert again.to_dict() == computed.to_dict()
    newer = {**document, "format_version": FORMAT_VERSION + 1, "scaleml_version": "9.0"}
    with pytest.raises(ContractError, match=r"format version 2.*upgrade scaleml"):
        Contract.from_dict(newer)
    with pytest.raises(ContractError, match="not a scaleml contract"):
        Contract.from_dict({"features": {}})
    with pytest.raises(ContractError, match="columns not in the contract: \\['other'\\]"):
        computed.check_columns([*computed.features, "other"])


def test_pandera_accepts_the_training_data_and_rejects_a_row_out_of_range(
    dataset: Dataset, computed: Contract
) -> None:
    schema = computed.to_pandera()
    frame = pd.concat(list(dataset.iter_blocks(dataset.train_blocks)), ignore_index=True)
    schema.validate(frame[dataset.features])
    bad = frame[dataset.features].head(5).copy()
    bad.loc[3, "f003"] = computed.features["f003"].maximum + 1.0
    with pytest.raises(pandera.errors.SchemaError, match="f003"):
        schema.validate(bad)


def test_batch_checks_name_row_column_value_and_bound(computed: Contract) -> None:
    top = computed.features["f002"].maximum
    columns = {name: np.zeros(4) for name in computed.features}
    assert computed.violations(columns) == {}
    columns["f002"] = np.array([0.0, 0.0, top + 2.5, top + 3.0])
    found = computed.violations(columns)
    assert list(found) == ["f002"] and found["f002"][:3] == (2, 2, top + 2.5)
    with pytest.raises(ContractViolation, match=r"row 2, column 'f002'.*maximum") as caught:
        computed.enforce(columns)
    assert caught.value.column == "f002" and caught.value.row == 2
    # Many rows take the vectorised path; the answer is the same.
    low = computed.features["f006"].minimum
    wide = {name: np.zeros(1000) for name in computed.features}
    wide["f002"][[7, 9]] = top + 2.5
    wide["f006"][500] = low - 1.0
    found = computed.violations(wide)
    assert found["f002"] == (2, 7, top + 2.5, f"maximum {top:g}")
    assert found["f006"] == (1, 500, low - 1.0, f"minimum {low:g}")


def test_sketch_error_bound_holds_over_many_merges() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.exponential(size=int(rng.integers(1_000, 9_000))) for _ in range(37)]
    sketches = [sketch(p, k=256) for p in parts]
    while len(sketches) > 1:
        sketches = [merge(*sketches[i : i + 2], k=256) for i in range(0, len(sketches), 2)]
    merged, values = sketches[0], np.sort(np.concatenate(parts))
    bound = rank_error(merged.levels, k=256)
    assert merged.count == pytest.approx(len(values))
    for probability in np.linspace(0, 1, 41):
        value = merged.quantiles([probability])[0]
        high = np.searchsorted(values, value, side="right") / len(values)
        low = np.searchsorted(values, value, side="left") / len(values)
        assert low - bound <= probability <= high + bound
