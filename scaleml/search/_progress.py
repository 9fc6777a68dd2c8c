"""dask-ml's progress messages for the rounds of a group, word for word."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from scaleml.search._batches import Group

progress = logging.getLogger("dask_ml.model_selection")
"""dask-ml's logger: its progress messages, word for word, so code that listens keeps working."""


def log_rounds(
    group: Group,
    info: dict[Hashable, list[dict[str, Any]]],
    logged: dict[Hashable, int],
    rounds: dict[int, int],
    log_every: int,
) -> None:
    """dask-ml's message for each scoring round of ``group`` since its last decision
    (several when a task ran several rounds): the round's best score, every ``log_every``
    rounds, starting with the first. ``logged`` (per model, its records already gone
    through) and ``rounds`` (per group ``id``, its rounds so far) are updated."""
    new = {k: records[logged.get(k, 0) :] for k, records in info.items()}
    logged.update({k: len(records) for k, records in info.items()})
    for i in range(max(map(len, new.values()), default=0)):
        scored = [records[i] for records in new.values() if len(records) > i]
        round_ = rounds.get(id(group), 0)
        rounds[id(group)] = round_ + 1
        if not log_every or round_ % log_every:
            continue
        best = max(scored, key=lambda r: r["score"])
        progress.info(
            "[CV%s] validation score of %0.4f received after %d partial_fit calls",
            group.prefix,
            best["score"],
            best["partial_fit_calls"],
        )
