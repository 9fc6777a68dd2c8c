"""``scaleml validate`` on a dataset 3.6 times a worker's memory limit, through the CLI against
a running cluster of small workers: it names the one shifted feature, and no worker's peak
memory reaches its limit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import SGDClassifier

from scaleml.cli import main
from scaleml.cluster import connect
from scaleml.config import Settings
from scaleml.data import Dataset, write_synthetic
from scaleml.monitor import contract
from scaleml.tracking import Tracker, train_and_log
from tests.memory import capped_settings, peak_rss_bytes

WORKER_MEMORY_LIMIT = 600 * 2**20
FEATURES = 16
BLOCK_ROWS = 125_000
BLOCKS = 140  # 17.5 million rows x 16 float64 columns = 2.24 GB in memory, 3.6x the limit
SHIFTED = "f005"
DISTINCT = 6


def _write_shifted(path: Path, shift: float) -> int:
    """Standard normal features (the training data's distribution) with ``SHIFTED`` moved by
    ``shift``: ``DISTINCT`` blocks written, the others hard links to them (writing 1.7 GB of
    Parquet would take most of the test's time; every block is still read); returns the
    rows."""
    path.mkdir()
    names = [f"f{i:03d}" for i in range(FEATURES)]
    for index in range(BLOCKS):
        file = path / f"part-{index:05d}.parquet"
        if index >= DISTINCT:
            os.link(path / f"part-{index % DISTINCT:05d}.parquet", file)
            continue
        values = np.random.default_rng(1000 + index).standard_normal((BLOCK_ROWS, FEATURES))
        values[:, names.index(SHIFTED)] += shift
        table = pa.table({name: values[:, i] for i, name in enumerate(names)})
        pq.write_table(table, file, compression="none")
    return BLOCKS * BLOCK_ROWS


@pytest.mark.slow
def test_validate_finds_the_shifted_feature_in_data_several_times_a_worker_limit(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    small = write_synthetic(tmp_path / "train", rows=40_000, features=FEATURES, block_rows=5_000)
    cluster_settings = capped_settings(WORKER_MEMORY_LIMIT, tmp_path)
    with connect(cluster_settings, announce=lambda line: None) as client:
        trained = train_and_log(
            SGDClassifier(random_state=0),
            Dataset(str(small), target="target"),
            tracker=Tracker(settings),
            epochs=1,
            client=client,
        )
        held = contract(trained.model_uri, settings=settings)
        rows = _write_shifted(tmp_path / "shifted", held.features[SHIFTED].std)
        assert rows * FEATURES * 8 > 3.5 * WORKER_MEMORY_LIMIT

        monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", str(settings.mlflow_tracking_uri))
        monkeypatch.setenv("SCALEML_SCHEDULER", client.scheduler.address)
        workers_before = client.run(os.getpid)
        client_peak_before = peak_rss_bytes()
        code = main(["validate", "--model", trained.model_uri,
                     "--data", str(tmp_path / "shifted"), "--json"])  # fmt: skip
        client_growth = peak_rss_bytes() - client_peak_before
        workers_after = client.run(os.getpid)
        worker_peaks = client.run(peak_rss_bytes)

    out = capsys.readouterr().out
    assert code == 0, out
    found = json.loads(out[: out.rindex("}") + 1])
    assert found["rows"] == rows
    assert found["drifted"] == [SHIFTED]
    assert found["features"][SHIFTED]["status"] == "significant"
    # No worker was restarted, and each one's peak stayed below the limit.
    assert workers_after == workers_before
    assert max(worker_peaks.values()) < WORKER_MEMORY_LIMIT, worker_peaks
    # The client held merged profiles only, never the data.
    assert client_growth < rows * FEATURES * 8 / 10
