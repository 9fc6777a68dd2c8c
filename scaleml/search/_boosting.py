"""Grid and random search over boosting parameters; each candidate is trained distributed.

Candidates run one after another, each on the whole cluster (XGBoost and LightGBM already use
every worker for one model), with the same data placement, validation set and early stopping.
Every candidate's parameters are checked before the first one starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from distributed import Client
from sklearn.model_selection import ParameterGrid, ParameterSampler

from scaleml.dashboard._events import activity, note, publish
from scaleml.data import Dataset
from scaleml.errors import EstimatorSpecError, TrainingError
from scaleml.train import BoostingResult, available_metrics, estimator_kind, train_boosting
from scaleml.train._boosting_params import check_metric_names, resolve_estimator
from scaleml.train._scoring import DEFAULT_SCORING, HIGHER_IS_BETTER

Method = Literal["grid", "random"]

# Boosting eval metrics (XGBoost's and LightGBM's names) where higher is better; the others
# (losses, errors) are minimised.
_EVAL_METRICS_HIGHER_IS_BETTER = frozenset(
    {"auc", "aucpr", "pre", "map", "ndcg", "average_precision", "auc_mu", "cross_entropy_lambda"}
)

CandidateContext = Callable[
    [int, dict[str, Any]], AbstractContextManager[Callable[["BoostingCandidate"], object]]
]
"""Wraps one candidate's training: called with ``(index, params)``, it yields a function that
receives the finished :class:`BoostingCandidate`. An exception in the training propagates
through it (so a tracked candidate can be marked failed)."""


@dataclass(frozen=True)
class BoostingCandidate:
    """One trained candidate of a boosting search."""

    index: int
    params: dict[str, Any]
    """The searched parameters of this candidate."""
    score: float
    result: BoostingResult
    """Its training: fitted models, eval history per round, best iteration, timing."""


@dataclass
class BoostingSearchResult:
    """The outcome of a boosting search: every candidate and the best one."""

    method: Method
    scoring: str
    greater_is_better: bool
    candidates: list[BoostingCandidate]
    best_index: int
    seconds: float

    @property
    def best_candidate(self) -> BoostingCandidate:
        """The candidate with the best validation score."""
        return self.candidates[self.best_index]

    @property
    def best_params(self) -> dict[str, Any]:
        """The best candidate's searched parameters."""
        return dict(self.best_candidate.params)

    @property
    def best_score(self) -> float:
        """The best candidate's validation score."""
        return self.best_candidate.score

    @property
    def best_model(self) -> Any:
        """The best candidate's single-machine model, for serving."""
        return self.best_candidate.result.model

    @property
    def best_estimator(self) -> Any:
        """The best candidate's fitted Dask estimator."""
        return self.best_candidate.result.estimator


def search_boosting(
    estimator: Any,
    param_space: dict[str, Any],
    data: Dataset | Any,
    y: Any | None = None,
    *,
    method: Method = "grid",
    n_iter: int = 10,
    random_state: int | None = None,
    scoring: str | None = None,
    eval_set: tuple[Any, Any] | None = None,
    client: Client | None = None,
    early_stopping_rounds: int | None = None,
    eval_metric: str | list[str] | None = None,
    candidate_context: CandidateContext | None = None,
) -> BoostingSearchResult:
    """Search boosting parameters by grid or random sampling, training each candidate with
    :func:`scaleml.train.train_boosting` on the whole cluster.

    Args:
        estimator: the base estimator: a spec or an instance of a Dask boosting estimator (see
            :func:`scaleml.train.train_boosting`); candidates override its parameters.
        param_space: parameter name -> list of values (for ``"random"``, a scipy.stats
            distribution is accepted too).
        data, y, eval_set, client, early_stopping_rounds, eval_metric: as for
            :func:`~scaleml.train.train_boosting`; validation data is required.
        method: ``"grid"`` (every combination) or ``"random"`` (``n_iter`` samples).
        n_iter: candidates drawn by the random search.
        random_state: seeds the random search's sampling.
        scoring: the validation metric that ranks candidates: one of scaleml's metrics
            (``accuracy``/``log_loss`` for classifiers, ``r2``/``mse``/``rmse``/``mae`` for
            regressors; default accuracy or r2), or one of the ``eval_metric`` names (its value
            at the best iteration). Losses and errors are minimised, the others maximised.
        candidate_context: wraps each candidate's training (see :data:`CandidateContext`);
            used by the tracked search to open a nested MLflow run per candidate.

    Raises:
        EstimatorSpecError: a searched parameter is unknown or not JSON.
        TrainingError: an argument or a candidate's value is invalid; raised before any work.
    """
    base, _ = resolve_estimator(estimator)
    candidates = _candidates(param_space, method, n_iter, random_state)
    estimators = [_candidate_estimator(base, params) for params in candidates]
    metrics = check_metric_names(eval_metric) or []
    scoring, greater_is_better = _check_scoring(scoring, base, metrics)
    if isinstance(data, Dataset) and not data.validation_blocks:
        raise TrainingError(f"a boosting search needs validation blocks; {data!r} has none")
    if not isinstance(data, Dataset) and eval_set is None:
        raise TrainingError("a boosting search on dask collections needs an eval_set")
    wrap = candidate_context or _no_context
    started = time.perf_counter()
    trained: list[BoostingCandidate] = []
    models = {str(i): params for i, params in enumerate(candidates)}
    name = f"{method} search ({type(base).__name__})"
    shown_as = {"search": f"boosting-{method}", "scoring": scoring, "x_label": "boosting rounds"}
    with activity("search", name, lower_is_better=not greater_is_better, **shown_as) as shown:
        note(n_models=len(models), models=models)
        for index, (params, candidate) in enumerate(zip(candidates, estimators, strict=True)):
            with wrap(index, params) as done:
                result = train_boosting(
                    candidate,
                    data,
                    y,
                    eval_set=eval_set,
                    client=client,
                    early_stopping_rounds=early_stopping_rounds,
                    eval_metric=eval_metric,
                )
                entry = BoostingCandidate(index, params, _score(result, scoring), result)
                trained.append(entry)
                done(entry)
            trial = {"event": "trial", "id": shown.id, "model": index, "score": entry.score}
            publish("search", {**trial, "calls": result.n_rounds})
    scores = [c.score for c in trained]
    best_index = int(np.argmax(scores) if greater_is_better else np.argmin(scores))
    return BoostingSearchResult(
        method=method,
        scoring=scoring,
        greater_is_better=greater_is_better,
        candidates=trained,
        best_index=best_index,
        seconds=time.perf_counter() - started,
    )


def boosting_candidates(
    param_space: dict[str, Any],
    method: Method = "grid",
    n_iter: int = 10,
    random_state: int | None = None,
) -> list[dict[str, Any]]:
    """The parameter sets a search will train, in order (plain Python values)."""
    return _candidates(param_space, method, n_iter, random_state)


def _candidates(
    param_space: dict[str, Any], method: str, n_iter: int, random_state: int | None
) -> list[dict[str, Any]]:
    if method not in ("grid", "random"):
        raise TrainingError(f"method must be 'grid' or 'random', got {method!r}")
    if not isinstance(param_space, dict) or not param_space:
        raise TrainingError("param_space must be a non-empty dict of parameter -> values")
    for name, values in param_space.items():
        if isinstance(values, list | tuple):
            if not values:
                raise TrainingError(f"param_space[{name!r}] is an empty list")
        elif method == "grid" or not hasattr(values, "rvs"):
            raise TrainingError(
                f"param_space[{name!r}] must be a list of values"
                + (" or a scipy.stats distribution" if method == "random" else "")
                + f", got {type(values).__name__}"
            )
    if method == "grid":
        chosen = list(ParameterGrid(param_space))
    else:
        if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
            raise TrainingError(f"n_iter must be an integer >= 1, got {n_iter!r}")
        chosen = list(ParameterSampler(param_space, n_iter, random_state=random_state))
    return [{key: _plain(value) for key, value in params.items()} for params in chosen]


def _candidate_estimator(base: Any, params: dict[str, Any]) -> Any:
    base_params = {k: v for k, v in base.get_params(deep=False).items() if k != "client"}
    unknown = sorted(set(params) - set(base_params))
    if unknown:
        raise EstimatorSpecError(
            f"unknown parameter(s) {unknown} in param_space for {type(base).__name__}; "
            f"valid parameters: {sorted(base_params)}"
        )
    estimator, _ = resolve_estimator(type(base)(**{**base_params, **params}))
    return estimator


def _check_scoring(scoring: str | None, base: Any, metrics: list[str]) -> tuple[str, bool]:
    scaleml_metrics = available_metrics(base)
    chosen = scoring or DEFAULT_SCORING[estimator_kind(base)]
    if chosen in scaleml_metrics:
        return chosen, HIGHER_IS_BETTER[chosen]
    if chosen in metrics:
        return chosen, chosen.split("@")[0] in _EVAL_METRICS_HIGHER_IS_BETTER
    raise TrainingError(
        f"scoring must be one of {scaleml_metrics} or of the eval_metric names {metrics}, "
        f"got {scoring!r}"
    )


def _score(result: BoostingResult, scoring: str) -> float:
    if scoring in result.scores:
        return float(result.scores[scoring])
    best = result.best_scores
    if scoring not in best:
        raise TrainingError(
            f"the validation history has no metric {scoring!r}; recorded: {sorted(best)}"
        )
    return float(best[scoring])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@contextmanager
def _no_context(index: int, params: dict[str, Any]) -> Iterator[Callable[[Any], None]]:
    yield lambda candidate: None
