"""``make_search``: a configured search object from a method name, an estimator and a space.

The adaptive methods build scaleml's own searches (on distributed futures); ``grid`` and
``random`` build dask-ml's ``GridSearchCV`` / ``RandomizedSearchCV``, which work on current
Dask as they are. Everything is checked here, before any work starts: the method, the space
(each parameter must be one of the estimator's), the option names, and the option values
(the searches' own checks, run early).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

from scaleml.errors import SearchSpaceError
from scaleml.search._space import check_values, parse_space

SEARCH_METHODS: tuple[str, ...] = ("incremental", "hyperband", "halving", "grid", "random")
"""The ``method`` names :func:`make_search` accepts."""
ADAPTIVE_METHODS: tuple[str, ...] = ("incremental", "hyperband", "halving")
"""The methods that train ``partial_fit`` estimators block by block."""

# The constructor arguments that make_search fills itself, per method.
_OWN_ARGUMENTS = {"estimator", "parameters", "param_grid", "param_distributions"}


def make_search(method: str, estimator: Any, space: dict[str, Any], **options: Any) -> Any:
    """Build an unfitted search of ``method`` over ``space`` for ``estimator``.

    Args:
        method: ``"incremental"`` (:class:`~scaleml.search.IncrementalSearchCV`),
            ``"hyperband"`` (:class:`~scaleml.search.HyperbandSearchCV`), ``"halving"``
            (:class:`~scaleml.search.SuccessiveHalvingSearchCV`), ``"grid"``
            (``dask_ml.model_selection.GridSearchCV``) or ``"random"``
            (``dask_ml.model_selection.RandomizedSearchCV``).
        estimator: an unfitted scikit-learn estimator; the adaptive methods need one with
            ``partial_fit``.
        space: a JSON search space (see :func:`parse_space`; parsed spaces are accepted too).
        **options: the search class's constructor arguments (``max_iter``,
            ``n_initial_parameters``, ``random_state``, ``scoring``, ``n_iter``, ``cv``, ...).
            ``incremental`` defaults ``decay_rate`` to None (dask-ml's deprecated default
            only warns); ``halving`` defaults ``n_initial_iter`` to 1.

    Returns:
        the configured search; fit it, or give it to :func:`scaleml.tracking.search_and_log`.

    Raises:
        SearchSpaceError: unknown method, a space parameter the estimator does not have, a
            candidate value the estimator refuses (:func:`check_values`), a distribution in a
            grid search, an unknown option or an invalid option value.
    """
    if method not in SEARCH_METHODS:
        raise SearchSpaceError(
            f"search method must be one of {', '.join(SEARCH_METHODS)}, got {method!r}"
        )
    if not hasattr(estimator, "get_params") or not hasattr(estimator, "fit"):
        raise SearchSpaceError(
            f"estimator must be a scikit-learn estimator, got {type(estimator).__name__}"
        )
    if method in ADAPTIVE_METHODS and not callable(getattr(estimator, "partial_fit", None)):
        raise SearchSpaceError(
            f"search method {method!r} trains block by block and needs an estimator with "
            f"partial_fit; {type(estimator).__name__} has none (use grid or random)"
        )
    params = parse_space(space, grid=method == "grid")
    _check_parameters(estimator, params)
    check_values(estimator, params)
    cls = _search_class(method)
    _check_option_names(method, cls, options)
    defaults: dict[str, Any] = {}
    if method == "incremental":
        defaults["decay_rate"] = None
    elif method == "halving":
        defaults["n_initial_iter"] = 1
    elif method in ("grid", "random"):  # dask-ml retries a failed fit task forever: fail fast
        from scaleml.search._inmemory import fail_fast_get

        defaults["scheduler"] = fail_fast_get
    search = cls(estimator, params, **{**defaults, **options})
    _check_option_values(method, search)
    return search


def _search_class(method: str) -> type:
    if method == "incremental":
        from scaleml.search._adaptive import IncrementalSearchCV

        return IncrementalSearchCV
    if method == "hyperband":
        from scaleml.search._hyperband import HyperbandSearchCV

        return HyperbandSearchCV
    if method == "halving":
        from scaleml.search._adaptive import SuccessiveHalvingSearchCV

        return SuccessiveHalvingSearchCV
    from dask_ml.model_selection import GridSearchCV, RandomizedSearchCV

    return GridSearchCV if method == "grid" else RandomizedSearchCV


def _check_parameters(estimator: Any, params: dict[str, Any]) -> None:
    valid = set(estimator.get_params(deep=True))
    unknown = [name for name in params if name not in valid]
    if unknown:
        raise SearchSpaceError(
            f"search space parameter {unknown[0]!r} is not a parameter of "
            f"{type(estimator).__name__}; valid parameters: {sorted(valid)}"
        )


def _check_option_names(method: str, cls: type, options: dict[str, Any]) -> None:
    accepted = sorted(set(inspect.signature(cls.__init__).parameters) - {"self"} - _OWN_ARGUMENTS)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise SearchSpaceError(
            f"unknown search option(s) {unknown} for method {method!r} ({cls.__name__}); "
            f"accepted: {', '.join(accepted)}"
        )


def _check_option_values(method: str, search: Any) -> None:
    scoring = search.scoring
    if isinstance(scoring, str):
        from sklearn.metrics import get_scorer

        try:
            get_scorer(scoring)
        except ValueError:
            raise SearchSpaceError(
                "scoring must be a scikit-learn scorer name (accuracy, balanced_accuracy, "
                "roc_auc, neg_log_loss, f1, r2, neg_mean_squared_error, ...; see "
                f"sklearn.metrics.get_scorer_names()), got {scoring!r}"
            ) from None
    if method in ADAPTIVE_METHODS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                search._check_common()
                search._check_params()
        except ValueError as exc:
            raise SearchSpaceError(f"search method {method!r}: {exc}") from exc
        return
    if method == "random":
        n_iter = search.n_iter
        if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
            raise SearchSpaceError(f"n_iter must be an int >= 1, got {n_iter!r}")
    cv = search.cv
    if isinstance(cv, bool | float | str) or (isinstance(cv, int) and cv < 2):
        raise SearchSpaceError(f"cv must be None, an int >= 2 or a splitter, got {cv!r}")
