"""One measured workload of ``benchmarks/scale.py``, run in the environment under test.

Runs with scaleml's ``.venv`` (``--impl scaleml``) or with dask-ml 2025.1's pinned venv
(``--impl dask-ml``), so it uses only what both have: ``distributed``, ``dask_ml`` and
scikit-learn. It connects to a running cluster (``--scheduler-file``), builds the data on it,
snapshots the counters, fits, snapshots again and prints one JSON line of differences:

* ``moved_bytes``: bytes the workers sent (distributed's own counters,
  ``Worker.transfer_outgoing_bytes_total``: the Dask sizes of the keys sent to other workers,
  and to the client, which here fetches only small results), and ``moved`` the number of
  such transfers (``transfer_outgoing_count_total``); ``moved_by_prefix`` splits the bytes by
  the sent keys' prefixes (``Worker.transfer_outgoing_log``, the last 1,000 sends per worker):
  what moved, e.g. ``partial_fit`` (model states), ``search`` (test-set copies);
* ``read_bytes``: bytes the worker processes read through ``read()`` (``rchar`` of
  ``/proc/<pid>/io``: files, page cache included; sockets excluded: they use ``recv``);
* ``tasks``: tasks computed (the scheduler's task stream), by key prefix;
* ``scheduler_cpu_s``: CPU time of the scheduler process during the fit;
* ``wall_s``, ``calls`` (``partial_fit`` calls), ``best_score``.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from typing import Any

import numpy as np


def _worker_counters(dask_worker: Any) -> dict[str, float]:
    rchar = 0
    with open("/proc/self/io") as io:
        for line in io:
            if line.startswith("rchar:"):
                rchar = int(line.split()[1])
    return {
        "moved_bytes": float(dask_worker.transfer_outgoing_bytes_total),
        "moved": float(dask_worker.transfer_outgoing_count_total),
        "read_bytes": float(rchar),
    }


def _sent_since(dask_worker: Any, since: float) -> dict[str, float]:
    from dask.utils import key_split

    out: dict[str, float] = collections.defaultdict(float)
    for sent in list(dask_worker.transfer_outgoing_log):
        if sent["start"] >= since:
            for key, nbytes in sent["keys"].items():
                out[key_split(key).split("-")[0]] += nbytes
    return dict(out)


def _moved_by_prefix(client: Any, since: float) -> dict[str, float]:
    out: collections.Counter[str] = collections.Counter()
    for sent in client.run(_sent_since, since=since).values():
        out.update(sent)
    return dict(out.most_common())


def _scheduler_cpu() -> float:
    return time.process_time()


def _snapshot(client: Any) -> dict[str, Any]:
    return {"workers": client.run(_worker_counters), "cpu": client.run_on_scheduler(_scheduler_cpu)}


def _difference(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    out = {"scheduler_cpu_s": after["cpu"] - before["cpu"]}
    for field in ("moved_bytes", "moved", "read_bytes"):
        out[field] = sum(
            counters[field] - before["workers"].get(worker, {}).get(field, 0.0)
            for worker, counters in after["workers"].items()
        )
    return out


def _params() -> dict[str, Any]:
    return {
        "alpha": np.logspace(-2, 1, num=1000),
        "l1_ratio": np.linspace(0, 1, num=1000),
        "average": [True, False],
    }


def _search(args: argparse.Namespace, client: Any) -> tuple[Any, Any]:
    from dask_ml.datasets import make_classification
    from sklearn.linear_model import SGDClassifier

    if args.impl == "scaleml":
        from scaleml.search import HyperbandSearchCV, IncrementalSearchCV
    else:
        from dask_ml.model_selection import HyperbandSearchCV, IncrementalSearchCV
    X, y = make_classification(
        n_samples=args.n_samples, n_features=20, chunks=args.chunk_rows, random_state=0
    )
    if args.impl == "scaleml":
        X, y = client.persist([X, y])
    # dask-ml 2025.1 fails on persisted input here (its split's tasks raise TypeError in
    # distributed 2025.2), so it generates the data inside fit, as the tutorial does.
    model = SGDClassifier(tol=1e-3, penalty="elasticnet", random_state=0)
    if args.workload == "hyperband":
        search = HyperbandSearchCV(model, _params(), max_iter=args.max_iter, random_state=0)
    elif args.impl == "scaleml":
        search = IncrementalSearchCV(
            model, _params(), random_state=0, decay_rate=None, max_iter=args.incremental_iter
        )
    else:
        search = IncrementalSearchCV(
            model, _params(), random_state=0, max_iter=args.incremental_iter
        )

    def fit() -> dict[str, Any]:
        search.fit(X, y, classes=[0, 1])
        calls = [h[-1]["partial_fit_calls"] for h in search.model_history_.values()]
        return {"calls": sum(calls), "models": len(calls), "best_score": search.best_score_}

    return fit, ((X, y) if args.impl == "scaleml" else None)


def _train(args: argparse.Namespace, client: Any) -> tuple[Any, Any]:
    from sklearn.linear_model import SGDClassifier

    model = SGDClassifier(random_state=0)
    if args.impl == "scaleml":
        from scaleml.data import Dataset
        from scaleml.train import train_incremental

        dataset = Dataset(args.data, target="target", validation_fraction=0.1)

        def fit() -> dict[str, Any]:
            result = train_incremental(
                model, dataset, epochs=args.epochs, client=client, classes=[0, 1], random_state=0
            )
            score = result.history[-1].scores.get("accuracy")
            calls = args.epochs * len(dataset.train_blocks)
            return {"calls": calls, "models": 1, "best_score": score}

        return fit, None
    import dask.dataframe as dd
    from dask_ml.wrappers import Incremental

    frame = dd.read_parquet(args.data)
    features = [c for c in frame.columns if c != "target"]
    X = frame[features].to_dask_array(lengths=True)
    y = frame["target"].to_dask_array(lengths=True)
    incremental = Incremental(model, shuffle_blocks=True, random_state=0)

    def fit() -> dict[str, Any]:
        for _ in range(args.epochs):
            incremental.partial_fit(X, y, classes=[0, 1])
        return {"calls": args.epochs * X.numblocks[0], "models": 1, "best_score": None}

    return fit, None


def main() -> None:
    from distributed import Client, get_task_stream

    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["scaleml", "dask-ml"], required=True)
    parser.add_argument("--workload", choices=["incremental", "hyperband", "train"], required=True)
    parser.add_argument("--scheduler-file", required=True)
    parser.add_argument("--n-samples", type=int, default=400_000)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--max-iter", type=int, default=27)
    parser.add_argument("--incremental-iter", type=int, default=100)
    parser.add_argument("--data", help="the Parquet directory of the training workload")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with Client(scheduler_file=args.scheduler_file) as client:
        make = _train if args.workload == "train" else _search
        fit, keep = make(args, client)
        if keep is not None:
            from distributed import wait

            wait(keep)
        before = _snapshot(client)
        since = time.time()
        started = time.perf_counter()
        with get_task_stream(client) as stream:
            result = fit()
        wall = time.perf_counter() - started
        after = _snapshot(client)
        prefixes = collections.Counter(
            str(task["key"]).split("-")[0].strip("('\"") for task in stream.data
        )
        out = {
            **_difference(before, after),
            "moved_by_prefix": _moved_by_prefix(client, since),
            **result,
            "wall_s": wall,
            "tasks": len(stream.data),
            "task_prefixes": dict(prefixes.most_common(8)),
            "workers": len(client.nthreads()),
        }
        out["best_score"] = None if out["best_score"] is None else float(out["best_score"])
        print(json.dumps(out))


if __name__ == "__main__":
    main()
