"""Training on data five times larger than a worker's memory limit, on a real LocalCluster."""

import os
from pathlib import Path

import pytest
from sklearn.linear_model import SGDClassifier

from scaleml.cluster import connect
from scaleml.data import Dataset, write_synthetic
from scaleml.train import train_incremental
from tests.memory import capped_settings, peak_rss_bytes

WORKER_MEMORY_LIMIT = 450 * 2**20
FEATURES = 20
BLOCK_ROWS = 150_000
BLOCKS = 96  # 14.4 million rows x 21 float64/int64 columns = 2.42 GB in memory


@pytest.mark.slow
def test_training_streams_a_dataset_five_times_the_worker_memory_limit(tmp_path: Path) -> None:
    path = write_synthetic(
        tmp_path / "big", rows=BLOCKS * BLOCK_ROWS, features=FEATURES, block_rows=BLOCK_ROWS
    )
    dataset = Dataset(str(path), target="target", validation_fraction=0.05)
    in_memory_bytes = dataset.n_rows * (FEATURES + 1) * 8
    assert in_memory_bytes > 5 * WORKER_MEMORY_LIMIT
    client_peak_before = peak_rss_bytes()

    # The cluster scaleml deploys (its worker malloc settings included), with a low limit.
    settings = capped_settings(WORKER_MEMORY_LIMIT, tmp_path)
    with connect(settings, announce=lambda line: None) as client:
        workers_before = client.run(os.getpid)
        result = train_incremental(
            SGDClassifier(alpha=1e-4, random_state=0), dataset, epochs=1, client=client
        )
        workers_after = client.run(os.getpid)
        worker_peaks = client.run(peak_rss_bytes)

    # No worker was restarted: the same addresses, the same processes.
    assert workers_after == workers_before
    # Each worker's peak stayed below the limit (the nanny kills a worker at 95% of it).
    assert max(worker_peaks.values()) < WORKER_MEMORY_LIMIT, worker_peaks
    # The client never held the data either.
    assert peak_rss_bytes() - client_peak_before < in_memory_bytes / 10
    assert result.rows_trained == len(dataset.train_blocks) * BLOCK_ROWS
    assert result.final_scores["accuracy"] > 0.7  # chance is 0.5
