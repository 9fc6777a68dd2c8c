"""HyperbandSearchCV: several successive-halving brackets run at once, on one driver."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Hashable, Sequence
from functools import partial
from typing import Any

import numpy as np
from sklearn.model_selection import ParameterSampler
from sklearn.utils import check_random_state

from scaleml.search import _history, _policies
from scaleml.search._adaptive import SuccessiveHalvingSearchCV, _check_aggressiveness
from scaleml.search._base import BaseAdaptiveSearch, check_max_iter
from scaleml.search._batches import Group
from scaleml.search._driver import Driver


class HyperbandSearchCV(BaseAdaptiveSearch):
    """Hyperband (dask-ml's ``HyperbandSearchCV``): successive halving in several brackets,
    from "many models, judged early" to "few models, trained fully", all trained at once.

    Args:
        estimator: an estimator with ``partial_fit``.
        parameters: parameter names to lists or distributions (sampled per bracket).
        max_iter: the most ``partial_fit`` calls any model gets; sets the brackets.
        aggressiveness: the culling factor of each bracket (> 1; 3 by default, 4 is more
            aggressive).
        patience: stop models on a plateau; True means ``max_iter // aggressiveness``; a
            float is cast to an int, as dask-ml does.
        tol: the improvement that counts for ``patience``.
        test_size: share held out for scoring (ignored for a ``Dataset``).
        random_state: as in dask-ml, each bracket ``b`` is a successive halving with its own
            random state (``random_state`` for bracket 0, ``seed + b`` for the others, ``seed``
            drawn from ``random_state``), which samples its parameters, splits the data into
            its own train and test sets, and orders its blocks: an integer ``random_state``
            trains dask-ml's models and picks dask-ml's best.
        scoring, verbose, prefix, predict_meta, predict_proba_meta, transform_meta,
            placement: as in :class:`~scaleml.search.IncrementalSearchCV` (with
            ``placement="auto"`` the choice counts the models of every bracket: they train
            at once).

    ``metadata`` describes the computation before ``fit`` and ``metadata_`` what ran; model
    ids are ``"bracket={b}-{i}"`` and ``cv_results_`` has a ``bracket`` column. Differences
    from dask-ml: those of :class:`~scaleml.search.IncrementalSearchCV`, and
    ``rank_test_score`` ranks over all brackets (dask-ml's ranks within each bracket, so
    several models share rank 1); ``n_splits_`` is set (1), which dask-ml's Hyperband omits.
    With ``verbose``, each bracket logs dask-ml's ``[CV, bracket=N]`` messages, all of them
    (dask-ml's brackets share one logger and some of their last messages get lost).
    """

    def __init__(
        self,
        estimator: Any,
        parameters: dict[str, Any] | list[dict[str, Any]],
        max_iter: int = 81,
        aggressiveness: float = 3,
        patience: bool | float = False,
        tol: float | None = 1e-3,
        test_size: float | None = None,
        random_state: Any = None,
        scoring: Any = None,
        verbose: bool | float = False,
        prefix: str = "",
        predict_meta: Any = None,
        predict_proba_meta: Any = None,
        transform_meta: Any = None,
        placement: str = "auto",
    ) -> None:
        self.estimator = estimator
        self.parameters = parameters
        self.max_iter = max_iter
        self.aggressiveness = aggressiveness
        self.patience = patience
        self.tol = tol
        self.test_size = test_size
        self.random_state = random_state
        self.scoring = scoring
        self.verbose = verbose
        self.prefix = prefix
        self.predict_meta = predict_meta
        self.predict_proba_meta = predict_proba_meta
        self.transform_meta = transform_meta
        self.placement = placement

    def _check_params(self) -> None:
        check_max_iter(self.max_iter)
        _check_aggressiveness(self.aggressiveness)
        if not isinstance(self.patience, numbers.Real):
            raise ValueError(
                "patience must be an integer (or a subclass like boolean), not "
                f"patience={self.patience!r} of type {type(self.patience)} "
                "(patience must be a bool or a number >= 2)"
            )
        wanted = max(int(self.max_iter // self.aggressiveness), 1)
        if self.patience is True and wanted < 2:
            raise ValueError(
                f"patience={wanted}<=1 will always detect a plateau. To resolve this, set "
                f"patience >= 2 (patience=True means max_iter // aggressiveness = {wanted} "
                "calls; raise max_iter or pass a patience >= 2)"
            )
        cast = 0 if isinstance(self.patience, bool) else int(self.patience)
        if cast != 0 and cast <= 1:
            raise ValueError(
                f"patience={cast}<=1 will always detect a plateau. To resolve "
                f"this, set patience >= 2 (patience must be a bool or a number >= 2, "
                f"or 0 for none, got {self.patience!r})"
            )
        tol_set = self.tol is not None and not np.isnan(self.tol)
        if not isinstance(self.patience, bool) and self.patience < wanted and tol_set:
            warnings.warn(
                "The goal of `patience` is to stop training estimators that have "
                "already converged *when few estimators remain*. "
                "Hyperband is already an (almost optimal) adaptive scheme, "
                "and patience should be large to be a minimal layer on top "
                "of Hyperband. \n\n"
                "To clear this warning, set \n\n"
                "    * patience=True\n"
                f"    * patience >= {self.max_iter // self.aggressiveness}\n"
                "    * tol=None or tol=np.nan\n\n"
                f"instead of patience={self.patience} ",  # dask-ml's words
                UserWarning,
                stacklevel=3,
            )

    def _brackets(self) -> dict[int, SuccessiveHalvingSearchCV]:
        """One successive-halving search per bracket (their parameters, not run as such)."""
        patience = _policies.hyperband_patience(self.patience, self.max_iter, self.aggressiveness)
        seed_start = int(check_random_state(self.random_state).randint(2**31))
        return {
            b: SuccessiveHalvingSearchCV(
                self.estimator,
                self.parameters,
                n_initial_parameters=n,
                aggressiveness=self.aggressiveness,
                max_iter=self.max_iter,
                n_initial_iter=r,
                patience=patience,
                tol=self.tol,
                test_size=self.test_size,
                random_state=seed_start + b if b != 0 else self.random_state,
                scoring=self.scoring,
                verbose=self.verbose,
                prefix=f"{self.prefix}, bracket={b}",
            )
            for b, (n, r) in _policies.hyperband_brackets(
                self.max_iter, self.aggressiveness
            ).items()
        }

    def _groups(self, seed: int) -> list[Group]:
        # Each bracket is dask-ml's SuccessiveHalvingSearchCV with its own random_state: it
        # samples its parameters, splits the data and orders the blocks with it.
        self._shas = self._brackets()  # most adaptive bracket first
        groups = []
        for b, sha in self._shas.items():
            if isinstance(sha.random_state, numbers.Integral):
                seed_b = int(sha.random_state)
            else:
                seed_b = seed + b
            params = ParameterSampler(
                sha.parameters, sha.n_initial_parameters, random_state=sha.random_state
            )
            policy = partial(
                _policies.decide,
                adapt=sha._adapt(),
                patience=int(sha.patience),
                tol=sha.tol,
                max_iter=sha.max_iter,
            )
            models = {f"bracket={b}-{i}": p for i, p in enumerate(params)}
            groups.append(
                Group(models, policy, seed_b, extra={"bracket": b}, prefix=sha.prefix, split=b)
            )
        return groups

    def _splits(self, groups: Sequence[Group]) -> dict[Hashable, Any]:
        return {b: sha.random_state for b, sha in self._shas.items()}

    def _set_results(self, driver: Driver, groups: list[Group], history: _history.History) -> Any:
        per_model = history.by_model()
        order = [k for g in groups for k in g.models]
        self.cv_results_ = _history.cv_results(per_model, order, extra=["bracket"])
        best_per_group = {}
        for group in groups:
            best = max(group.live, key=lambda k, g=group: g.info[k][-1]["score"])
            best_per_group[best] = group.info[best][-1]["score"]
        best_id = max(best_per_group, key=lambda k: best_per_group[k])
        self.best_index_ = order.index(best_id)
        self.best_score_ = best_per_group[best_id]
        self.best_params_ = self.cv_results_["params"][self.best_index_]
        self.history_ = sorted(history.records, key=lambda r: r["elapsed_wall_time"])
        self.model_history_ = per_model
        sha_params = {b: _sha_params(sha) for b, sha in self._shas.items()}
        self.metadata_ = _history.bracket_metadata(history.records, sorted(self._shas), sha_params)
        return best_id

    @property
    def metadata(self) -> dict[str, Any]:
        """The computation to be done: ``n_models``, ``partial_fit_calls`` and per-bracket
        ``brackets`` (``bracket``, ``n_models``, ``partial_fit_calls``, ``decisions``,
        ``SuccessiveHalvingSearchCV params``)."""
        self._check_params()
        brackets = _policies.hyperband_schedule(self.max_iter, self.aggressiveness)
        shas = self._brackets()
        for bracket in brackets:
            bracket["SuccessiveHalvingSearchCV params"] = _sha_params(shas[bracket["bracket"]])
        return {
            "partial_fit_calls": sum(b["partial_fit_calls"] for b in brackets),
            "n_models": sum(b["n_models"] for b in brackets),
            "brackets": brackets,
        }


def _sha_params(sha: SuccessiveHalvingSearchCV) -> dict[str, Any]:
    """A bracket's parameters as dask-ml's metadata lists them (without scaleml's own)."""
    return {
        k: v
        for k, v in sha.get_params().items()
        if "estimator_" not in k and k not in ("parameters", "estimator", "placement")
    }
