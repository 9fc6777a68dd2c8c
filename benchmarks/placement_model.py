"""How busy the workers are when a search's models travel to the blocks, against the model
``scaleml.search._placement`` chooses with.

A discrete-event simulation of the driver's schedule when the models travel: a group's models
are cut into batches (``traveling_batches``), every batch visits the blocks in the group's one
shared order, a task is a run of consecutive calls whose blocks live on one worker, its time
proportional to its calls x the batch's models, and a worker runs one task at a time, the
earliest queued first (as Dask does for tasks of one priority). The first call of every model
runs on the first block's worker, before the policy's first decision, as in the driver.
Blocks are spread evenly over the workers and the order is shuffled per pass, with 20 seeds.

Prints, per case, the simulated busy share of a worker, the closed-network model's
``b / (b + w - 1)`` (``traveling_utilization``) and the busy share when the models are dealt
round-robin and the blocks travel (``dealt_utilization``). No cluster, no timing: run it
anywhere with ``python benchmarks/placement_model.py``.
"""

from __future__ import annotations

import heapq
import itertools
import random

from scaleml.search._placement import (
    MAX_BATCH,
    dealt_utilization,
    split_evenly,
    traveling_batches,
    traveling_utilization,
)

ROUNDS_PER_STEP = 8
"""Calls per step when the decisions are known ahead (the driver's ``_MAX_ROUNDS``)."""


def simulate(n_models: int, workers: int, n_blocks: int, calls: int, seed: int) -> float:
    """The busy share of a worker over a search of ``calls`` calls per model."""
    rng = random.Random(seed)
    homes = [i % workers for i in range(n_blocks)]
    rng.shuffle(homes)
    order: list[int] = []
    while len(order) < calls:
        blocks = list(range(n_blocks))
        rng.shuffle(blocks)
        order += blocks
    sizes = [
        len(part) for part in split_evenly(range(n_models), traveling_batches(n_models, workers))
    ]
    routes = []
    for size in sizes:
        route: list[tuple[int, float]] = []
        for start in range(1, calls, ROUNDS_PER_STEP):
            for call in range(start, min(calls, start + ROUNDS_PER_STEP)):
                worker = homes[order[call]]
                if route and route[-1][0] == worker and call != start:
                    route[-1] = (worker, route[-1][1] + size)
                else:
                    route.append((worker, float(size)))
        routes.append(route)
    first = float(n_models)  # every model's first call, on the first block's worker
    position = [0] * len(sizes)
    queued: dict[int, list[int]] = {w: [] for w in range(workers)}
    running: list[int | None] = [None] * workers
    count = itertools.count()
    events = [(first, next(count), "arrive", b) for b in range(len(sizes))]
    heapq.heapify(events)
    end = first
    while events:
        now, _, kind, which = heapq.heappop(events)
        if kind == "arrive":
            if position[which] >= len(routes[which]):
                end = max(end, now)
                continue
            queued[routes[which][position[which]][0]].append(which)
        else:
            batch = running[which]
            assert batch is not None
            running[which] = None
            position[batch] += 1
            heapq.heappush(events, (now, next(count), "arrive", batch))
        for worker in range(workers):
            if running[worker] is None and queued[worker]:
                batch = queued[worker].pop(0)
                running[worker] = batch
                took = routes[batch][position[batch]][1]
                heapq.heappush(events, (now + took, next(count), "done", worker))
    return n_models * calls / workers / end


def main() -> None:
    cases = [
        ("tutorial IncrementalSearchCV", 10, 2, 45, 100),
        ("4 models (the tests)", 4, 2, 4, 25),
        ("3 models", 3, 2, 45, 100),
        ("81 models, 27 calls", 81, 2, 45, 27),
        ("tutorial, 4 workers", 10, 4, 45, 100),
        ("tutorial, 8 workers", 10, 8, 45, 100),
    ]
    print(
        f"{'case':<30} {'workers':>7} {'batches':>7} {'simulated':>9} {'modelled':>8} {'dealt':>6}"
    )
    for name, n_models, workers, n_blocks, calls in cases:
        runs = [simulate(n_models, workers, n_blocks, calls, seed) for seed in range(20)]
        print(
            f"{name:<30} {workers:>7} {traveling_batches(n_models, workers):>7} "
            f"{sum(runs) / len(runs):>9.2f} {traveling_utilization([n_models], workers):>8.2f} "
            f"{dealt_utilization(n_models, workers):>6.2f}"
        )
    print(f"(batches of at most {MAX_BATCH} models)")


if __name__ == "__main__":
    main()
