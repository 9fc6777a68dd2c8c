"""The incremental training gathers its contract in the pass that trains: no task reads the
blocks again, and the contract equals the one a separate pass computes on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distributed import Client, get_task_stream
from sklearn.linear_model import SGDClassifier

from scaleml.config import Settings
from scaleml.data import Dataset
from scaleml.monitor import compute_contract, contract
from scaleml.tracking import Tracker, train_and_log


def test_training_computes_its_contract_in_the_pass_that_trains(
    classification: Dataset, settings: Settings, client: Client
) -> None:
    settings = settings.model_copy(update={"contract_pass": "training"})
    with get_task_stream(client) as stream:
        trained = train_and_log(
            SGDClassifier(random_state=0),
            classification,
            tracker=Tracker(settings),
            epochs=2,
            classes=[0, 1],
            blocks_per_task=3,
            client=client,
        )
    prefixes = {task["key"].split("-", 1)[0].strip("('") for task in stream.data}
    # Fitting, scoring and the small getters of the profiles and rows: no contract pass.
    assert prefixes <= {"fit_blocks", "score_blocks", "score_and_profile_blocks", "profiles",
                        "rows"}, prefixes  # fmt: skip
    fits = [t for t in stream.data if "fit_blocks" in str(t["key"])]
    per_epoch = -(-len(classification.train_blocks) // 3)
    assert len(fits) == 2 * per_epoch  # each training block read once per epoch, no more

    gathered = contract(trained.model_uri, settings=settings)
    separate = compute_contract(classification, trained.result.estimator, client=client)
    assert gathered.rank_error <= separate.rank_error
    assert gathered.dataset == separate.dataset
    frame = pd.concat(list(classification.iter_blocks(classification.train_blocks)))
    for name, spec in separate.features.items():
        mine = gathered.features[name]
        assert (mine.kind, mine.dtype, mine.rows, mine.nulls) == (
            spec.kind, spec.dtype, spec.rows, spec.nulls,
        )  # fmt: skip
        assert (mine.minimum, mine.maximum) == (spec.minimum, spec.maximum)
        assert mine.mean == pytest.approx(spec.mean, rel=1e-9)
        assert mine.std == pytest.approx(spec.std, rel=1e-9)
        # Two sketches of the same rows, each within its bound of the true ranks.
        ordered = np.sort(frame[name].to_numpy())
        for probability, a, b in zip(
            np.linspace(0, 1, 101), mine.quantiles, spec.quantiles, strict=True
        ):
            for value, bound in ((a, gathered.rank_error), (b, separate.rank_error)):
                low = np.searchsorted(ordered, value, side="left") / len(ordered)
                high = np.searchsorted(ordered, value, side="right") / len(ordered)
                assert low - bound <= probability <= high + bound
        assert np.allclose(mine.proportions, spec.proportions, atol=2 * separate.rank_error)
    assert gathered.target is not None and separate.target is not None
    assert gathered.target.to_dict() == separate.target.to_dict()
    assert gathered.output is not None and separate.output is not None
    assert gathered.output.to_dict() == separate.output.to_dict()


def test_contract_pass_separate_reads_the_blocks_once_more_after_training(
    classification: Dataset, settings: Settings, client: Client
) -> None:
    separate = settings.model_copy(update={"contract_pass": "separate"})
    with get_task_stream(client) as stream:
        trained = train_and_log(
            SGDClassifier(random_state=0),
            classification,
            tracker=Tracker(separate),
            classes=[0, 1],
            client=client,
        )
    profiled = [t for t in stream.data if "_profile_block" in str(t["key"])]
    assert len(profiled) == classification.n_blocks  # training and validation blocks
    assert set(contract(trained.model_uri, settings=settings).features) == set(
        classification.features
    )


def test_without_validation_blocks_only_the_outputs_take_a_pass(
    classification_path, settings: Settings, client: Client
) -> None:
    settings = settings.model_copy(update={"contract_pass": "training"})
    dataset = Dataset(str(classification_path), target="target", validation_fraction=0.0)
    with get_task_stream(client) as stream:
        trained = train_and_log(
            SGDClassifier(random_state=0), dataset, tracker=Tracker(settings), client=client
        )
    profiled = [t for t in stream.data if "_profile_block" in str(t["key"])]
    assert len(profiled) == dataset.n_blocks  # the model's outputs, on every block
    found = contract(trained.model_uri, settings=settings)
    assert found.output is not None and found.output.rows == dataset.n_rows
    assert found.features["f000"].rows == dataset.n_rows
