"""The decision functions and schedule maths, without a cluster, checked against dask-ml's
own (pure) implementations on simulated histories."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import scipy.stats
from dask_ml.model_selection import HyperbandSearchCV as DaskHyperband
from dask_ml.model_selection import IncrementalSearchCV as DaskIncremental
from dask_ml.model_selection import InverseDecaySearchCV as DaskInverseDecay
from dask_ml.model_selection import SuccessiveHalvingSearchCV as DaskHalving
from sklearn.linear_model import SGDClassifier

from scaleml.search import (
    HyperbandSearchCV,
    IncrementalSearchCV,
    InverseDecaySearchCV,
    SuccessiveHalvingSearchCV,
)
from scaleml.search._history import bracket_metadata
from scaleml.search._policies import Decision, decide, hyperband_brackets

Score = Callable[[Any, int], float]
MODEL = SGDClassifier()
SPACE = {"alpha": scipy.stats.uniform(0, 1)}


def curve(model_id: Any, calls: int) -> float:
    """Scores that rise and saturate at a model-dependent level and speed."""
    k = hash(str(model_id)) % 97
    ceiling = 0.5 + (k % 13) / 30
    return ceiling * (1 - 0.8 ** (calls * (1 + k % 5)))


def flat_after(model_id: Any, calls: int) -> float:
    """Model 0 stops improving after 4 calls; the others keep improving."""
    if model_id == 0:
        return 0.3 if calls >= 4 else 0.1 * calls
    return 0.5 + 0.01 * calls


def simulate(
    decide_fn: Callable[[dict], dict], n: int, score: Score, ids: Any = None, records: Any = None
) -> list:
    """Run a policy as the driver does: one call for every model, then its decisions (the
    records made are appended to ``records``)."""
    ids = list(range(n)) if ids is None else ids
    records = [] if records is None else records
    info: dict[Any, list[dict[str, Any]]] = {k: [] for k in ids}
    calls = dict.fromkeys(ids, 1)
    todo = dict.fromkeys(ids, 1)
    rounds = []
    while True:
        for k in todo:
            record = {"model_id": k, "partial_fit_calls": calls[k], "score": score(k, calls[k])}
            info[k].append(record)
            records.append(record)
        decision = decide_fn({k: info[k] for k in info})
        rounds.append(dict(decision))
        for k in list(info):
            if k not in decision:
                del info[k]
        if not any(decision.values()):
            return rounds
        todo = {k: v for k, v in decision.items() if v}
        for k, v in todo.items():
            calls[k] += v


def ours(search: Any) -> Callable[[dict], dict]:
    """Our policy for ``search`` as a function of ``info`` alone (keeps its decision log)."""
    policy = search._groups(seed=0)[0].policy
    log: list[Decision] = []

    def run(info: dict) -> dict:
        decision = policy(info, log)
        log.append(decision)
        return decision.calls

    return run


def theirs(search: Any) -> Callable[[dict], dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return search._additional_calls


CASES = [
    (dict(max_iter=12), dict(max_iter=12, decay_rate=None), 6),
    (dict(max_iter=10, fits_per_score=3), dict(max_iter=10, fits_per_score=3, decay_rate=None), 4),
    (
        dict(max_iter=7, patience=3, tol=-1),
        dict(max_iter=7, patience=3, tol=-1, decay_rate=None),
        5,
    ),
]


@pytest.mark.parametrize(("mine", "dask_ml", "n"), CASES)
def test_incremental_decisions_match_dask_ml(mine: dict, dask_ml: dict, n: int) -> None:
    expected = simulate(theirs(DaskIncremental(MODEL, {}, **dask_ml)), n, curve)
    search = IncrementalSearchCV(MODEL, SPACE, n_initial_parameters=n, **mine)
    assert simulate(ours(search), n, curve) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_initial_parameters=10, decay_rate=1.0, max_iter=30),
        dict(n_initial_parameters=20, decay_rate=0.5, max_iter=15),
        dict(n_initial_parameters=9, decay_rate=1.0, fits_per_score=2, patience=4, tol=-1),
    ],
)
def test_inverse_decay_decisions_match_dask_ml(kwargs: dict) -> None:
    n = kwargs["n_initial_parameters"]
    expected = simulate(theirs(DaskInverseDecay(MODEL, {}, **kwargs)), n, curve)
    actual = simulate(ours(InverseDecaySearchCV(MODEL, SPACE, **kwargs)), n, curve)
    assert actual == expected
    assert len(actual[-1]) < n, "inverse decay drops models as time goes on"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_initial_parameters=27, n_initial_iter=1, aggressiveness=3),
        dict(n_initial_parameters=10, n_initial_iter=2, aggressiveness=3),
        dict(n_initial_parameters=16, n_initial_iter=1, aggressiveness=4, max_iter=20),
        dict(n_initial_parameters=9, n_initial_iter=3, aggressiveness=3, max_iter=5),
    ],
)
def test_successive_halving_decisions_and_metadata_match_dask_ml(kwargs: dict) -> None:
    n = kwargs["n_initial_parameters"]
    dask_search = DaskHalving(MODEL, {}, **kwargs)
    expected = simulate(theirs(dask_search), n, curve)
    search = SuccessiveHalvingSearchCV(MODEL, SPACE, **kwargs)
    assert simulate(ours(search), n, curve) == expected
    assert search.metadata == dask_search.metadata


@pytest.mark.parametrize(("max_iter", "aggressiveness"), [(81, 3), (27, 3), (100, 4), (9, 3)])
def test_hyperband_metadata_matches_dask_ml(max_iter: int, aggressiveness: int) -> None:
    mine = HyperbandSearchCV(
        MODEL, SPACE, max_iter=max_iter, aggressiveness=aggressiveness, random_state=5
    )
    theirs_ = DaskHyperband(
        MODEL, SPACE, max_iter=max_iter, aggressiveness=aggressiveness, random_state=5
    )
    assert mine.metadata == theirs_.metadata


def test_hyperband_brackets_are_the_papers() -> None:
    # Table 1 of the Hyperband paper (R=81, eta=3): n_i models with r_i initial calls.
    assert hyperband_brackets(81, 3) == {4: (81, 1), 3: (34, 3), 2: (15, 9), 1: (8, 27), 0: (5, 81)}


@pytest.mark.parametrize(("max_iter", "aggressiveness"), [(81, 3), (27, 3), (64, 4)])
def test_simulated_hyperband_runs_what_its_metadata_says(
    max_iter: int, aggressiveness: int
) -> None:
    search = HyperbandSearchCV(
        MODEL, SPACE, max_iter=max_iter, aggressiveness=aggressiveness, random_state=0
    )
    records: list[dict[str, Any]] = []
    for group in search._groups(seed=0):
        log: list[Decision] = []

        def run(info: dict, policy: Any = group.policy, log: list = log) -> dict:
            decision = policy(info, log)
            log.append(decision)
            return decision.calls

        made: list[dict[str, Any]] = []
        simulate(run, len(group.models), curve, ids=list(group.models), records=made)
        records += [{**r, "bracket": group.extra["bracket"]} for r in made]
    expected = search.metadata
    actual = bracket_metadata(
        records,
        sorted(search._shas),
        {b["bracket"]: b["SuccessiveHalvingSearchCV params"] for b in expected["brackets"]},
    )
    assert actual == expected


def test_patience_stops_only_the_model_on_a_plateau() -> None:
    # dask-ml stops the whole search one round after the first plateau; here the models
    # that still improve go on to max_iter.
    policy = partial(
        decide, adapt=lambda info, n: dict.fromkeys(info, 1), patience=3, tol=0.001, max_iter=12
    )
    log: list[Decision] = []

    def run(info: dict) -> dict:
        log.append(policy(info, log))
        return log[-1].calls

    rounds = simulate(run, 3, flat_after)
    final = {k: max(r for r, d in enumerate(rounds) if d.get(k)) + 2 for k in range(3)}
    assert final[0] < 12
    assert final[1] == final[2] == 12


@pytest.mark.parametrize(("max_iter", "fits_per_score"), [(20, 1), (10, 3), (7, 7), (1, 1)])
def test_the_known_rounds_are_the_rounds_the_policy_decides(
    max_iter: int, fits_per_score: int
) -> None:
    """IncrementalSearchCV without patience announces how many coming decisions give more
    calls (the driver runs them as one task); under any scores, that is what it decides."""
    search = IncrementalSearchCV(
        MODEL, SPACE, max_iter=max_iter, fits_per_score=fits_per_score, decay_rate=None
    )
    [group] = search._groups(seed=0)
    assert group.lookahead is not None
    for score in (lambda k, c: k * 0.1 + c, lambda k, c: -c, lambda k, c: 0.5):
        rounds = simulate(ours(search), 3, score)
        after_first = [r for r in rounds if any(r.values())]
        assert group.lookahead(1) == len(after_first)
        assert all(set(r.values()) == {fits_per_score} for r in after_first)


@pytest.mark.parametrize(
    "search",
    [
        IncrementalSearchCV(MODEL, SPACE, patience=3, decay_rate=None),
        InverseDecaySearchCV(MODEL, SPACE),
        SuccessiveHalvingSearchCV(MODEL, SPACE, n_initial_iter=1),
    ],
)
def test_decisions_that_depend_on_scores_are_not_announced(search: Any) -> None:
    assert all(group.lookahead is None for group in search._groups(seed=0))
