"""What every adaptive search shares: ``fit`` (validate, place the data, drive the groups,
set the fitted attributes), the delegated prediction methods, and parameter checks."""

from __future__ import annotations

import inspect
import logging
import numbers
import sys
import time
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dask
import dask.array as da
import numpy as np
from distributed import Client, Future, default_client
from sklearn.base import BaseEstimator, MetaEstimatorMixin, is_classifier
from sklearn.metrics import check_scoring
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from scaleml._malloc import workers_keep_freed_memory
from scaleml.dashboard._events import activity, note, publish, task_label
from scaleml.estimators import name_features
from scaleml.search import _data, _history
from scaleml.search._batches import Group
from scaleml.search._driver import Driver, progress
from scaleml.search._observe import SearchSummary, observers_of
from scaleml.search._placement import PLACEMENTS, follows_blocks
from scaleml.search._postfit import apply, concrete
from scaleml.search._scoring import task_scorer

logger = logging.getLogger("scaleml.search")
_IN_FLIGHT_PER_THREAD = 8


def _estimator_has(attr: str) -> Any:
    def check(self: BaseAdaptiveSearch) -> bool:
        if hasattr(self, "best_estimator_"):
            return hasattr(self.best_estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


class BaseAdaptiveSearch(MetaEstimatorMixin, BaseEstimator):
    """Base of the adaptive searches; subclasses define ``_check_params`` and ``_groups``."""

    predict_meta: Any = None
    predict_proba_meta: Any = None
    transform_meta: Any = None

    # -- what subclasses define ------------------------------------------------------------

    def _check_params(self) -> None:
        """Raise ``ValueError`` naming the parameter when one is invalid."""
        raise NotImplementedError

    def _groups(self, seed: int) -> list[Group]:
        """The groups of models to train, with their policies."""
        raise NotImplementedError

    def _splits(self, groups: Sequence[Group]) -> dict[Hashable, Any]:
        """The train/test splits the groups need: ``{Group.split: random_state}``."""
        return {None: self.random_state}

    def _set_results(self, driver: Driver, groups: list[Group], history: _history.History) -> Any:
        """Set the fitted attributes; return the best model's id."""
        [group] = groups
        per_model = history.by_model()
        order = list(group.models)
        self.cv_results_ = _history.cv_results(per_model, order)
        best_id = max(group.live, key=lambda k: group.info[k][-1]["score"])
        self.best_index_ = order.index(best_id)
        self.best_score_ = self.cv_results_["test_score"][self.best_index_]
        self.best_params_ = self.cv_results_["params"][self.best_index_]
        self.history_ = history.records
        self.model_history_ = per_model
        return best_id

    # -- fit -------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> BaseAdaptiveSearch:
        """Find the best parameters for the estimator; always synchronous.

        Args:
            X: training data: a dask array or dask DataFrame (split into train and test sets
                with ``test_size`` like dask-ml), a NumPy array or pandas DataFrame (one block),
                or a scaleml ``Dataset`` (its training blocks train, its validation blocks
                score; ``y`` must be None).
            y: the target, with the same row blocks as ``X``.
            **fit_params: passed to every ``partial_fit`` call (e.g. ``classes=[0, 1]``; for
                classifiers it is computed from ``y`` when omitted).

        Returns:
            self, fitted.
        """
        started = time.perf_counter()
        # An estimator scattered to the cluster (a Future, as dask-ml's docs do for large
        # models) is checked on a local copy; the models are cloned from it on the workers.
        template = self.estimator
        if isinstance(template, Future):
            template = template.result()
        self._check_common(template)
        self._check_params()
        X, y = _data.check_inputs(X, y)
        scorer = check_scoring(template, scoring=self.scoring)
        client = _client()
        observers = observers_of(self)
        with (
            self._logging(),
            workers_keep_freed_memory(client),
            activity("search", _name(self), client=client, **_dashboard_start(self)) as here,
        ):
            fit_params = self._concrete_fit_params(client, template, X, y, fit_params)
            test_size = self.test_size
            if test_size is None:
                test_size = _data.default_test_size(X)
            seed = int(check_random_state(self.random_state).randint(2**31))
            groups = self._groups(seed)
            pinned = follows_blocks(
                self.placement,
                [len(g.models) for g in groups],
                len(client.nthreads()),
                _data.training_block_bytes(X, y, test_size),
            )
            splits = _data.place(
                client,
                X,
                y,
                test_size=test_size,
                random_states=self._splits(groups),
                pinned=pinned,
            )
            try:
                models = {k: p for g in groups for k, p in g.models.items()}
                note(client, n_models=len(models), models={str(k): p for k, p in models.items()})
                for observer in observers:
                    if observer.on_start is not None:
                        observer.on_start(
                            {
                                "search": type(self).__name__,
                                "n_models": len(models),
                                "models": models,
                            }
                        )
                on_record = [o.on_record for o in observers if o.on_record]
                history = _history.History([*on_record, _trial_publisher(here.id, client)])
                driver = Driver(
                    client,
                    splits,
                    self.estimator,
                    fit_params=fit_params,
                    scorer=task_scorer(template, self.scoring, scorer),
                    history=history,
                    max_in_flight=max(4, _IN_FLIGHT_PER_THREAD * sum(client.nthreads().values())),
                    log_every=self._log_every(),
                    prefix=self.prefix,
                    label=task_label(self),
                    placement=self.placement,
                )
                try:
                    driver.run(groups)
                    best_id = self._set_results(driver, groups, history)
                    self.best_estimator_ = driver.fitted_model(best_id)
                    # Blocks reach partial_fit as arrays; dask-ml's models see pandas.
                    names = X.features if _data.is_dataset(X) else getattr(X, "columns", [])
                    name_features(self.best_estimator_, list(names))
                finally:
                    driver.release()
            finally:
                for data in splits.values():
                    data.release()
        self.restarts_ = list(history.restarts)
        self.scorer_ = scorer
        self.n_splits_ = 1
        self.multimetric_ = False
        summary = self._summary(groups, history, time.perf_counter() - started)
        publish("search", _summary_record(here.id, summary), client)
        for observer in observers:
            if observer.on_end is not None:
                observer.on_end(summary)
        return self

    # -- delegated methods -----------------------------------------------------------------

    @available_if(_estimator_has("predict"))
    def predict(self, X: Any) -> Any:
        """Predict with ``best_estimator_`` (blockwise and lazy on dask inputs)."""
        check_is_fitted(self, "best_estimator_")
        return apply(self.best_estimator_, "predict", X, self.predict_meta)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities from ``best_estimator_`` (blockwise on dask inputs)."""
        check_is_fitted(self, "best_estimator_")
        return apply(self.best_estimator_, "predict_proba", X, self.predict_proba_meta)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """Log class probabilities from ``best_estimator_`` (blockwise on dask inputs)."""
        check_is_fitted(self, "best_estimator_")
        return apply(self.best_estimator_, "predict_log_proba", X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """``best_estimator_.decision_function`` (blockwise on dask inputs)."""
        check_is_fitted(self, "best_estimator_")
        return apply(self.best_estimator_, "decision_function", X)

    @available_if(_estimator_has("transform"))
    def transform(self, X: Any) -> Any:
        """``best_estimator_.transform`` (blockwise on dask inputs)."""
        check_is_fitted(self, "best_estimator_")
        return apply(self.best_estimator_, "transform", X, self.transform_meta)

    def score(self, X: Any, y: Any = None) -> float:
        """``scorer_(best_estimator_, X, y)``; dask inputs are computed first."""
        check_is_fitted(self, "best_estimator_")
        return float(self.scorer_(self.best_estimator_, concrete(X), concrete(y)))

    # -- helpers ---------------------------------------------------------------------------

    def _check_common(self, estimator: Any = None) -> None:
        """Check what every search shares; ``estimator`` is a local copy of a scattered one."""
        estimator = self.estimator if estimator is None else estimator
        if self.placement not in PLACEMENTS:
            raise ValueError(
                f"placement must be one of {', '.join(map(repr, PLACEMENTS))}, "
                f"got {self.placement!r}"
            )
        if not callable(getattr(estimator, "partial_fit", None)):
            raise ValueError(
                "estimator must have a partial_fit method, got "
                f"{type(estimator).__name__}, which has none"
            )
        if not isinstance(self.parameters, dict | list) or not self.parameters:
            raise ValueError(
                "parameters must be a non-empty dict (or list of dicts) of parameter names to "
                f"lists or distributions, got {self.parameters!r}"
            )
        size = self.test_size
        if size is not None and not (
            (isinstance(size, numbers.Real) and 0 < size < 1)
            or (isinstance(size, numbers.Integral) and size >= 1)
        ):
            raise ValueError(
                f"test_size must be None, a float in (0, 1) or an int >= 1, got {size!r}"
            )
        if not (isinstance(self.tol, numbers.Real) or self.tol is None):
            raise ValueError(f"tol must be a number or None, got {self.tol!r}")
        verbose = self.verbose
        if not isinstance(verbose, bool) and not (
            isinstance(verbose, numbers.Real) and 0 <= verbose <= 1
        ):
            raise ValueError(
                f"verbose={verbose!r} does not satisfy 0 <= verbose <= 1 "
                "(verbose must be a bool or a number in [0, 1])"
            )
        check_random_state(self.random_state)

    def _log_every(self) -> int:
        verbose = 1.0 if isinstance(self.verbose, bool) else float(self.verbose)
        return int(1 / verbose) if verbose > 0 else 0

    @contextmanager
    def _logging(self) -> Iterator[None]:
        if not self.verbose:
            yield
            return
        handler = logging.StreamHandler(sys.stdout)
        level = progress.level
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)
        try:
            yield
        finally:
            progress.removeHandler(handler)
            progress.setLevel(level)

    def _concrete_fit_params(
        self, client: Client, estimator: Any, X: Any, y: Any, fit_params: dict[str, Any]
    ) -> dict[str, Any]:
        out = {
            k: client.compute(v).result() if dask.is_dask_collection(v) else v
            for k, v in fit_params.items()
        }
        wants_classes = "classes" in inspect.signature(estimator.partial_fit).parameters
        if is_classifier(estimator) and wants_classes and "classes" not in out:
            if _data.is_dataset(X):
                out["classes"] = X.classes(client)
            else:
                unique = y.unique() if hasattr(y, "to_dask_array") else da.unique(y)
                out["classes"] = np.sort(np.asarray(client.compute(unique).result()))
        return out

    def _summary(
        self, groups: Sequence[Group], history: _history.History, seconds: float
    ) -> SearchSummary:
        calls = _history.final_calls(history.by_model())
        stopped: dict[Hashable, bool] = {}
        for group in groups:
            most = max(calls[k] for k in group.models)
            stopped.update({k: calls[k] < most for k in group.models})
        best_id = self.cv_results_["model_id"][self.best_index_]
        return SearchSummary(
            search=type(self).__name__,
            n_models=len(calls),
            partial_fit_calls=sum(calls.values()),
            best_model_id=best_id.item() if hasattr(best_id, "item") else best_id,
            best_score=float(self.best_score_),
            best_params=dict(self.best_params_),
            final_calls=calls,
            stopped_early=stopped,
            restarted=sorted({r["model_id"] for r in history.restarts}, key=str),
            wall_time_s=seconds,
        )


def _name(search: Any) -> str:
    estimator = search.estimator
    inner = "scattered estimator" if isinstance(estimator, Future) else type(estimator).__name__
    return f"{type(search).__name__}({inner})"


def _dashboard_start(search: Any) -> dict[str, Any]:
    scoring = search.scoring if isinstance(search.scoring, str) else None
    return {"search": type(search).__name__, "scoring": scoring or "default score"}


def _trial_publisher(search_id: str, client: Client) -> Any:
    """An ``on_record`` callback that sends each record's point to the dashboard."""

    def send(record: dict[str, Any]) -> None:
        trial = {"event": "trial", "id": search_id, "model": record["model_id"]}
        trial.update(calls=record["partial_fit_calls"], score=record["score"])
        if "bracket" in record:
            trial["bracket"] = record["bracket"]
        publish("search", trial, client)

    return send


def _summary_record(search_id: str, summary: SearchSummary) -> dict[str, Any]:
    stopped = [str(k) for k, v in summary.stopped_early.items() if v]
    return {
        "event": "note",
        "id": search_id,
        "best_model": str(summary.best_model_id),
        "best_score": summary.best_score,
        "stopped_early": stopped,
    }


def _client() -> Client:
    try:
        return default_client()
    except ValueError:
        raise ValueError(
            "no Dask client: create one (distributed.Client or scaleml.cluster.connect()) "
            "before calling fit"
        ) from None


def check_max_iter(value: Any, *, allow_none: bool = False) -> None:
    """``check_int`` of ``max_iter``, with dask-ml's message for values below 1."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value < 1:
        raise ValueError(
            f"Received max_iter={value}. max_iter < 1 is not supported "
            f"(max_iter must be an int >= 1{' or None' if allow_none else ''}, got {value!r})"
        )
    check_int("max_iter", value, 1, allow_none=allow_none)


def check_int(name: str, value: Any, minimum: int, *, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an int ``>= minimum`` (or None if allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        allowed = f"an int >= {minimum}" + (" or None" if allow_none else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
