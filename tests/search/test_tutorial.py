"""The dask-ml tutorial program, with only its import line changed (and fewer rows)."""

from __future__ import annotations

import pytest
from distributed import Client


@pytest.mark.slow
def test_dask_ml_tutorial_runs_with_the_import_changed(client: Client) -> None:
    # --- the tutorial, as written, except the import and n_samples / chunks ---
    import numpy as np
    from dask_ml.datasets import make_classification
    from sklearn.linear_model import SGDClassifier

    from scaleml.search import IncrementalSearchCV

    X, y = make_classification(n_samples=200_000, n_features=20, chunks=20_000, random_state=0)
    model = SGDClassifier(tol=1e-3, penalty="elasticnet", random_state=0)
    params = {
        "alpha": np.logspace(-2, 1, num=1000),
        "l1_ratio": np.linspace(0, 1, num=1000),
        "average": [True, False],
    }
    search = IncrementalSearchCV(model, params, random_state=0)
    with pytest.warns(FutureWarning, match="decay_rate"):  # dask-ml warns the same
        search.fit(X, y, classes=[0, 1])
    # --- end of the tutorial ---

    assert len(search.cv_results_["model_id"]) == 10
    assert int(search.cv_results_["partial_fit_calls"].sum()) == 1_000
    assert len(search.history_) == 1_000
    assert search.best_score_ == search.cv_results_["test_score"].max()
    assert 0.55 < search.best_score_ < 1.0
    assert search.best_score_ > search.cv_results_["test_score"].min()
    assert search.predict(X[:1_000]).compute().shape == (1_000,)
