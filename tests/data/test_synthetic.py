import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from scaleml.data import Dataset, write_synthetic
from scaleml.errors import DatasetError


def test_writes_the_rows_in_blocks_of_parquet(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "d", rows=25_000, features=5, block_rows=10_000)
    files = sorted(path.glob("*.parquet"))
    assert [pq.read_metadata(f).num_rows for f in files] == [10_000, 10_000, 5_000]
    dataset = Dataset(str(path), target="target")
    assert dataset.features == ["f000", "f001", "f002", "f003", "f004"]
    assert dataset.n_rows == 25_000
    # No staging directory is left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_same_random_state_same_data_other_state_other_data(tmp_path: Path) -> None:
    a = write_synthetic(tmp_path / "a", rows=3_000, features=4, block_rows=1_000, random_state=1)
    b = write_synthetic(tmp_path / "b", rows=3_000, features=4, block_rows=1_000, random_state=1)
    c = write_synthetic(tmp_path / "c", rows=3_000, features=4, block_rows=1_000, random_state=2)
    read = lambda p: pq.read_table(p).to_pandas()  # noqa: E731
    assert read(a).equals(read(b))
    assert not read(a).equals(read(c))


def test_classification_is_learnable_but_not_separable(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    path = write_synthetic(tmp_path / "d", rows=20_000, features=10, n_classes=3)
    frame = pq.read_table(path).to_pandas()
    assert set(frame["target"]) == {0, 1, 2}
    x, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    accuracy = (
        LogisticRegression(max_iter=500).fit(x[:15_000], y[:15_000]).score(x[15_000:], y[15_000:])
    )
    assert 0.55 < accuracy < 0.99


def test_regression_target_follows_a_linear_model(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    path = write_synthetic(tmp_path / "d", rows=10_000, features=6, task="regression", noise=0.1)
    frame = pq.read_table(path).to_pandas()
    x, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    assert LinearRegression().fit(x, y).score(x, y) > 0.95


def test_existing_path_is_kept_unless_overwrite(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "d", rows=100, features=2)
    with pytest.raises(DatasetError, match="already exists"):
        write_synthetic(path, rows=100, features=2)
    write_synthetic(path, rows=300, features=2, overwrite=True)
    assert Dataset(str(path), target="target").n_rows == 300


def test_failure_midway_leaves_nothing_half_written(tmp_path: Path) -> None:
    def explode(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_synthetic(tmp_path / "d", rows=5_000, features=2, block_rows=1_000, on_block=explode)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rows": 0}, "rows must be >= 1"),
        ({"rows": 10, "features": 0}, "features must be >= 1"),
        ({"rows": 10, "n_classes": 1}, "n_classes must be >= 2"),
        ({"rows": 10, "task": "ranking"}, "task must be"),
        ({"rows": 10, "dtype": "int8"}, "dtype must be"),
    ],
)
def test_bad_arguments_are_dataset_errors(tmp_path: Path, arguments: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        write_synthetic(tmp_path / "d", **arguments)


def test_memory_stays_at_one_block_whatever_the_size(tmp_path: Path) -> None:
    block_rows, features = 20_000, 10
    block_bytes = block_rows * (features + 1) * 8
    tracemalloc.start()
    write_synthetic(tmp_path / "d", rows=40 * block_rows, features=features, block_rows=block_rows)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # 40 blocks (70 MB) written; the peak stays within a few blocks' worth of buffers.
    assert peak < 6 * block_bytes, (peak, block_bytes)
    assert np.isclose(Dataset(str(tmp_path / "d"), target="target").n_rows, 40 * block_rows)
