"""Fixtures of the search tests: small classification data as dask collections.

The cluster is the session's two-worker ``LocalCluster`` from ``tests/conftest.py``
(``client``); the worker-kill test starts its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from dask_ml.datasets import make_classification

PARAMS: dict[str, Any] = {
    "alpha": np.logspace(-6, 1, num=50),
    "l1_ratio": np.linspace(0, 1, num=20),
    "average": [True, False],
}


@pytest.fixture(scope="session")
def small_xy() -> tuple[Any, Any]:
    """16,000 rows x 10 features in 8 blocks of 2,000: enough for scores to differ."""
    return make_classification(
        n_samples=16_000, n_features=10, n_informative=5, chunks=2_000, random_state=3
    )
