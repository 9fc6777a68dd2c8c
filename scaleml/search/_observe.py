"""The tracking hook: ``observe(search, on_start=..., on_record=..., on_end=...)``.

Callbacks are kept on the search object in a private attribute, outside ``get_params``, so
``clone`` and ``set_params`` are not affected and ``fit`` keeps dask-ml's signature. They are
called on the client, in the thread that called ``fit``:

- ``on_start(start)``: once, after validation and before any work, with a dict ``search``
  (class name), ``n_models`` and ``models`` (``{model_id: params}``).
- ``on_record(record)``: for every history record, as it is appended (see ``_history``).
- ``on_end(summary)``: once, with a :class:`SearchSummary`, after the search succeeded.

A callback that raises stops the search (the error propagates from ``fit``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

Search = TypeVar("Search")
_ATTRIBUTE = "_scaleml_observers"


@dataclass(frozen=True)
class SearchSummary:
    """How a search ended.

    Attributes:
        search: the search's class name.
        n_models: how many models were trained.
        partial_fit_calls: total ``partial_fit`` calls over all models.
        best_model_id: the ``model_id`` of ``best_estimator_``.
        best_score: ``best_score_``.
        best_params: ``best_params_``.
        final_calls: each model's total number of calls.
        stopped_early: per model, whether it got fewer calls than the most-trained model of
            its group (the whole search, or its Hyperband bracket): dropped by the algorithm
            or stopped on a plateau (``patience``).
        restarted: models whose state was lost with a worker and recomputed.
        wall_time_s: seconds from the start of ``fit`` to the end.
    """

    search: str
    n_models: int
    partial_fit_calls: int
    best_model_id: Hashable
    best_score: float
    best_params: dict[str, Any]
    final_calls: dict[Hashable, int]
    stopped_early: dict[Hashable, bool]
    restarted: list[Hashable]
    wall_time_s: float


@dataclass(frozen=True)
class _Observer:
    on_start: Callable[[dict[str, Any]], object] | None
    on_record: Callable[[dict[str, Any]], object] | None
    on_end: Callable[[SearchSummary], object] | None


def observe(
    search: Search,
    *,
    on_start: Callable[[dict[str, Any]], object] | None = None,
    on_record: Callable[[dict[str, Any]], object] | None = None,
    on_end: Callable[[SearchSummary], object] | None = None,
) -> Search:
    """Have ``search``'s next fits call these callbacks; returns ``search``.

    Calling it again adds more callbacks; :func:`unobserve` removes them all.
    """
    if not hasattr(search, "fit"):
        raise TypeError(f"search must be a search estimator, got {type(search).__name__}")
    observers = [*getattr(search, _ATTRIBUTE, []), _Observer(on_start, on_record, on_end)]
    setattr(search, _ATTRIBUTE, observers)
    return search


def unobserve(search: Search) -> Search:
    """Remove every callback :func:`observe` added to ``search``; returns ``search``."""
    if hasattr(search, _ATTRIBUTE):
        delattr(search, _ATTRIBUTE)
    return search


def observers_of(search: Any) -> list[_Observer]:
    """The observers of ``search`` (private helper of the search classes)."""
    return list(getattr(search, _ATTRIBUTE, []))
