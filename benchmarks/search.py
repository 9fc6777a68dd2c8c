"""Benchmark: scaleml's adaptive searches on the dask-ml tutorial workload, against references.

The workload is the dask-ml tutorial's: ``make_classification(n_samples=5_000_000,
n_features=20, chunks=100_000, random_state=0)``, an elasticnet ``SGDClassifier`` and the
space ``alpha`` (logspace, 1,000 values), ``l1_ratio`` (linspace, 1,000), ``average``.

Rows (each on 2 worker processes / 2 cores, only ``fit`` timed):

* **dask-ml IncrementalSearchCV** (the reference) - the tutorial program as written, in its
  own virtual environment (``benchmarks/out/daskml-venv``: dask==2025.2.0,
  distributed==2025.2.0, dask-ml==2025.1.0, pandas<3, the last versions where it works),
  run as a subprocess with ``Client()`` (2 workers x 1 thread on 2 cores), under an
  ``if __name__ == "__main__":`` guard (without it, as a script, ``Client()`` hangs: the worker
  processes re-run the module). The environment is created on first use.
* **dask-ml HyperbandSearchCV(max_iter=81)** - the same program in the same environment with
  the tutorial's Hyperband search (first round only); the table ends with scaleml's Hyperband
  against it (best score, calls and models must be the same: the same models are trained).
* **scaleml IncrementalSearchCV** and **HyperbandSearchCV(max_iter=81)** - the same program
  with scaleml's import, on a ``LocalCluster`` of 2 worker processes x 1 thread.
* **scaleml IncrementalSearchCV, tracked** - the same search through
  ``scaleml.tracking.search_and_log`` (parent + 10 nested MLflow runs, 1,000 step metrics, a
  SQLite store): the search's own wall time shows what tracking costs it.
* **scaleml IncrementalSearchCV, scaleml.cluster.connect()** - the same search on the
  LocalCluster scaleml itself starts (2 workers x 1 thread, with its worker malloc settings
  instead of Dask's ``MALLOC_TRIM_THRESHOLD_=65536``).
* **scikit-learn HalvingRandomSearchCV(n_jobs=2)** - on the same data computed into memory
  (when it fits in half the available memory): 27 candidates, factor 3, resource
  ``n_samples``, one 80/20 shuffle split (like the adaptive searches' single test set).

Run from the repository root::

    .venv/bin/python benchmarks/search.py                       # full size (minutes)
    .venv/bin/python benchmarks/search.py --n-samples 1000000   # quicker
    .venv/bin/python benchmarks/search.py --dashboard --n-samples 500000 --repeats 3
                                                                # pages off/on pairs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil

OUT = Path(__file__).resolve().parent / "out"
VENV = OUT / "daskml-venv"
DASKML_HYPERBAND = "dask-ml HyperbandSearchCV(max_iter=81)"
VENV_PACKAGES = [
    "dask==2025.2.0",
    "distributed==2025.2.0",
    "dask-ml==2025.1.0",
    "pandas<3",
    "scikit-learn",
]
TUTORIAL = """\
import json, sys, time

if __name__ == "__main__":  # the one addition: a script that starts worker processes needs it
    t0 = time.perf_counter()
    # --- the tutorial program, as written (n_samples from the command line) ---
    from dask.distributed import Client
    from dask_ml.model_selection import IncrementalSearchCV, HyperbandSearchCV
    from sklearn.linear_model import SGDClassifier
    from dask_ml.datasets import make_classification
    import numpy as np

    client = Client()
    X, y = make_classification(n_samples=int(sys.argv[1]), n_features=20, chunks=100000,
                               random_state=0)
    model = SGDClassifier(tol=1e-3, penalty='elasticnet', random_state=0)
    params = {'alpha': np.logspace(-2, 1, num=1000),
              'l1_ratio': np.linspace(0, 1, num=1000),
              'average': [True, False]}
    search = IncrementalSearchCV(model, params, random_state=0)
    if sys.argv[2:] == ["hyperband"]:  # the tutorial's Hyperband section
        search = HyperbandSearchCV(model, params, max_iter=81, random_state=0)
    t1 = time.perf_counter()
    search.fit(X, y, classes=[0, 1])
    t2 = time.perf_counter()
    # --- end of the tutorial ---
    calls = [h[-1]["partial_fit_calls"] for h in search.model_history_.values()]
    print(json.dumps({"fit_s": t2 - t1, "program_s": t2 - t0, "best_score": search.best_score_,
                      "calls": sum(calls), "models": len(calls),
                      "workers": len(client.nthreads()),
                      "threads": sum(client.nthreads().values())}))
    client.close()
"""


def main(argv: list[str] | None = None) -> int:
    args = _parse_arguments(argv)
    if args.dashboard:  # pages on/off pairs only (benchmarks/_dashboard_pair.py)
        from _dashboard_pair import report, run

        report(run(args.n_samples, args.repeats, _params(), _model()))
        return 0
    print(
        f"scaleml search benchmark - {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"workload: make_classification(n_samples={args.n_samples:,}, n_features=20, "
        "chunks=100,000, random_state=0); SGDClassifier(elasticnet); tutorial space\n"
    )
    rows: list[dict[str, Any]] = []
    pairs: list[tuple[float, float]] = []
    for round_ in range(args.repeats):
        # Later rounds repeat only the pair the target compares, back to back.
        rows_before = len(rows)
        if not args.skip_daskml:
            rows.append(_daskml(args.n_samples))
            print(f"  {json.dumps(rows[-1])}", flush=True)
        if round_ == 0 and not args.skip_daskml and not args.skip_hyperband:
            rows.append(_daskml(args.n_samples, "hyperband"))
            print(f"  {json.dumps(rows[-1])}", flush=True)
        for row in _scaleml(args, everything=round_ == 0):
            rows.append(row)
            print(f"  {json.dumps(row)}", flush=True)
        pairs.extend(_pair(rows[rows_before:]))
    if not args.skip_sklearn:
        try:
            rows.append(_sklearn_halving(args.n_samples))
        except Exception as exc:  # a reference failing must not lose the other figures
            print(f"  sklearn reference failed: {type(exc).__name__}: {exc}", flush=True)
            rows.append({"name": "sklearn HalvingRandomSearchCV(n_jobs=2)", "skipped": True})
    _print_table(rows, pairs)
    _print_hyperband(rows)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


def _params() -> dict[str, Any]:
    return {
        "alpha": np.logspace(-2, 1, num=1000),
        "l1_ratio": np.linspace(0, 1, num=1000),
        "average": [True, False],
    }


def _model() -> Any:
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(tol=1e-3, penalty="elasticnet", random_state=0)


def _daskml(n_samples: int, search: str = "incremental") -> dict[str, Any]:
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {VENV} ({', '.join(VENV_PACKAGES)}) ...", flush=True)
        subprocess.run(["python3.11", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *VENV_PACKAGES], check=True)
    script = OUT / "daskml_tutorial.py"
    script.write_text(TUTORIAL)
    name = DASKML_HYPERBAND if search == "hyperband" else "dask-ml IncrementalSearchCV"
    print(f"{name} (tutorial program, own venv) ...", flush=True)
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), str(script), str(n_samples), search],
        capture_output=True,
        text=True,
        check=False,
        cwd=OUT,
        timeout=3600,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the dask-ml program failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "name": name,
        "wall_s": result["fit_s"],
        "best_score": result["best_score"],
        "calls": result["calls"],
        "models": result["models"],
        "note": f"program {elapsed:.1f}s incl. start-up; {result['workers']} workers",
        "reference": search == "incremental",
    }


def _scaleml(args: argparse.Namespace, *, everything: bool) -> Iterator[dict[str, Any]]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        searches = [("scaleml IncrementalSearchCV", False)]
        if everything and not args.skip_hyperband:
            searches.append(("scaleml HyperbandSearchCV(max_iter=81)", False))
        if everything and not args.skip_tracked:
            searches.append(("scaleml IncrementalSearchCV, tracked", True))
        yield from _run_searches(args, client, searches)
    if everything and not args.skip_connect:
        from scaleml.cluster import connect
        from scaleml.config import Settings

        settings = Settings(n_workers=2, threads_per_worker=1, dashboard_address=":0")
        with connect(settings, announce=lambda line: None) as client:
            name = "scaleml IncrementalSearchCV, scaleml.cluster.connect()"
            yield from _run_searches(args, client, [(name, False)])


def _run_searches(
    args: argparse.Namespace, client: Any, searches: list[tuple[str, bool]]
) -> Iterator[dict[str, Any]]:
    from dask_ml.datasets import make_classification

    from scaleml.search import HyperbandSearchCV, IncrementalSearchCV

    X, y = make_classification(
        n_samples=args.n_samples, n_features=20, chunks=100_000, random_state=0
    )
    for name, tracked in searches:
        print(f"{name} ...", flush=True)
        if "Hyperband" in name:
            search = HyperbandSearchCV(_model(), _params(), max_iter=81, random_state=0)
        else:
            search = IncrementalSearchCV(_model(), _params(), random_state=0, decay_rate=None)
        note = ""
        started = time.perf_counter()
        if tracked:
            wall, note = _tracked_fit(search, X, y, client)
        else:
            search.fit(X, y, classes=[0, 1])
            wall = time.perf_counter() - started
        calls = [h[-1]["partial_fit_calls"] for h in search.model_history_.values()]
        yield {
            "name": name,
            "wall_s": wall,
            "best_score": float(search.best_score_),
            "calls": sum(calls),
            "models": len(calls),
            "note": note,
        }


def _tracked_fit(search: Any, X: Any, y: Any, client: Any) -> tuple[float, str]:
    """Fit through search_and_log; return the search's own wall time and a note."""
    from scaleml.config import Settings
    from scaleml.search import observe
    from scaleml.tracking import Tracker, search_and_log

    ended: list[Any] = []
    observe(search, on_end=ended.append)
    with tempfile.TemporaryDirectory(dir=OUT) as directory:
        settings = Settings(
            mlflow_tracking_uri=f"sqlite:///{directory}/mlflow.db", experiment="bench"
        )
        started = time.perf_counter()
        search_and_log(
            search, X, y, tracker=Tracker(settings), client=client, fit_params={"classes": [0, 1]}
        )
        total = time.perf_counter() - started
    return ended[0].wall_time_s, f"search_and_log {total:.1f}s incl. runs + model logging"


def _sklearn_halving(n_samples: int) -> dict[str, Any]:
    from dask_ml.datasets import make_classification
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV, ShuffleSplit

    needed = n_samples * 21 * 8 * 3  # X and y, plus copies for the two worker processes
    available = psutil.virtual_memory().available
    name = "sklearn HalvingRandomSearchCV(n_jobs=2)"
    if needed > available / 2:
        print(f"{name}: skipped, needs ~{needed / 2**30:.1f} GiB", flush=True)
        return {"name": name, "skipped": True}
    print(f"{name} ...", flush=True)
    X, y = make_classification(n_samples=n_samples, n_features=20, chunks=100_000, random_state=0)
    X, y = np.asarray(X.compute(scheduler="threads")), np.asarray(y.compute(scheduler="threads"))
    search = HalvingRandomSearchCV(
        _model(),
        _params(),
        n_candidates=27,
        factor=3,
        resource="n_samples",
        min_resources=n_samples // 27,
        cv=ShuffleSplit(n_splits=1, test_size=0.2, random_state=0),
        random_state=0,
        n_jobs=2,
    )
    started = time.perf_counter()
    search.fit(X, y)
    wall = time.perf_counter() - started
    return {
        "name": name,
        "wall_s": wall,
        "best_score": float(search.best_score_),
        "calls": None,
        "models": int(search.n_candidates_[0]),
        "note": f"full fits on {search.n_resources_} rows; data in memory",
    }


def _pair(rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(dask-ml's wall time, scaleml IncrementalSearchCV's) of one round, if both ran."""
    reference = next((r for r in rows if r.get("reference")), None)
    ours = next((r for r in rows if r["name"] == "scaleml IncrementalSearchCV"), None)
    return [(reference["wall_s"], ours["wall_s"])] if reference and ours else []


def _print_table(rows: list[dict[str, Any]], pairs: list[tuple[float, float]]) -> None:
    reference = next((r for r in rows if r.get("reference")), None)
    print()
    print(
        f"{'search':<40} {'wall s':>8} {'best score':>11} {'partial_fit':>12} {'models':>7} "
        f"{'wall ratio':>11}  note"
    )
    current = reference  # each row against the dask-ml run of its round
    for row in rows:
        if row.get("skipped"):
            print(f"{row['name']:<40} {'skipped':>8}")
            continue
        current = row if row.get("reference") else current
        ratio = f"{row['wall_s'] / current['wall_s']:.2f}x" if current else "-"
        calls = f"{row['calls']:,}" if row["calls"] is not None else "-"
        print(
            f"{row['name']:<40} {row['wall_s']:>8.1f} {row['best_score']:>11.5f} {calls:>12} "
            f"{row['models']:>7} {ratio:>11}  {row['note']}"
        )
    ours = next((r for r in rows if r["name"] == "scaleml IncrementalSearchCV"), None)
    if reference and ours and pairs:
        ratios = [mine / theirs for theirs, mine in pairs]
        scores = [r["best_score"] for r in rows if r["name"] == ours["name"]]
        references = [r["best_score"] for r in rows if r.get("reference")]
        ratio = float(np.median(ratios))
        met = min(scores) >= max(references) and ratio <= 0.8
        if len(pairs) > 1:
            listed = ", ".join(
                f"{theirs:.1f}/{mine:.1f} s = {mine / theirs:.2f}x" for theirs, mine in pairs
            )
            print(f"\nrounds (dask-ml / scaleml IncrementalSearchCV, back to back): {listed}")
        print(
            f"\ntarget (scaleml IncrementalSearchCV: best score >= dask-ml's, wall <= 0.8x): "
            f"{'met' if met else 'NOT met'} (score {min(scores):.5f} vs {max(references):.5f}, "
            f"wall {ratio:.2f}x{' (median of the rounds)' if len(pairs) > 1 else ''})"
        )


def _print_hyperband(rows: list[dict[str, Any]]) -> None:
    """scaleml's Hyperband against dask-ml's: the same models must give the same best."""
    theirs = next((r for r in rows if r["name"] == DASKML_HYPERBAND), None)
    ours = next((r for r in rows if r["name"] == "scaleml HyperbandSearchCV(max_iter=81)"), None)
    if theirs and ours:
        same = all(ours[k] == theirs[k] for k in ("best_score", "calls", "models"))
        print(
            f"\nHyperband (scaleml / dask-ml): best score {ours['best_score']:.5f} / "
            f"{theirs['best_score']:.5f}, calls {ours['calls']:,} / {theirs['calls']:,}, models "
            f"{ours['models']} / {theirs['models']} ({'the same' if same else 'DIFFERENT'}); "
            f"wall {ours['wall_s']:.1f} / {theirs['wall_s']:.1f} s = "
            f"{ours['wall_s'] / theirs['wall_s']:.2f}x"
        )


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=5_000_000, help="rows (default 5,000,000)")
    parser.add_argument("--skip-daskml", action="store_true", help="no dask-ml reference")
    parser.add_argument("--skip-sklearn", action="store_true", help="no scikit-learn reference")
    parser.add_argument("--skip-hyperband", action="store_true", help="no Hyperband row")
    parser.add_argument("--skip-tracked", action="store_true", help="no tracked-search row")
    parser.add_argument(
        "--skip-connect",
        action="store_true",
        help="no row on the cluster scaleml.cluster.connect() starts (its worker malloc settings)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds of dask-ml then scaleml IncrementalSearchCV, back to back; the target is "
        "judged on the median ratio (the other rows run in the first round only)",
    )
    parser.add_argument("--out", help="also write the rows to this JSON file")
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="only pairs of a Hyperband search with scaleml's dashboard pages off and on "
        "(--repeats pairs, --n-samples rows)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
