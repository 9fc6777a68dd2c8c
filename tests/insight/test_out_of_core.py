"""``evaluate`` on data several times a worker's memory limit, on a real LocalCluster: the
workers' peak memory stays below the limit and only statistics reach the client."""

import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

from scaleml.cluster import connect
from scaleml.data import Dataset, write_synthetic
from scaleml.insight import evaluate
from tests.memory import capped_settings, peak_rss_bytes

WORKER_MEMORY_LIMIT = 500 * 2**20
FEATURES = 20
BLOCK_ROWS = 150_000
BLOCKS = 63  # 9.45 million rows x 21 float64/int64 columns = 1.59 GB, 3x the limit


@pytest.mark.slow
def test_evaluate_streams_a_dataset_three_times_the_worker_memory_limit(tmp_path: Path) -> None:
    path = write_synthetic(
        tmp_path / "big", rows=BLOCKS * BLOCK_ROWS, features=FEATURES, block_rows=BLOCK_ROWS
    )
    dataset = Dataset(str(path), target="target")
    in_memory_bytes = dataset.n_rows * (FEATURES + 1) * 8
    assert in_memory_bytes > 3 * WORKER_MEMORY_LIMIT
    first = dataset.read_block(0)
    model = SGDClassifier(loss="log_loss", random_state=0).fit(
        first[list(dataset.features)].to_numpy(), first["target"].to_numpy()
    )
    del first
    client_peak_before = peak_rss_bytes()

    settings = capped_settings(WORKER_MEMORY_LIMIT, tmp_path)
    with connect(settings, announce=lambda line: None) as client:
        workers_before = client.run(os.getpid)
        result = evaluate(model, dataset, split="all", client=client)
        workers_after = client.run(os.getpid)
        worker_peaks = client.run(peak_rss_bytes)

    assert workers_after == workers_before  # no worker was restarted
    assert max(worker_peaks.values()) < WORKER_MEMORY_LIMIT, worker_peaks
    assert peak_rss_bytes() - client_peak_before < in_memory_bytes / 10

    # Every row was counted once, and the curves were computed from the histograms.
    assert result.rows == dataset.n_rows == BLOCKS * BLOCK_ROWS
    assert int(result.confusion_matrix.sum()) == dataset.n_rows
    assert {"roc", "precision_recall", "calibration", "lift_gain"} <= set(result.curves)
    # The accuracy equals a count streamed block by block on the client.
    correct = 0
    for index in range(dataset.n_blocks):
        block = dataset.read_block(index)
        predicted = model.predict(block[list(dataset.features)].to_numpy())
        correct += int(np.sum(predicted == block["target"].to_numpy()))
    assert result.metrics["accuracy"] == pytest.approx(correct / dataset.n_rows, abs=1e-12)
    assert 0.0 < result.metrics["roc_auc"] <= 1.0
