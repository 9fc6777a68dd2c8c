"""What a tracked search logs about itself: its parameters and space (as MLflow params and
``search_space.json``), its leaderboard, and values made plain for JSON; and the check of its
candidate values before any run opens."""

from __future__ import annotations

import json
import numbers
from typing import Any

import numpy as np

from scaleml.tracking._runs import RunLogger, class_path

_SPACE_KEYS = ("parameters", "param_grid", "param_distributions")
_NOT_LOGGED = {"estimator", *_SPACE_KEYS, "scheduler", "predict_meta", "predict_proba_meta"}
_NOT_LOGGED |= {"transform_meta"}


def leaderboard(search: Any) -> dict[str, Any]:
    """Every model by rank, the one the search chose (``best_index_``) marked ``chosen``: in a
    Hyperband search it need not be the first (the best of the best bracket's survivors)."""
    results = search.cv_results_
    score_key = "test_score" if "test_score" in results else "mean_test_score"
    ranks = results["rank_test_score"]
    ids = results.get("model_id", list(range(len(ranks))))
    chosen = getattr(search, "best_index_", None)
    rows = [
        {
            "rank": plain(ranks[i]),
            "model_id": plain(ids[i]),
            "score": plain(results[score_key][i]),
            "params": plain_dict(results["params"][i]),
            "chosen": i == chosen,
        }
        for i in sorted(range(len(ranks)), key=lambda i: ranks[i])
    ]
    return {"scoring": score_key, "rows": rows}


def check_candidates(search: Any) -> None:
    """Every candidate value of the search's space, checked against the estimator's parameter
    constraints before any run opens or any work starts."""
    from scaleml.search._space import check_values

    space = next((getattr(search, k) for k in _SPACE_KEYS if hasattr(search, k)), {})
    for one in space if isinstance(space, list) else [space]:
        check_values(search.estimator, one)


def log_search(run: RunLogger, search: Any) -> None:
    """The search's and its estimator's parameters and its space, in ``run``."""
    params = {
        k: v
        for k, v in search.get_params(deep=False).items()
        if k not in _NOT_LOGGED and not callable(v)
    }
    estimator = search.estimator
    space = next((getattr(search, k) for k in _SPACE_KEYS if hasattr(search, k)), {})
    run.log_params(
        {
            "search": class_path(search),
            "estimator": class_path(estimator),
            **{f"search.{k}": v for k, v in params.items()},
            **{f"estimator.{k}": v for k, v in estimator.get_params(deep=False).items()},
            **{f"space.{k}": v for k, v in _describe(space).items()},
        }
    )
    run.log_dict(_space_json(space), "search_space.json")


def _describe(space: Any) -> dict[str, str]:
    from scaleml.search._space import describe_space

    if isinstance(space, list):  # a list of spaces: describe each, numbered
        return {f"{i}.{k}": v for i, s in enumerate(space) for k, v in describe_space(s).items()}
    return describe_space(space)


def _space_json(space: Any) -> Any:
    if isinstance(space, list):
        return {"spaces": [_space_json(s) for s in space]}
    return {
        k: plain(v) if not hasattr(v, "rvs") else _describe({k: v})[k] for k, v in space.items()
    }


def plain(value: Any) -> Any:
    """``value`` as a JSON-ready Python value (``repr`` if nothing else)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, numbers.Number | str | bool) or value is None:
        return value
    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value


def plain_dict(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with every value made plain."""
    return {k: plain(v) for k, v in params.items()}
