"""The drift window without a server: in-distribution streams stay quiet, a one-sd shift of
one feature is significant for that feature only, memory is fixed whatever the traffic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaleml.monitor import (
    NO_CHANGE,
    SIGNIFICANT,
    Contract,
    DriftWindow,
    Thresholds,
    contract_from_frame,
    jensen_shannon,
    psi,
)

FEATURES = ["a", "b", "c", "kind"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(5.0, 2.0, size=n),
            "c": rng.exponential(size=n),
            "kind": rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2], size=n),
        }
    )


@pytest.fixture(scope="module")
def contract() -> Contract:
    frame = _frame(50_000, 0)
    predictions = (frame.a + frame.c > 1).astype(int)
    return contract_from_frame(frame, FEATURES, predictions=predictions)


def _feed(window: DriftWindow, frame: pd.DataFrame, batch: int = 500) -> None:
    for start in range(0, len(frame), batch):
        part = frame.iloc[start : start + batch]
        columns = {name: part[name].to_numpy() for name in FEATURES}
        window.observe(columns, (part.a + part.c > 1).astype(int).to_numpy())


def test_a_stream_from_the_training_distribution_stays_under_no_change(contract) -> None:
    assert contract.features["kind"].kind == "categorical"
    window = DriftWindow(contract, window_rows=10_000)
    _feed(window, _frame(30_000, 1))
    report = window.report()
    assert report["rows_seen"] == 30_000 and report["rows_in_window"] <= 11_000
    for name, entry in report["features"].items():
        assert entry["status"] == NO_CHANGE, (name, entry)
        assert set(entry["scores"]) == (
            {"jensen_shannon"} if name == "kind" else {"psi", "wasserstein"}
        )
        for metric, value in entry["scores"].items():
            assert value < getattr(window.thresholds, metric)[0]
    assert report["prediction"]["status"] == NO_CHANGE
    assert set(report["prediction"]["class_balance"]) == {"0", "1"}


def test_a_one_sd_shift_of_one_feature_is_significant_for_that_feature_only(contract) -> None:
    window = DriftWindow(contract, window_rows=10_000)
    shifted = _frame(20_000, 2)
    shifted["b"] += 2.0  # b's standard deviation
    _feed(window, shifted)
    features = window.report()["features"]
    assert features["b"]["status"] == SIGNIFICANT
    assert features["b"]["scores"]["psi"] > 0.25
    assert features["b"]["scores"]["wasserstein"] == pytest.approx(1.0, abs=0.1)
    assert [n for n, e in features.items() if e["status"] != NO_CHANGE] == ["b"]


def test_the_window_slides_back_to_no_change_after_the_shift_ends(contract) -> None:
    window = DriftWindow(contract, window_rows=5_000, slots=5)
    shifted = _frame(5_000, 3)
    shifted["kind"] = 3
    _feed(window, shifted)
    assert window.report()["features"]["kind"]["status"] == SIGNIFICANT
    _feed(window, _frame(12_000, 4))
    assert window.report()["features"]["kind"]["status"] == NO_CHANGE


def test_drift_state_stays_bounded_over_a_million_rows(contract) -> None:
    window = DriftWindow(contract, window_rows=10_000)
    batch = _frame(20_000, 5)
    columns = {name: batch[name].to_numpy() for name in FEATURES}
    predictions = (batch.a + batch.c > 1).astype(int).to_numpy()
    for _ in range(12):
        window.observe(columns, predictions)
    size = window.nbytes
    for _ in range(40):
        window.observe(columns, predictions)
    assert window.rows_seen == 52 * 20_000
    assert window.nbytes == size < 200_000


def test_scores_of_known_distributions() -> None:
    same = np.array([0.25, 0.25, 0.5])
    assert psi(same, same) == 0.0 and jensen_shannon(same, same) == 0.0
    assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    thresholds = Thresholds()
    assert thresholds.status("psi", 0.05) == NO_CHANGE
    assert thresholds.status("psi", 0.3) == SIGNIFICANT
    assert thresholds.status("psi", 0.15) == "moderate"
