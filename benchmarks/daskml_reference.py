"""Record dask-ml 2025.1's outputs for small searches, as the fixture the conformance tests
compare scaleml's searches with (``tests/search/daskml_reference.json``).

Runs in dask-ml's own environment (``benchmarks/out/daskml-venv``, which ``benchmarks/search.py``
creates: dask/distributed 2025.2.0, dask-ml 2025.1.0; dask-ml's adaptive searches fail on
later Dask), not in scaleml's. Regenerate with::

    benchmarks/out/daskml-venv/bin/python benchmarks/daskml_reference.py

What is recorded per search (timings excluded, they differ from run to run): ``cv_results_``
keys, dtypes and values, the ``history_`` and ``model_history_`` records' key sets and their
values sorted by model and calls, ``best_score_``, ``best_params_``, the best model's id,
``metadata`` / ``metadata_`` where the search has them, and the logger names and messages of
a ``verbose`` fit.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "search" / "daskml_reference.json"
TIMING = ("partial_fit_time", "score_time", "elapsed_wall_time")
COMMAND = "benchmarks/out/daskml-venv/bin/python benchmarks/daskml_reference.py"


def params() -> dict[str, Any]:
    """The search space of ``tests/search/conftest.py``."""
    return {
        "alpha": np.logspace(-6, 1, num=50),
        "l1_ratio": np.linspace(0, 1, num=20),
        "average": [True, False],
    }


def searches(model: Any, module: Any) -> dict[str, Any]:
    """The recorded searches, built from ``module`` (``dask_ml.model_selection`` here,
    ``scaleml.search`` in the tests)."""
    HyperbandSearchCV = module.HyperbandSearchCV
    IncrementalSearchCV = module.IncrementalSearchCV
    SuccessiveHalvingSearchCV = module.SuccessiveHalvingSearchCV
    return {
        "hyperband": HyperbandSearchCV(model, params(), max_iter=9, random_state=0),
        "hyperband_27": HyperbandSearchCV(
            model, params(), max_iter=27, aggressiveness=4, random_state=7
        ),
        "incremental": IncrementalSearchCV(
            model, params(), n_initial_parameters=4, max_iter=5, random_state=0, decay_rate=None
        ),
        "successive_halving": SuccessiveHalvingSearchCV(
            model, params(), n_initial_parameters=6, n_initial_iter=2, random_state=1
        ),
    }


def plain(value: Any) -> Any:
    """JSON-ready: NumPy scalars and arrays to Python values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def record(search: Any, logged: list[tuple[str, str]]) -> dict[str, Any]:
    results = search.cv_results_
    history = [{k: v for k, v in r.items() if k not in TIMING} for r in search.history_]
    history.sort(key=lambda r: (str(r["model_id"]), r["partial_fit_calls"]))
    out = {
        "cv_results_keys": sorted(results),
        "cv_results_dtypes": {k: str(np.asarray(v).dtype) for k, v in results.items()},
        "cv_results": {k: plain(v) for k, v in results.items() if not k.endswith("_time")},
        "history_keys": sorted({k for r in search.history_ for k in r}),
        "model_history_keys": sorted(
            {k for rs in search.model_history_.values() for r in rs for k in r}
        ),
        "history": plain(history),
        "best_score": float(search.best_score_),
        "best_params": plain(search.best_params_),
        "best_model_id": plain(results["model_id"][search.best_index_]),
        "logged": logged,
    }
    if hasattr(search, "metadata_"):
        out["metadata"] = plain(search.metadata)
        out["metadata_"] = plain(search.metadata_)
    return out


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.getMessage()))


def main() -> int:
    import dask_ml
    import dask_ml.model_selection
    from dask_ml.datasets import make_classification
    from distributed import Client, LocalCluster
    from sklearn.linear_model import SGDClassifier

    model = SGDClassifier(tol=1e-3, penalty="elasticnet", random_state=0)
    out: dict[str, Any] = {
        "generated_by": COMMAND,
        "dask_ml": dask_ml.__version__,
        "workload": "make_classification(n_samples=16_000, n_features=10, n_informative=5, "
        "chunks=2_000, random_state=3); SGDClassifier(tol=1e-3, penalty='elasticnet', "
        "random_state=0); tests/search/conftest.py's PARAMS",
    }
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster),
    ):
        X, y = make_classification(
            n_samples=16_000, n_features=10, n_informative=5, chunks=2_000, random_state=3
        )
        for name, search in searches(model, dask_ml.model_selection).items():
            capture = Capture()
            root = logging.getLogger("dask_ml")
            root.addHandler(capture)
            search.set_params(verbose=True)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    search.fit(X, y, classes=[0, 1])
            finally:
                root.removeHandler(capture)
            out[name] = record(search, capture.records)
            print(name, out[name]["best_score"], flush=True)
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
