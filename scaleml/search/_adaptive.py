"""IncrementalSearchCV, InverseDecaySearchCV and SuccessiveHalvingSearchCV, with dask-ml's
constructor parameters, defaults, algorithms and fitted attributes."""

from __future__ import annotations

import numbers
import warnings
from functools import partial
from typing import Any

from sklearn.model_selection import ParameterGrid, ParameterSampler
from sklearn.utils.validation import check_is_fitted

from scaleml.search import _policies
from scaleml.search._base import BaseAdaptiveSearch, check_int, check_max_iter
from scaleml.search._batches import Group


class _NoDefault:
    def __repr__(self) -> str:
        return "<no_default>"


no_default: Any = _NoDefault()


class IncrementalSearchCV(BaseAdaptiveSearch):
    """Incrementally search for hyper-parameters on models that support ``partial_fit``.

    dask-ml's ``IncrementalSearchCV``, run natively on distributed futures: every model is
    trained with ``fits_per_score`` more ``partial_fit`` calls after each score, until
    ``max_iter`` calls, or until its score stops improving by more than ``tol`` over
    ``patience`` calls. All models train concurrently on the workers.

    Args:
        estimator: an estimator with ``partial_fit``, ``set_params`` and ``clone`` support.
        parameters: parameter names to lists or distributions (with ``rvs``), sampled with
            scikit-learn's ``ParameterSampler``.
        n_initial_parameters: how many parameter settings to sample, or ``"grid"`` for all.
        decay_rate: deprecated in dask-ml; has no effect here (use InverseDecaySearchCV).
        test_size: share of the data held out for scoring; default ``min(0.2, 1 / blocks)``.
            Ignored for a ``Dataset`` (its validation blocks are the test set).
        patience: stop a model after ``patience`` calls without improvement; off when False.
        tol: the improvement that counts for ``patience``.
        fits_per_score: ``partial_fit`` calls between two scores.
        max_iter: the maximum ``partial_fit`` calls per model.
        random_state: seeds the parameter sampling, the split and the block order.
        scoring: a scikit-learn scorer name or callable; default ``estimator.score``.
        verbose: log progress to standard output (a float logs that fraction of rounds).
        prefix: put in every log message, as ``[CV{prefix}]``.
        scores_per_fit: deprecated alias of ``fits_per_score``.
        predict_meta, predict_proba_meta, transform_meta: empty outputs describing the
            results of those methods on dask inputs (inferred when omitted).
        placement: scaleml's own: ``"models"`` (the models go to the data), ``"blocks"``
            (the data goes to the models) or ``"auto"`` (chosen per search, below).

    Placement: the models go to the data. Each ``partial_fit`` call runs on the worker that
    holds its training block and the models' states travel from block to block (kilobytes for
    a linear model), so no training block moves between workers whatever their number; the
    test set is copied once to each worker. With ``placement="auto"`` the models stay on
    their workers (dealt round-robin) and the blocks travel instead when the blocks are under
    1 MiB; when the states are larger than what moving the blocks would cost (``live models x
    state bytes > workers x block bytes``, measured after the first call); or on two workers,
    when the models are too few to keep both busy by traveling (their batches queue behind
    each other on the worker holding the current block: the tutorial's 10 models leave a
    worker idle about a fifth of the time) and moving the blocks, one copy of the training
    data per pass, is expected to be at least 20 % faster (``scaleml.search._placement``).
    Either way the same models are trained.

    Fitted attributes: ``cv_results_``, ``model_history_``, ``history_``, ``best_estimator_``,
    ``best_score_``, ``best_params_``, ``best_index_``, ``scorer_``, ``n_splits_``,
    ``multimetric_``, as in dask-ml (the same keys and dtypes), and scaleml's ``restarts_``:
    ``{"model_id", "partial_fit_calls"}`` of each record that followed the loss of the model's
    state with a worker (it was recomputed; the tracking hook's records carry ``restarted``).

    Conformance with dask-ml 2025.1 (checked against its recorded outputs in
    ``tests/search/test_conformance.py``): the same constructor parameters, order and defaults
    (scaleml's ``placement`` comes last); with an integer ``random_state`` the same parameter
    samples, split, block order, models, scores, survivors and best model; dask-ml's validation
    messages (scaleml adds its own wording after them), warning classes (``FutureWarning`` for
    ``decay_rate``, ``UserWarning`` for ``scores_per_fit`` and Hyperband's ``patience``), and
    progress messages on dask-ml's logger ``dask_ml.model_selection`` (``verbose`` prints them).
    An estimator may be a ``Future`` (``client.scatter(model)``). Differences kept, and why:

    - ``fit`` is always synchronous, also with an asynchronous client (dask-ml returns a
      coroutine there): one code path, on the public ``distributed`` API.
    - ``history_`` lists records in the order they reached the client; a model's records are
      in order, but models of one round may interleave differently from dask-ml's.
    - ``inverse_transform``, ``partial_fit`` (dask-ml's ``ParallelPostFit`` ones: the first
      calls ``transform``, the second trains the unfitted template) and scikit-learn's
      metadata-routing ``set_score_request`` are not offered; ``score`` computes dask inputs
      first instead of handing them to the scorer.
    - Validation happens in ``fit`` before any work (dask-ml finds a bad ``patience`` only
      after the first round), and more values are refused with a ``ValueError`` naming the
      parameter (``fits_per_score=0``, ``test_size=1.5``, a ``tol`` that is not a number).
    - With a ``RandomState`` instance (not an int) as ``random_state`` the draws are taken in
      another order than dask-ml's, so the samples differ (an int reproduces dask-ml's).
    - scaleml also logs warnings of its own (a model recomputed after a worker died) on the
      ``scaleml.search`` logger, and accepts a scaleml ``Dataset`` as ``X``.
    """

    def __init__(
        self,
        estimator: Any,
        parameters: dict[str, Any] | list[dict[str, Any]],
        n_initial_parameters: int | str = 10,
        decay_rate: Any = no_default,
        test_size: float | None = None,
        patience: bool | int = False,
        tol: float | None = 0.001,
        fits_per_score: int = 1,
        max_iter: int | None = 100,
        random_state: Any = None,
        scoring: Any = None,
        verbose: bool | float = False,
        prefix: str = "",
        scores_per_fit: int | None = None,
        predict_meta: Any = None,
        predict_proba_meta: Any = None,
        transform_meta: Any = None,
        placement: str = "auto",
    ) -> None:
        self.estimator = estimator
        self.parameters = parameters
        self.n_initial_parameters = n_initial_parameters
        self.decay_rate = decay_rate
        self.test_size = test_size
        self.patience = patience
        self.tol = tol
        self.fits_per_score = fits_per_score
        self.max_iter = max_iter
        self.random_state = random_state
        self.scoring = scoring
        self.verbose = verbose
        self.prefix = prefix
        self.scores_per_fit = scores_per_fit
        self.predict_meta = predict_meta
        self.predict_proba_meta = predict_proba_meta
        self.transform_meta = transform_meta
        self.placement = placement

    def _check_params(self) -> None:
        if self.decay_rate is no_default:
            warnings.warn(
                "decay_rate has been deprecated since Dask-ML v1.4.0.\n\n"
                "    * Use InverseDecaySearchCV to use `decay_rate`\n"
                "    * Specify decay_rate=None\n\n",
                FutureWarning,
                stacklevel=3,
            )
        elif self.decay_rate is not None:
            warnings.warn(
                "decay_rate is deprecated in InverseDecaySearchCV. "
                f"Use InverseDecaySearchCV to use decay_rate={self.decay_rate}",
                FutureWarning,
                stacklevel=3,
            )
        self._check_search_params()

    def _check_search_params(self) -> None:
        if self.n_initial_parameters != "grid":
            check_int("n_initial_parameters", self.n_initial_parameters, 1)
        check_max_iter(self.max_iter, allow_none=True)
        check_int("fits_per_score", self.fits_per_score, 1)
        if self.scores_per_fit is not None:
            check_int("scores_per_fit", self.scores_per_fit, 1)
            if self.fits_per_score != 1:
                raise ValueError("Specify fits_per_score, not scores_per_fit")
            warnings.warn(
                "scores_per_fit has been deprecated since Dask-ML v1.4.0. "
                f"Specify fits_per_score={self.scores_per_fit} instead",
                UserWarning,  # dask-ml's class, as code filtering it expects
                stacklevel=4,
            )
        _check_patience(self.patience)

    def _fits_per_score(self) -> int:
        return self.scores_per_fit or self.fits_per_score

    def _sample(self) -> list[dict[str, Any]]:
        if self.n_initial_parameters == "grid":
            return list(ParameterGrid(self.parameters))
        return list(
            ParameterSampler(
                self.parameters, self.n_initial_parameters, random_state=self.random_state
            )
        )

    def _adapt(self) -> _policies.Adapt:
        return partial(_policies.fixed_adapt, fits_per_score=self._fits_per_score())

    def _groups(self, seed: int) -> list[Group]:
        policy = partial(
            _policies.decide,
            adapt=self._adapt(),
            patience=int(self.patience),
            tol=self.tol,
            max_iter=self.max_iter,
        )
        # An integer random_state seeds the block order itself, as in dask-ml.
        if isinstance(self.random_state, numbers.Integral):
            seed = int(self.random_state)
        lookahead = None
        if not self.patience and type(self)._adapt is IncrementalSearchCV._adapt:
            lookahead = partial(
                _policies.fixed_rounds,
                fits_per_score=self._fits_per_score(),
                max_iter=self.max_iter,
            )
        models = dict(enumerate(self._sample()))
        return [Group(models, policy, seed, prefix=self.prefix, lookahead=lookahead)]


class InverseDecaySearchCV(IncrementalSearchCV):
    """Incremental search keeping the best ``1 / (k + 1) ** decay_rate`` of the models at
    time step ``k`` (dask-ml's ``InverseDecaySearchCV``); other arguments as
    :class:`IncrementalSearchCV`.

    Args:
        decay_rate: how fast the number of models decreases (default 1.0).
    """

    def __init__(
        self,
        estimator: Any,
        parameters: dict[str, Any] | list[dict[str, Any]],
        n_initial_parameters: int | str = 10,
        test_size: float | None = None,
        patience: bool | int = False,
        tol: float | None = 0.001,
        fits_per_score: int = 1,
        max_iter: int | None = 100,
        random_state: Any = None,
        scoring: Any = None,
        verbose: bool | float = False,
        prefix: str = "",
        decay_rate: float = 1.0,
        placement: str = "auto",
    ) -> None:
        super().__init__(
            estimator,
            parameters,
            n_initial_parameters=n_initial_parameters,
            test_size=test_size,
            patience=patience,
            tol=tol,
            fits_per_score=fits_per_score,
            max_iter=max_iter,
            random_state=random_state,
            scoring=scoring,
            verbose=verbose,
            prefix=prefix,
            decay_rate=decay_rate,
            placement=placement,
        )

    def _check_params(self) -> None:
        if isinstance(self.decay_rate, bool) or not (
            isinstance(self.decay_rate, int | float) and self.decay_rate >= 0
        ):
            raise ValueError(f"decay_rate must be a number >= 0, got {self.decay_rate!r}")
        self._check_search_params()

    def _adapt(self) -> _policies.Adapt:
        if self.n_initial_parameters == "grid":
            start = len(ParameterGrid(self.parameters))
        else:
            start = self.n_initial_parameters
        return partial(
            _policies.inverse_decay_adapt,
            n_start=start,
            decay_rate=self.decay_rate,
            patience=int(self.patience),
            fits_per_score=self._fits_per_score(),
        )


class SuccessiveHalvingSearchCV(IncrementalSearchCV):
    """Successive halving (dask-ml's ``SuccessiveHalvingSearchCV``): train every model for
    ``n_initial_iter`` calls, keep the best ``1 / aggressiveness`` of them, train those
    ``aggressiveness`` times longer, and so on until one model is left (or ``max_iter``).

    Args:
        n_initial_parameters: how many parameter settings to sample.
        n_initial_iter: ``partial_fit`` calls before the first decision (required).
        max_iter: the maximum calls per model; None lets the halving run to one model.
        aggressiveness: the culling factor (> 1).

    Other arguments as :class:`IncrementalSearchCV`. ``metadata`` describes the computation
    before ``fit``, ``metadata_`` what ran (they differ only with ``patience``).
    """

    def __init__(
        self,
        estimator: Any,
        parameters: dict[str, Any] | list[dict[str, Any]],
        n_initial_parameters: int = 10,
        n_initial_iter: int | None = None,
        max_iter: int | None = None,
        aggressiveness: float = 3,
        test_size: float | None = None,
        patience: bool | int = False,
        tol: float | None = 1e-3,
        random_state: Any = None,
        scoring: Any = None,
        verbose: bool | float = False,
        prefix: str = "",
        placement: str = "auto",
    ) -> None:
        self.n_initial_iter = n_initial_iter
        self.aggressiveness = aggressiveness
        super().__init__(
            estimator,
            parameters,
            n_initial_parameters=n_initial_parameters,
            max_iter=max_iter,
            test_size=test_size,
            patience=patience,
            tol=tol,
            random_state=random_state,
            scoring=scoring,
            verbose=verbose,
            prefix=prefix,
            decay_rate=None,
            placement=placement,
        )

    def _check_params(self) -> None:
        check_int("n_initial_parameters", self.n_initial_parameters, 1)
        check_int("n_initial_iter", self.n_initial_iter, 1)
        _check_aggressiveness(self.aggressiveness)
        self._check_search_params()

    def _adapt(self) -> _policies.Adapt:
        return partial(
            _policies.successive_halving_adapt,
            n_initial_parameters=self.n_initial_parameters,
            n_initial_iter=self.n_initial_iter,
            aggressiveness=self.aggressiveness,
        )

    @property
    def metadata(self) -> dict[str, int]:
        """The computation to be done: ``n_models``, ``partial_fit_calls``, ``max_iter``."""
        self._check_params()
        meta = _policies.simulate_successive_halving(
            self.n_initial_parameters, self.n_initial_iter, self.aggressiveness, self.max_iter
        )
        return {
            "partial_fit_calls": meta["total_calls"],
            "n_models": self.n_initial_parameters,
            "max_iter": meta["max_iter"],
        }

    @property
    def metadata_(self) -> dict[str, int]:
        """The computation that was done (same keys as ``metadata``)."""
        check_is_fitted(self, "model_history_")
        calls = [v[-1]["partial_fit_calls"] for v in self.model_history_.values()]
        return {
            "partial_fit_calls": sum(calls),
            "n_models": self.n_initial_parameters,
            "max_iter": max(calls),
        }


def _check_patience(patience: Any) -> None:
    """dask-ml's checks and messages, and which values are allowed."""
    if not isinstance(patience, int):
        raise ValueError(
            "patience must be an integer (or a subclass like boolean), not "
            f"patience={patience!r} of type {type(patience)} "
            "(patience must be False or an int >= 2)"
        )
    if patience and patience <= 1:
        raise ValueError(
            f"patience={patience}<=1 will always detect a plateau. To resolve this, "
            f"set patience >= 2 (patience must be False or an int >= 2, got {patience!r})"
        )


def _check_aggressiveness(aggressiveness: Any) -> None:
    if isinstance(aggressiveness, bool) or not (
        isinstance(aggressiveness, int | float) and aggressiveness > 1
    ):
        raise ValueError(f"aggressiveness must be a number > 1, got {aggressiveness!r}")
