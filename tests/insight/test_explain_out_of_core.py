"""Global SHAP importances over a dataset several times a worker's memory limit, on a real
LocalCluster: the workers' peak memory stays below the limit, the client never holds the
data, and the global mean |SHAP| equals the same statistic streamed block by block in one
process (exact explainers: XGBoost's TreeSHAP and linear SHAP)."""

from __future__ import annotations

import os
from pathlib import Path

import dask
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost
from sklearn.linear_model import SGDClassifier

from scaleml.cluster import connect
from scaleml.data import Dataset
from scaleml.insight import explain
from tests.memory import capped_settings, peak_rss_bytes

WORKER_MEMORY_LIMIT = 600 * 2**20
FEATURES = 400  # wide rows: many bytes for few rows (TreeSHAP's cost is per row)
BLOCK_ROWS = 8_000
BLOCKS = 74  # 592,000 rows x 401 float64/int64 columns = 1.9 GB in memory


def _write_blocks(path: Path) -> Path:
    """``BLOCKS`` Parquet files of ``BLOCK_ROWS`` rows: normal features, a binary target
    driven by the first five (uncompressed: writing is most of this test's time otherwise)."""
    path.mkdir()
    names = [f"f{i:03d}" for i in range(FEATURES)]
    for index in range(BLOCKS):
        rng = np.random.default_rng(index)
        x = rng.standard_normal((BLOCK_ROWS, FEATURES))
        y = (x[:, :5].sum(axis=1) + rng.standard_normal(BLOCK_ROWS) > 0).astype(np.int64)
        table = pa.table([*x.T, y], names=[*names, "target"])
        pq.write_table(table, path / f"part-{index:03d}.parquet", compression="none")
    return path


@pytest.mark.slow
def test_global_importances_of_a_dataset_three_times_the_worker_memory(tmp_path: Path) -> None:
    dataset = Dataset(str(_write_blocks(tmp_path / "big")), target="target")
    in_memory_bytes = dataset.n_rows * (FEATURES + 1) * 8
    assert in_memory_bytes > 3 * WORKER_MEMORY_LIMIT
    first = dataset.read_block(0)
    x, y = first[dataset.features], first["target"]
    booster = xgboost.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=2).fit(x, y)
    linear = SGDClassifier(random_state=0).fit(x, y)
    client_peak_before = peak_rss_bytes()

    settings = capped_settings(WORKER_MEMORY_LIMIT, tmp_path)
    # A worker over the limit fails the test instead of pausing it for good: no pause, the
    # nanny's kill at 95% of the limit (a new worker process, or KilledWorker).
    with (
        dask.config.set({"distributed.worker.memory.pause": False}),
        connect(settings, announce=lambda line: None) as client,
    ):
        workers_before = client.run(os.getpid)
        trees = explain(booster, dataset, sample=200, client=client)
        lines = explain(linear, dataset, sample=200, client=client)
        workers_after = client.run(os.getpid)
        worker_peaks = client.run(peak_rss_bytes)
    client_growth = peak_rss_bytes() - client_peak_before

    assert workers_after == workers_before  # no worker was restarted
    assert max(worker_peaks.values()) < WORKER_MEMORY_LIMIT, worker_peaks
    assert client_growth < in_memory_bytes / 10, client_growth
    assert trees.n_rows == lines.n_rows == dataset.n_rows
    assert (trees.explainer, lines.explainer) == ("xgboost", "linear")
    assert len(trees.sample_values) == len(lines.sample_values) == 200

    # The same statistics, streamed block by block in this process (one pass): XGBoost's
    # TreeSHAP, and linear SHAP against the background mean, itself checked against the
    # training blocks' mean.
    native = booster.get_booster()
    mean = lines.background.mean
    trees_abs, lines_abs = np.zeros(FEATURES), np.zeros(FEATURES)
    train_sum, train_rows = np.zeros(FEATURES), 0
    for index in range(dataset.n_blocks):
        block = dataset.read_block(index)[dataset.features]
        raw = native.predict(xgboost.DMatrix(block, nthread=2), pred_contribs=True)
        trees_abs += np.abs(np.asarray(raw, dtype=np.float64)[:, :-1]).sum(axis=0)
        values = block.to_numpy(dtype=np.float64)
        lines_abs += np.abs((values - mean) * linear.coef_[0]).sum(axis=0)
        if index in dataset.train_blocks:
            train_sum, train_rows = train_sum + values.sum(axis=0), train_rows + len(values)
    np.testing.assert_allclose(mean, train_sum / train_rows, rtol=1e-12)
    np.testing.assert_allclose(trees.mean_abs[0], trees_abs / dataset.n_rows, rtol=0, atol=1e-6)
    np.testing.assert_allclose(lines.mean_abs[0], lines_abs / dataset.n_rows, rtol=0, atol=1e-6)
