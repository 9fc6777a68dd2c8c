"""The searches against dask-ml 2025.1 itself: its recorded outputs on a small workload
(``daskml_reference.json``, written by ``benchmarks/daskml_reference.py`` in dask-ml's own
environment on Dask 2025.2) must come out of scaleml's searches exactly, timings aside:
the same models, scores, survivors and best model; the same ``cv_results_`` keys and dtypes,
record key sets, ``metadata`` / ``metadata_``, and dask-ml's progress messages."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats
from distributed import Client
from sklearn.linear_model import SGDClassifier

import scaleml.search
from benchmarks.daskml_reference import record, searches

REFERENCE = json.loads((Path(__file__).parent / "daskml_reference.json").read_text())
MODEL = SGDClassifier(tol=1e-3, penalty="elasticnet", random_state=0)


def fit_like_the_reference(name: str, xy: tuple[Any, Any], caplog: Any) -> dict[str, Any]:
    search = searches(MODEL, scaleml.search)[name].set_params(verbose=True)
    X, y = xy
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dask_ml"):
        search.fit(X, y, classes=[0, 1])
    logged = [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith("dask_ml")]
    return json.loads(json.dumps(record(search, logged)))


def per_prefix(logged: list[list[str]]) -> dict[str, list[list[str]]]:
    """The messages of each search or bracket, in order (brackets interleave freely)."""
    out: dict[str, list[list[str]]] = {}
    for name, message in logged:
        out.setdefault(message.split("]")[0], []).append([name, message])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hyperband", "hyperband_27", "incremental", "successive_halving"])
def test_the_search_gives_dask_mls_results_exactly(
    client: Client, small_xy: tuple[Any, Any], caplog: Any, name: str
) -> None:
    expected = REFERENCE[name]
    got = fit_like_the_reference(name, small_xy, caplog)

    assert got["cv_results_keys"] == expected["cv_results_keys"]
    assert got["cv_results_dtypes"] == expected["cv_results_dtypes"]
    assert got["history_keys"] == expected["history_keys"]
    assert got["model_history_keys"] == expected["model_history_keys"]
    assert got["history"] == expected["history"]  # the same models, calls and scores
    assert got["best_model_id"] == expected["best_model_id"]
    assert got["best_score"] == expected["best_score"]
    assert got["best_params"] == expected["best_params"]
    for key, values in expected["cv_results"].items():
        if key == "rank_test_score" and "bracket" in expected["cv_results"]:
            # dask-ml ranks within each bracket; scaleml over the whole search (documented).
            scores = -np.asarray(expected["cv_results"]["test_score"])
            values = scipy.stats.rankdata(scores, method="min").astype(int).tolist()
        assert got["cv_results"][key] == values, key
    if "metadata" in expected:
        assert got["metadata"] == expected["metadata"]
        assert got["metadata_"] == expected["metadata_"]
    logged, reference = per_prefix(got["logged"]), per_prefix(expected["logged"])
    if "bracket" not in expected["cv_results"]:
        assert logged == reference
        return
    # dask-ml's brackets each enter and leave a logging context on the one logger, at
    # different times, so some of its last messages are dropped; the rest are ours, in order.
    assert logged.keys() == reference.keys()
    for prefix, messages in reference.items():
        remaining = iter(logged[prefix])
        assert all(message in remaining for message in messages), prefix
    decisions = {
        f"[CV, bracket={b['bracket']}": b["decisions"] for b in expected["metadata_"]["brackets"]
    }
    for prefix, messages in logged.items():
        rounds = [m for _, m in messages if "validation score" in m]
        assert len(rounds) == len(decisions[prefix]) + (1 not in decisions[prefix]), prefix
