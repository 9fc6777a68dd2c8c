"""Pure decision functions of the adaptive searches, and Hyperband's schedule maths.

A policy looks at the history of one group of models (``info``: ``{model_id: [record, ...]}``,
records in call order) and at the decisions it took before, and returns a :class:`Decision`:
``{model_id: more_partial_fit_calls}``. Models missing from the decision are dropped; when
every value is zero the group stops. Nothing here touches a cluster, a clock or a random
generator, so the schedules are tested on simulated histories.

The algorithms and their edge cases follow dask-ml 2025.1 (``_incremental.py``,
``_successive_halving.py``, ``_hyperband.py``), so that call counts match dask-ml's.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

ModelId = Hashable
Record = Mapping[str, Any]
Info = Mapping[ModelId, Sequence[Record]]
Adapt = Callable[[Info, int], dict[ModelId, int]]


@dataclass(frozen=True)
class Decision:
    """What a policy decided after a round of scores.

    Attributes:
        calls: more ``partial_fit`` calls per model; models left out are dropped.
        targets: when the adaptive algorithm planned anew, the total number of calls it wants
            each model to reach (with ``patience`` the plan is carried out in slices of at most
            ``patience`` calls, checking for a plateau between slices); ``None`` when this
            decision continues an earlier plan.
    """

    calls: dict[ModelId, int]
    targets: dict[ModelId, int] | None = None

    @property
    def adapted(self) -> bool:
        """Whether the adaptive algorithm planned anew in this decision."""
        return self.targets is not None

    @property
    def stops(self) -> bool:
        """Whether no model gets another call."""
        return not any(self.calls.values())


def decide(
    info: Info,
    decisions: Sequence[Decision],
    adapt: Adapt,
    *,
    patience: int,
    tol: float | None,
    max_iter: int | None,
) -> Decision:
    """The decision of every adaptive search (dask-ml's ``_additional_calls``).

    ``adapt(info, n_adapted)`` is the algorithm proper (how many more calls each surviving
    model gets; ``n_adapted`` is how many times it planned before). Around it: models at
    ``max_iter`` stop, and with ``patience`` models whose score did not improve by more than
    ``tol`` over the last ``patience`` calls stop, the plan being carried out ``patience``
    calls at a time.
    """
    calls = {k: records[-1]["partial_fit_calls"] for k, records in info.items()}
    stop = partial(stop_on_plateau, info=info, patience=patience, tol=tol, max_iter=max_iter)
    if patience and max(calls.values()) > 1:
        targets = _latest_targets(decisions)
        # Only models still training carry on with the plan. (dask-ml also counts models
        # stopped on a plateau, whose plan is never finished, so its whole search stops one
        # round after the first plateau; here each model stops on its own plateau.)
        active = decisions[-1].calls if decisions else dict.fromkeys(info, 1)
        remaining = {k: targets.get(k, calls[k]) - calls[k] if active.get(k) else 0 for k in info}
        if sum(remaining.values()) > 0:
            return Decision({k: max(0, min(v, patience)) for k, v in stop(remaining).items()})
    planned = adapt(info, sum(d.adapted for d in decisions))
    targets = {k: calls[k] + v for k, v in planned.items()}
    out = stop(planned)
    if patience:
        out = {k: min(v, patience) for k, v in out.items()}
    return Decision({k: max(0, int(v)) for k, v in out.items()}, targets)


def stop_on_plateau(
    instructions: Mapping[ModelId, int],
    *,
    info: Info,
    patience: int,
    tol: float | None,
    max_iter: int | None,
) -> dict[ModelId, int]:
    """Zero the calls of models at ``max_iter`` or on a plateau; keep the others' calls."""
    out: dict[ModelId, int] = {}
    for k, steps in instructions.items():
        records = info[k]
        current = records[-1]["partial_fit_calls"]
        if max_iter and current >= max_iter:
            out[k] = 0
        elif patience and current >= patience:
            plateau = [r["score"] for r in records if current - r["partial_fit_calls"] <= patience]
            gains = np.asarray(plateau[1:]) - plateau[0]
            flat = tol is not None and len(gains) > 0 and gains.max() <= tol
            out[k] = 0 if flat else steps
        else:
            out[k] = steps
    return out


def fixed_adapt(info: Info, n_adapted: int, *, fits_per_score: int) -> dict[ModelId, int]:
    """IncrementalSearchCV: every model gets ``fits_per_score`` more calls."""
    return dict.fromkeys(info, fits_per_score)


def fixed_rounds(calls_done: int, *, fits_per_score: int, max_iter: int | None) -> int:
    """How many coming decisions of IncrementalSearchCV without ``patience`` give a model
    that made ``calls_done`` calls ``fits_per_score`` more: all of them until ``max_iter``.
    They do not depend on the scores, so they are known before the scores are."""
    if max_iter is None:
        return sys.maxsize
    if calls_done >= max_iter:
        return 0
    return math.ceil((max_iter - calls_done) / fits_per_score)


def inverse_decay_adapt(
    info: Info,
    n_adapted: int,
    *,
    n_start: int,
    decay_rate: float,
    patience: int,
    fits_per_score: int,
) -> dict[ModelId, int]:
    """InverseDecaySearchCV: keep the best ``n_start / (1 + t) ** decay_rate`` models at
    time step ``t`` (the number of calls of the first model)."""

    def inverse(time: int) -> int:
        return int(n_start / (1 + time) ** decay_rate)

    current = next(iter(info.values()))[-1]["partial_fit_calls"] + 1
    following = current if inverse(current) != 0 else 1  # else it would never move on
    while inverse(current) == inverse(following) and (
        (decay_rate and not patience) or following - current < fits_per_score
    ):
        following += 1
    target = max(1, inverse(following))
    best = _top(target, info)
    if len(best) == 1:
        return {best[0]: 0}
    return dict.fromkeys(best, following - current)


def successive_halving_adapt(
    info: Info,
    n_adapted: int,
    *,
    n_initial_parameters: int,
    n_initial_iter: int,
    aggressiveness: float,
) -> dict[ModelId, int]:
    """SuccessiveHalvingSearchCV: at rung ``i`` keep the best ``n * eta**-i`` models and
    train them up to ``round(r * eta**i)`` calls."""
    n, r, eta = n_initial_parameters, n_initial_iter, aggressiveness
    # Every model already had one call before the first decision: a rung of one call is
    # complete before any planning (dask-ml's "first_step_completed").
    step = n_adapted + _rungs_of_one_call(r, eta)
    n_i = math.floor(n * eta**-step)
    r_i = int(np.round(r * eta**step))
    best = _top(n_i, info)
    if not best:
        return dict.fromkeys(info, 0)
    return {k: r_i - info[k][-1]["partial_fit_calls"] for k in best}


def simulate_successive_halving(
    n: int, r: int, eta: float, max_iter: int | None = None
) -> dict[str, int]:
    """Calls of a successive-halving run without patience: ``{"total_calls", "max_iter"}``."""
    calls = dict.fromkeys(range(n), 0)
    for step in range(10_000):
        n_i = math.floor(n * eta**-step)
        r_i = int(np.round(r * eta**step))
        for k in range(n_i):
            calls[k] = r_i
        if n_i <= 1 or (max_iter and r_i >= max_iter):
            break
    return {"total_calls": sum(calls.values()), "max_iter": max(calls.values())}


def hyperband_brackets(max_iter: int, aggressiveness: float = 3) -> dict[int, tuple[int, int]]:
    """Hyperband's brackets: ``{bracket: (n_models, n_initial_iter)}``, most adaptive first."""
    s_max = math.floor(math.log(max_iter, aggressiveness))
    budget = (s_max + 1) * max_iter
    brackets = list(reversed(range(int(s_max + 1))))
    return {
        s: (
            math.ceil(budget / max_iter * aggressiveness**s / (s + 1)),
            int(max_iter * aggressiveness**-s),
        )
        for s in brackets
    }


def hyperband_schedule(max_iter: int, aggressiveness: float = 3) -> list[dict[str, Any]]:
    """Algorithm 1 of the Hyperband paper, per bracket: ``bracket``, ``n_models``,
    ``partial_fit_calls`` and ``decisions`` (the call counts at which models are judged)."""
    out = []
    for s, (n, r) in hyperband_brackets(max_iter, aggressiveness).items():
        calls = dict.fromkeys(range(n), 0)
        alive = list(range(n))
        decisions = set()
        for i in range(s + 1):
            n_i = math.floor(n * aggressiveness**-i)
            r_i = int(np.round(r * aggressiveness**i))
            calls.update(dict.fromkeys(alive, r_i))
            decisions.add(r_i)
            alive = alive[: math.floor(n_i / aggressiveness)]
        out.append(
            {
                "bracket": s,
                "n_models": n,
                "partial_fit_calls": sum(calls.values()),
                "decisions": sorted(decisions),
            }
        )
    return sorted(out, key=lambda b: b["bracket"])


def hyperband_patience(patience: bool | int, max_iter: int, aggressiveness: float) -> int:
    """The patience each bracket gets: ``True`` means ``max(max_iter // aggressiveness, 1)``."""
    if isinstance(patience, bool):
        return max(int(max_iter // aggressiveness), 1) if patience else 0
    return int(patience)


def _latest_targets(decisions: Sequence[Decision]) -> dict[ModelId, int]:
    for decision in reversed(decisions):
        if decision.targets is not None:
            return decision.targets
    return {}


def _top(k: int, info: Info) -> list[ModelId]:
    """The ``k`` models with the highest last score (ties: the earlier model first)."""
    return heapq.nlargest(k, info, key=lambda m: info[m][-1]["score"])


def _rungs_of_one_call(r: int, eta: float) -> int:
    skipped = 0
    while int(np.round(r * eta**skipped)) == 1 and skipped < 64:
        skipped += 1
    return skipped
