import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from distributed import Client
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, SGDClassifier, SGDRegressor
from sklearn.naive_bayes import MultinomialNB
from sklearn.neural_network import MLPClassifier

from scaleml.data import Dataset
from scaleml.errors import TrainingError
from scaleml.train import train_incremental


def _plain_loop(estimator, dataset: Dataset, orders: list[list[int]], classes=None):
    """The reference: partial_fit over blocks read in this process, in the given orders."""
    model = clone(estimator)
    for order in orders:
        for index in order:
            x, y = dataset.read_xy(index)
            if classes is None:
                model.partial_fit(x, y)
            else:
                model.partial_fit(x, y, classes=classes)
    return model


def test_model_equals_a_plain_partial_fit_loop_over_the_same_blocks(
    client: Client, classification: Dataset
) -> None:
    estimator = SGDClassifier(alpha=1e-3, random_state=5)
    result = train_incremental(estimator, classification, epochs=3, random_state=11, client=client)
    orders = [report.block_order for report in result.history]
    assert all(sorted(order) == classification.train_blocks for order in orders)
    assert orders[0] != orders[1]  # shuffled anew each epoch
    reference = _plain_loop(estimator, classification, orders, classes=[0, 1])
    np.testing.assert_array_equal(result.estimator.coef_, reference.coef_)
    np.testing.assert_array_equal(result.estimator.intercept_, reference.intercept_)
    assert result.partial_fit_calls == 3 * len(classification.train_blocks)
    assert result.rows_trained == 3 * 8 * 6_000
    assert result.classes == [0, 1]


def test_fixed_order_and_seed_reproduce_the_same_model(
    client: Client, classification: Dataset
) -> None:
    runs = [
        train_incremental(
            MLPClassifier(hidden_layer_sizes=(8,), random_state=0),
            classification,
            epochs=2,
            shuffle=False,
            client=client,
        )
        for _ in range(2)
    ]
    assert runs[0].history[0].block_order == classification.train_blocks
    for a, b in zip(runs[0].estimator.coefs_, runs[1].estimator.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    reference = _plain_loop(
        MLPClassifier(hidden_layer_sizes=(8,), random_state=0),
        classification,
        [classification.train_blocks] * 2,
        classes=[0, 1],
    )
    np.testing.assert_array_equal(runs[0].estimator.coefs_[0], reference.coefs_[0])


def test_validation_scores_each_epoch_clearly_above_chance(
    client: Client, classification: Dataset
) -> None:
    seen = []
    result = train_incremental(
        SGDClassifier(loss="log_loss", random_state=0),
        classification,
        epochs=2,
        client=client,
        on_epoch_end=seen.append,
    )
    assert [r.epoch for r in seen] == [1, 2]
    assert set(seen[0].scores) == {"accuracy", "log_loss"}
    assert result.final_scores["accuracy"] > 0.7
    # Metrics are computed over every validation row: compare with a local computation.
    x = np.vstack([classification.read_xy(i)[0] for i in classification.validation_blocks])
    y = np.concatenate([classification.read_xy(i)[1] for i in classification.validation_blocks])
    assert result.final_scores["accuracy"] == pytest.approx(result.estimator.score(x, y))
    assert result.scoring == "accuracy"
    assert result.best_score == max(r.scores["accuracy"] for r in seen)


def test_regressor_is_scored_with_r2(client: Client, regression_path: Path) -> None:
    dataset = Dataset(str(regression_path), target="target")
    result = train_incremental(SGDRegressor(random_state=0), dataset, epochs=2, client=client)
    assert set(result.final_scores) == {"r2", "mse", "rmse", "mae"}
    # As good as the least-squares optimum fitted on the validation rows themselves.
    x = np.vstack([dataset.read_xy(i)[0] for i in dataset.validation_blocks])
    y = np.concatenate([dataset.read_xy(i)[1] for i in dataset.validation_blocks])
    best_possible = LinearRegression().fit(x, y).score(x, y)
    assert result.final_scores["r2"] > best_possible - 0.01
    assert result.final_scores["r2"] == pytest.approx(result.estimator.score(x, y))
    assert result.scoring == "r2"


def test_early_stopping_ends_when_the_score_stops_improving(
    client: Client, classification: Dataset
) -> None:
    # No epoch can beat the first by a tolerance of 1.0 accuracy: stop after 1 + patience.
    result = train_incremental(
        SGDClassifier(random_state=0), classification, epochs=10, patience=2, tol=1.0, client=client
    )
    assert len(result.history) == 3
    assert result.stopped_early
    assert result.best_epoch == 1
    assert result.partial_fit_calls == 3 * len(classification.train_blocks)


def test_progress_is_reported_block_by_block(client: Client, classification: Dataset) -> None:
    progress: list[tuple[int, int]] = []
    train_incremental(
        SGDClassifier(),
        classification,
        epochs=2,
        client=client,
        on_block_done=lambda *p: progress.append(p),
    )
    total = 2 * classification.n_blocks
    assert progress == [(done, total) for done in range(1, total + 1)]


def test_the_callers_estimator_is_left_unfitted(client: Client, classification: Dataset) -> None:
    estimator = SGDClassifier()
    result = train_incremental(estimator, classification, client=client)
    assert not hasattr(estimator, "coef_")
    assert hasattr(result.estimator, "coef_")
    assert list(result.estimator.feature_names_in_) == classification.features


def test_worker_errors_reach_the_caller_and_nothing_is_left_running(
    client: Client, classification: Dataset
) -> None:
    # MultinomialNB refuses the negative features of the synthetic data, on the worker.
    with pytest.raises(ValueError, match="Negative values"):
        train_incremental(MultinomialNB(), classification, client=client)
    client.sync(client.scheduler.processing)  # scheduler reachable
    assert not any(client.processing().values())


@pytest.mark.parametrize(
    ("estimator", "options", "message"),
    [
        (SGDClassifier().set_params(), {"epochs": 0}, "epochs must be an integer >= 1"),
        (SGDClassifier(), {"prefetch": 0}, "prefetch must be"),
        (SGDClassifier(), {"blocks_per_task": 0}, "blocks_per_task must be"),
        (SGDClassifier(), {"scoring": "r2"}, r"scoring must be one of \['accuracy'\]"),
        (SGDClassifier(), {"patience": 0}, "patience must be"),
        (SGDClassifier(), {"tol": -1}, "tol must be >= 0"),
    ],
)
def test_bad_arguments_fail_before_any_work(
    classification: Dataset, estimator, options: dict, message: str
) -> None:
    with pytest.raises(TrainingError, match=message):
        train_incremental(estimator, classification, **options)


def test_estimators_without_partial_fit_are_refused(classification: Dataset) -> None:
    from sklearn.ensemble import RandomForestClassifier

    with pytest.raises(TrainingError, match="has no partial_fit"):
        train_incremental(RandomForestClassifier(), classification)


def test_patience_needs_validation_blocks(classification_path: Path) -> None:
    dataset = Dataset(str(classification_path), target="target", validation_fraction=0)
    with pytest.raises(TrainingError, match="patience needs validation blocks"):
        train_incremental(SGDClassifier(), dataset, patience=2)


def test_without_a_client_the_error_says_how_to_get_one(classification_path: Path) -> None:
    # A fresh interpreter: this test session's own client would otherwise be the default.
    code = (
        "from sklearn.linear_model import SGDClassifier\n"
        "from scaleml.data import Dataset\n"
        "from scaleml.train import train_incremental\n"
        f"train_incremental(SGDClassifier(), Dataset({str(classification_path)!r}, 'target'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "TrainingError: no Dask client: pass client=, or open one with" in done.stderr


@pytest.mark.parametrize(("blocks_per_task", "prefetch"), [(1, 2), (3, 1), (3, 3), (100, 2)])
def test_any_run_length_and_prefetch_give_the_plain_loops_model(
    client: Client, classification: Dataset, blocks_per_task: int, prefetch: int
) -> None:
    estimator = SGDClassifier(loss="log_loss", random_state=3)
    result = train_incremental(
        estimator,
        classification,
        epochs=2,
        random_state=4,
        client=client,
        blocks_per_task=blocks_per_task,
        prefetch=prefetch,
    )
    orders = [report.block_order for report in result.history]
    reference = _plain_loop(estimator, classification, orders, classes=[0, 1])
    np.testing.assert_array_equal(result.estimator.coef_, reference.coef_)
    np.testing.assert_array_equal(result.estimator.intercept_, reference.intercept_)
    assert result.partial_fit_calls == 2 * len(classification.train_blocks)


def test_a_callback_that_raises_cancels_what_is_outstanding(
    client: Client, classification: Dataset
) -> None:
    class Stop(Exception):
        pass

    def stop_after_first(done: int, total: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        # One block per task: later tasks are queued when the first one reports.
        train_incremental(
            SGDClassifier(),
            classification,
            epochs=3,
            client=client,
            blocks_per_task=1,
            on_block_done=stop_after_first,
        )
    # No task of that training waits or runs: the queued ones were cancelled. (A cancel that
    # overtakes its task's submission is retried by the scheduler a moment later.)
    deadline = time.monotonic() + 10
    while pending := [
        state
        for state in client.run_on_scheduler(_fit_task_states)
        if state in ("waiting", "queued", "processing", "no-worker")
    ]:
        assert time.monotonic() < deadline, pending
        time.sleep(0.05)
    assert not any(client.processing().values())


def _fit_task_states(dask_scheduler) -> list[str]:
    return [ts.state for key, ts in dask_scheduler.tasks.items() if "fit_blocks-" in str(key)]
