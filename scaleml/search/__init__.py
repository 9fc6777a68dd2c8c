"""Search stage: adaptive hyper-parameter searches over ``partial_fit`` estimators.

``IncrementalSearchCV``, ``InverseDecaySearchCV``, ``SuccessiveHalvingSearchCV`` and
``HyperbandSearchCV`` keep dask-ml's public API (constructor parameters and defaults, ``fit``,
``cv_results_``, ``model_history_``, ``history_``, ``best_*``, Hyperband's ``metadata`` and
``metadata_``), so code written for dask-ml runs with the import line changed. They run on
distributed futures with a synchronous driver (dask-ml's fail on current Dask,
dask/dask-ml#1016); ``fit`` is always synchronous and uses the default ``distributed.Client``.

Tracking hook: :func:`observe` attaches callbacks to a search without touching its
parameters::

    search = HyperbandSearchCV(model, params, max_iter=27)
    observe(search, on_start=..., on_record=print, on_end=...)
    search.fit(X, y, classes=[0, 1])

``on_start(dict)`` is called once before any work (``search``, ``n_models``, ``models``:
``{model_id: params}``); ``on_record(record)`` for each history record as it is appended
(``model_id``, ``params``, ``partial_fit_calls``, ``partial_fit_time``, ``score``,
``score_time``, ``elapsed_wall_time``, ``bracket`` in Hyperband, and scaleml's ``restarted``);
``on_end(SearchSummary)`` once when the search has succeeded (best model, final calls and
whether each model was stopped early, restarted models, wall time).

Resilience: a model whose state, or running step, is lost with a worker is recomputed from
its lineage (every ``partial_fit`` works on a copy, so the replay gives the same model); its
next record is
listed in the search's ``restarts_`` and says ``restarted=True`` to ``on_record`` (``history_``
keeps dask-ml's keys exactly). The differences from dask-ml that are kept, and why, are listed
in :class:`IncrementalSearchCV`'s docstring.

From JSON (the CLI, the coordinator): :func:`parse_space` turns a JSON search space into
lists and scipy.stats distributions, and :func:`make_search` builds a configured search for a
method name (``incremental``, ``hyperband``, ``halving``, or dask-ml's ``grid`` / ``random``),
checking the space and options before any work starts.
"""

from scaleml.search._adaptive import (
    IncrementalSearchCV,
    InverseDecaySearchCV,
    SuccessiveHalvingSearchCV,
)
from scaleml.search._hyperband import HyperbandSearchCV
from scaleml.search._make import ADAPTIVE_METHODS, SEARCH_METHODS, make_search
from scaleml.search._observe import SearchSummary, observe, unobserve
from scaleml.search._space import check_values, parse_space

__all__ = [
    "ADAPTIVE_METHODS",
    "SEARCH_METHODS",
    "HyperbandSearchCV",
    "IncrementalSearchCV",
    "InverseDecaySearchCV",
    "SearchSummary",
    "SuccessiveHalvingSearchCV",
    "check_values",
    "make_search",
    "observe",
    "parse_space",
    "unobserve",
]
