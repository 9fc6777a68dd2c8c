"""The adaptive searches on a real two-worker cluster: call accounting against dask-ml's own
decision functions, dask-ml's fitted attributes, reproducibility, inputs, hooks."""

from __future__ import annotations

import inspect
import re
import warnings
from typing import Any

import numpy as np
import pytest
from dask_ml.model_selection import InverseDecaySearchCV as DaskInverseDecay
from dask_ml.model_selection import SuccessiveHalvingSearchCV as DaskHalving
from dask_ml.model_selection._hyperband import HyperbandSearchCV as DaskHyperband
from dask_ml.model_selection._incremental import BaseIncrementalSearchCV
from distributed import Client, get_task_stream
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import SGDClassifier

from scaleml.data import Dataset
from scaleml.search import (
    HyperbandSearchCV,
    IncrementalSearchCV,
    InverseDecaySearchCV,
    SearchSummary,
    SuccessiveHalvingSearchCV,
    observe,
)
from tests.search.conftest import PARAMS
from tests.search.test_policies import simulate

MODEL = SGDClassifier(tol=1e-3, penalty="elasticnet", random_state=0)
TIMING = {"partial_fit_time", "score_time", "elapsed_wall_time"}


def dask_ml_cv_keys() -> set[str]:
    """The cv_results_ keys dask-ml builds, read from its source."""
    source = inspect.getsource(BaseIncrementalSearchCV._get_cv_results)
    return set(re.findall(r'"(\w+)":', source)) | {"rank_test_score"}


def replay(dask_search: Any, search: Any, ids: list[Any] | None = None) -> dict[Any, int]:
    """Final calls per model when dask-ml's decision function sees the scores we recorded."""
    history = search.model_history_
    ids = list(history) if ids is None else ids
    scores = {(k, r["partial_fit_calls"]): r["score"] for k in ids for r in history[k]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rounds = simulate(
            dask_search._additional_calls, len(ids), lambda k, c: scores[(k, c)], ids=ids
        )
    calls = dict.fromkeys(ids, 1)
    for decision in rounds:
        for k, v in decision.items():
            calls[k] += v
    return calls


def final_calls(search: Any) -> dict[Any, int]:
    return {k: v[-1]["partial_fit_calls"] for k, v in search.model_history_.items()}


def test_incremental_search_trains_every_model_to_max_iter(
    client: Client, small_xy: tuple[Any, Any]
) -> None:
    X, y = small_xy
    search = IncrementalSearchCV(
        MODEL, PARAMS, n_initial_parameters=6, max_iter=8, random_state=0, decay_rate=None
    )
    assert search.fit(X, y, classes=[0, 1]) is search

    results = search.cv_results_
    assert set(results) == dask_ml_cv_keys() | {f"param_{p}" for p in PARAMS}
    assert list(results["model_id"]) == list(range(6))
    assert list(results["partial_fit_calls"]) == [8] * 6
    assert len(search.history_) == 6 * 8
    assert set(search.model_history_) == set(range(6))
    assert search.best_score_ == results["test_score"].max()
    assert results["test_score"][search.best_index_] == search.best_score_
    assert results["rank_test_score"][search.best_index_] == 1
    assert search.best_params_ == results["params"][search.best_index_]
    assert search.best_estimator_.get_params()["alpha"] == search.best_params_["alpha"]
    assert search.best_score_ > results["test_score"].min() + 0.05
    assert (search.n_splits_, search.multimetric_) == (1, False)
    assert 0.5 < search.score(X, y) <= 1.0

    predictions = search.predict(X)
    assert predictions.shape == (X.shape[0],)
    assert set(np.unique(predictions.compute())) <= {0, 1}
    assert search.decision_function(X[:100]).compute().shape == (100,)
    assert search.predict(X[:5].compute()).shape == (5,)


def training_tasks(stream: Any) -> list[dict[str, Any]]:
    """The training tasks a task stream saw run."""
    return [
        task
        for task in stream.data
        if str(task["key"]).startswith("partial_fit-")
        and any(s["action"] == "compute" for s in task["startstops"])
    ]


@pytest.mark.parametrize(
    ("n_models", "max_iter", "per_call"),
    [(6, 8, 2), (20, 3, 4)],  # 20 models: 10 per worker, in batches of at most 8
)
def test_the_models_on_a_worker_train_in_one_task_per_call(
    client: Client, small_xy: tuple[Any, Any], n_models: int, max_iter: int, per_call: int
) -> None:
    """What the dashboard's task stream shows: 6 models on 2 workers, 8 calls each, are 16
    training tasks (3 models each), not 48, when each decision depends on the scores (here
    ``patience``, which never sees a plateau with ``tol=None``); a guess cancelled at the end
    may add one per batch."""
    X, y = small_xy
    search = IncrementalSearchCV(
        MODEL,
        PARAMS,
        n_initial_parameters=n_models,
        max_iter=max_iter,
        patience=2,
        tol=None,
        random_state=0,
        decay_rate=None,
    )
    with get_task_stream(client) as stream:
        search.fit(X, y, classes=[0, 1])

    assert len(client.nthreads()) == 2
    training = training_tasks(stream)
    assert per_call * max_iter <= len(training) <= per_call * (max_iter + 1)
    assert {task["worker"] for task in training} == set(client.nthreads())
    assert list(search.cv_results_["partial_fit_calls"]) == [max_iter] * n_models


def test_known_decisions_run_several_rounds_in_one_task(
    client: Client, small_xy: tuple[Any, Any]
) -> None:
    """Without ``patience`` IncrementalSearchCV's decisions do not depend on the scores: after
    the first call, each worker trains its models 8 rounds per task (19 calls: 8 + 8 + 3), and
    every call still gets its record and score, in order."""
    X, y = small_xy
    search = IncrementalSearchCV(
        MODEL, PARAMS, n_initial_parameters=6, max_iter=20, random_state=0, decay_rate=None
    )
    with get_task_stream(client) as stream:
        search.fit(X, y, classes=[0, 1])

    assert len(training_tasks(stream)) == 2 * 4  # no guess wasted: the end is known
    assert len(search.history_) == 6 * 20
    for records in search.model_history_.values():
        assert [r["partial_fit_calls"] for r in records] == list(range(1, 21))
        times = [r["elapsed_wall_time"] for r in records]
        assert times == sorted(times)
    assert len({r["score"] for r in search.model_history_[0]}) > 1


def test_the_workers_hold_only_the_latest_states_of_the_models(
    client: Client, small_xy: tuple[Any, Any]
) -> None:
    """Worker memory does not grow with the calls: late in a 30-call search, the cluster holds
    a few batch states per worker (the last, the running one, a guess), not one per call."""
    X, y = small_xy
    held: list[int] = []

    def count_states(record: dict[str, Any]) -> None:
        if record["partial_fit_calls"] == 25 and not held:
            holders = client.who_has()
            held.append(
                sum(bool(w) and str(k).startswith("partial_fit-") for k, w in holders.items())
            )

    search = IncrementalSearchCV(
        MODEL, PARAMS, n_initial_parameters=4, max_iter=30, random_state=0, decay_rate=None
    )
    observe(search, on_record=count_states)
    search.fit(X, y, classes=[0, 1])

    assert held and held[0] <= 8  # 2 workers: 2 x (last + running + guess), with room
    assert list(search.cv_results_["partial_fit_calls"]) == [30] * 4


def test_random_state_makes_two_runs_identical(client: Client, small_xy: tuple) -> None:
    X, y = small_xy

    def run() -> dict[Any, list[dict[str, Any]]]:
        search = SuccessiveHalvingSearchCV(
            MODEL, PARAMS, n_initial_parameters=6, n_initial_iter=1, random_state=7
        )
        search.fit(X, y, classes=[0, 1])
        return {
            k: [{f: v for f, v in r.items() if f not in TIMING} for r in records]
            for k, records in search.model_history_.items()
        }

    first, second = run(), run()
    assert first == second
    scores = [records[-1]["score"] for records in first.values()]
    assert len(set(scores)) > 1


def test_successive_halving_follows_dask_ml_and_its_metadata(
    client: Client, small_xy: tuple
) -> None:
    X, y = small_xy
    kwargs = dict(n_initial_parameters=9, n_initial_iter=1, aggressiveness=3, random_state=2)
    search = SuccessiveHalvingSearchCV(MODEL, PARAMS, **kwargs)
    search.fit(X, y, classes=[0, 1])

    assert (
        search.metadata_
        == search.metadata
        == {
            "partial_fit_calls": 9 * 1 + 3 * 2 + 1 * 6,
            "n_models": 9,
            "max_iter": 9,
        }
    )
    assert final_calls(search) == replay(DaskHalving(MODEL, {}, **kwargs), search)
    # Models stopped early receive no call after they were dropped.
    calls = final_calls(search)
    for model_id, records in search.model_history_.items():
        later = [
            r["elapsed_wall_time"]
            for r in search.history_
            if r["partial_fit_calls"] > calls[model_id]
        ]
        if later:
            assert records[-1]["elapsed_wall_time"] < min(later)
    survivors = [k for k, c in calls.items() if c == max(calls.values())]
    assert search.best_index_ in survivors
    assert search.best_score_ == max(search.model_history_[k][-1]["score"] for k in survivors)


def test_inverse_decay_follows_dask_ml(client: Client, small_xy: tuple) -> None:
    X, y = small_xy
    kwargs = dict(n_initial_parameters=30, decay_rate=1.0, max_iter=20, random_state=4)
    search = InverseDecaySearchCV(MODEL, PARAMS, **kwargs)
    search.fit(X, y, classes=[0, 1])
    assert final_calls(search) == replay(DaskInverseDecay(MODEL, {}, **kwargs), search)
    assert len(set(final_calls(search).values())) > 1, "some models were dropped early"


def test_hyperband_runs_what_its_metadata_says(client: Client, small_xy: tuple) -> None:
    X, y = small_xy
    search = HyperbandSearchCV(MODEL, PARAMS, max_iter=9, aggressiveness=3, random_state=0)
    planned = search.metadata
    search.fit(X, y, classes=[0, 1])

    assert search.metadata_ == planned
    assert planned["n_models"] == len(search.cv_results_["model_id"]) == 9 + 5 + 3
    assert set(search.cv_results_) == dask_ml_cv_keys() | {"bracket"} | {
        f"param_{p}" for p in PARAMS
    }
    for bracket in planned["brackets"]:
        ids = [k for k in search.model_history_ if k.startswith(f"bracket={bracket['bracket']}-")]
        dask_sha = DaskHalving(MODEL, {}, **bracket["SuccessiveHalvingSearchCV params"])
        assert {k: final_calls(search)[k] for k in ids} == replay(dask_sha, search, ids)
    best_id = search.cv_results_["model_id"][search.best_index_]
    assert search.model_history_[best_id][-1]["score"] == search.best_score_
    assert search.best_score_ > search.cv_results_["test_score"].min() + 0.05
    times = [r["elapsed_wall_time"] for r in search.history_]
    assert times == sorted(times)
    assert DaskHyperband(MODEL, PARAMS, max_iter=9, random_state=0).metadata == planned


def test_patience_stops_models_that_stopped_improving(client: Client, small_xy: tuple) -> None:
    X, y = small_xy
    search = IncrementalSearchCV(
        MODEL,
        PARAMS,
        n_initial_parameters=4,
        max_iter=30,
        patience=3,
        tol=0.2,
        random_state=0,
        decay_rate=None,
    )
    summaries: list[SearchSummary] = []
    observe(search, on_end=summaries.append)
    search.fit(X, y, classes=[0, 1])
    assert max(final_calls(search).values()) < 30
    assert summaries[0].partial_fit_calls == sum(final_calls(search).values())


def test_observe_sees_every_record_and_the_summary(client: Client, small_xy: tuple) -> None:
    X, y = small_xy
    search = SuccessiveHalvingSearchCV(
        MODEL, PARAMS, n_initial_parameters=6, n_initial_iter=2, random_state=1
    )
    starts: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    ends: list[SearchSummary] = []
    assert observe(search, on_start=starts.append, on_record=records.append, on_end=ends.append)
    assert "_scaleml_observers" not in search.get_params()
    search.fit(X, y, classes=[0, 1])

    assert [s["n_models"] for s in starts] == [6]
    # The hook's records say whether the model was restarted; history_ keeps dask-ml's keys.
    assert records == [{**r, "restarted": False} for r in search.history_]
    assert all("restarted" not in r for r in search.history_)
    assert search.restarts_ == []
    [summary] = ends
    assert summary.best_model_id == search.best_index_
    assert summary.best_score == search.best_score_
    assert summary.final_calls == final_calls(search)
    most = max(summary.final_calls.values())
    assert summary.stopped_early == {k: c < most for k, c in summary.final_calls.items()}
    assert sum(summary.stopped_early.values()) >= 4


def test_dask_dataframe_input(client: Client, small_xy: tuple) -> None:
    import dask.dataframe as dd

    X, y = small_xy
    frame, target = dd.from_dask_array(X), dd.from_dask_array(y)
    search = IncrementalSearchCV(
        MODEL, PARAMS, n_initial_parameters=3, max_iter=3, random_state=0, decay_rate=None
    )
    search.fit(frame, target)  # classes are found from y when not given
    assert list(search.cv_results_["partial_fit_calls"]) == [3, 3, 3]
    assert 0.5 < search.best_score_ <= 1.0
    assert search.predict(frame).compute().shape == (16_000,)


def test_dataset_input(client: Client, classification: Dataset) -> None:
    search = SuccessiveHalvingSearchCV(
        MODEL, PARAMS, n_initial_parameters=4, n_initial_iter=1, aggressiveness=2, random_state=0
    )
    search.fit(classification)
    assert search.metadata_ == search.metadata
    assert 0.5 < search.best_score_ <= 1.0
    assert search.predict(classification.read_xy(0)[0]).shape == (6_000,)


def test_the_best_model_knows_the_feature_names(client: Client, classification: Dataset) -> None:
    """Served with a DataFrame, as the gateway does: the columns are checked by name, without
    the "fitted without feature names" warning."""
    search = IncrementalSearchCV(
        MODEL, PARAMS, n_initial_parameters=2, max_iter=2, random_state=0, decay_rate=None
    )
    search.fit(classification)
    assert list(search.best_estimator_.feature_names_in_) == list(classification.features)
    rows = classification.input_example(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert search.best_estimator_.predict(rows).shape == (5,)
    with pytest.raises(ValueError, match="feature names"):
        search.best_estimator_.predict(rows[rows.columns[::-1]])


@pytest.mark.parametrize(
    ("search", "message"),
    [
        (IncrementalSearchCV(MODEL, PARAMS, max_iter=0), "max_iter must be an int >= 1"),
        (IncrementalSearchCV(MODEL, PARAMS, patience=1), "patience must be False or an int"),
        (IncrementalSearchCV(MODEL, PARAMS, test_size=1.5), "test_size must be"),
        (IncrementalSearchCV(MODEL, PARAMS, fits_per_score=0), "fits_per_score must be"),
        (SuccessiveHalvingSearchCV(MODEL, PARAMS), "n_initial_iter must be an int >= 1, got None"),
        (HyperbandSearchCV(MODEL, PARAMS, aggressiveness=1), "aggressiveness must be a number > 1"),
        (InverseDecaySearchCV(MODEL, PARAMS, decay_rate=-1), "decay_rate must be a number >= 0"),
        (IncrementalSearchCV(object(), PARAMS), "estimator must have a partial_fit method"),
    ],
)
def test_bad_parameters_fail_before_any_work(
    client: Client, small_xy: tuple, search: Any, message: str
) -> None:
    X, y = small_xy
    before = set(client.who_has())
    with pytest.raises(ValueError, match=re.escape(message)):
        search.fit(X, y, classes=[0, 1])
    # Keys of earlier tests may be released meanwhile; none may be added.
    assert set(client.who_has()) <= before


def test_predict_before_fit_raises_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        IncrementalSearchCV(MODEL, PARAMS).predict(np.zeros((2, 10)))


def test_an_integer_random_state_trains_the_models_dask_ml_would(
    client: Client, small_xy: tuple
) -> None:
    """dask-ml's procedure, replayed by hand in this process: the same parameter samples, the
    same split, the same shared block order (``RandomState(seed).shuffle`` passes), so the
    same models and scores."""
    from dask_ml.model_selection import train_test_split
    from sklearn.base import clone
    from sklearn.model_selection import ParameterSampler

    X, y = small_xy
    search = IncrementalSearchCV(
        MODEL, PARAMS, n_initial_parameters=3, max_iter=7, test_size=0.2, decay_rate=None,
        random_state=5,
    )  # fmt: skip
    search.fit(X, y, classes=[0, 1])

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=5, shuffle=True
    )
    blocks = list(zip(X_train.blocks, y_train.blocks, strict=True))
    X_test, y_test = X_test.compute(), y_test.compute()
    rng = np.random.RandomState(5)
    order: list[int] = []
    while len(order) < 7:
        passes = list(range(len(blocks)))
        rng.shuffle(passes)
        order.extend(passes)
    expected = []
    for params in ParameterSampler(PARAMS, 3, random_state=5):
        model = clone(MODEL).set_params(**params)
        for call in range(7):
            Xb, yb = (part.compute() for part in blocks[order[call]])
            model.partial_fit(Xb, yb, classes=[0, 1])
        expected.append(model.score(X_test, y_test))

    assert list(search.cv_results_["test_score"]) == expected  # exactly: the same predictions
    assert search.best_score_ == max(expected)


@pytest.mark.parametrize(
    ("search", "texts"),
    [
        (IncrementalSearchCV(MODEL, PARAMS, max_iter=0), ["max_iter < 1 is not supported"]),
        (HyperbandSearchCV(MODEL, PARAMS, max_iter=0), ["max_iter < 1 is not supported"]),
        (IncrementalSearchCV(MODEL, PARAMS, verbose=-1), ["0 <= verbose <= 1"]),
        (HyperbandSearchCV(MODEL, PARAMS, verbose=2), ["0 <= verbose <= 1"]),
        (
            IncrementalSearchCV(MODEL, PARAMS, patience=1),
            ["patience >= 2", "always detect a plateau"],
        ),
        (
            HyperbandSearchCV(MODEL, PARAMS, patience=1),
            ["patience >= 2", "always detect a plateau"],
        ),
        (
            HyperbandSearchCV(MODEL, PARAMS, max_iter=3, patience=True),
            ["patience >= 2", "always detect a plateau"],
        ),
        (IncrementalSearchCV(MODEL, PARAMS, patience=2.0), ["must be an integer"]),
    ],
)
def test_bad_parameters_raise_with_dask_mls_words(
    client: Client, small_xy: tuple, search: Any, texts: list[str]
) -> None:
    """Code ported from dask-ml matches on its messages: they are in ours, word for word."""
    X, y = small_xy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # decay_rate's and patience's own warnings
        with pytest.raises(ValueError) as raised:
            search.fit(X, y, classes=[0, 1])
    for text in texts:
        assert text in str(raised.value)


def test_hyperband_takes_a_float_patience_as_dask_ml_does(client: Client, small_xy: tuple) -> None:
    """dask-ml casts a float patience (``max_iter / aggressiveness`` is one) to an int."""
    for patience in (76.0, 4.0):
        ours = HyperbandSearchCV(MODEL, PARAMS, max_iter=243, patience=patience, random_state=0)
        theirs = DaskHyperband(MODEL, PARAMS, max_iter=243, patience=patience, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # both warn that patience < max_iter // 3
            assert ours.metadata == theirs.metadata
    X, y = small_xy
    search = HyperbandSearchCV(MODEL, PARAMS, max_iter=9, patience=4.0, tol=None, random_state=0)
    search.fit(X, y, classes=[0, 1])
    brackets = search.metadata_["brackets"]
    assert {b["SuccessiveHalvingSearchCV params"]["patience"] for b in brackets} == {4}
    assert search.metadata_["n_models"] == 17


def test_an_estimator_scattered_to_the_cluster_is_accepted(client: Client, small_xy: tuple) -> None:
    """dask-ml's docs scatter large models first; the search trains the same models."""
    X, y = small_xy
    kwargs = dict(n_initial_parameters=3, max_iter=3, random_state=0, decay_rate=None)
    scattered = IncrementalSearchCV(client.scatter(MODEL), PARAMS, **kwargs).fit(
        X, y, classes=[0, 1]
    )
    local = IncrementalSearchCV(MODEL, PARAMS, **kwargs).fit(X, y, classes=[0, 1])
    assert list(scattered.cv_results_["test_score"]) == list(local.cv_results_["test_score"])
    assert scattered.predict(X[:10]).compute().shape == (10,)


def test_scores_per_fit_is_deprecated_with_dask_mls_warning(
    client: Client, small_xy: tuple
) -> None:
    X, y = small_xy
    search = IncrementalSearchCV(
        MODEL, PARAMS, n_initial_parameters=2, max_iter=4, scores_per_fit=2, decay_rate=None
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(X, y, classes=[0, 1])
    [warning] = [w for w in caught if "scores_per_fit" in str(w.message)]
    assert warning.category is UserWarning
    assert "Specify fits_per_score=2 instead" in str(warning.message)
    for records in search.model_history_.values():  # scored every 2 calls
        assert set(np.diff([r["partial_fit_calls"] for r in records])) == {2}
