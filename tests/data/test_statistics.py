"""Per-column statistics, computed block by block (here and on the cluster), equal pandas' on
the same rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from scaleml.data import Dataset


@pytest.fixture(scope="module")
def mixed_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three Parquet files of 3 row groups each: ints with nulls, floats with NaN, booleans,
    a float, and a text target."""
    path = tmp_path_factory.mktemp("stats") / "mixed"
    path.mkdir()
    rng = np.random.default_rng(5)
    for index in range(3):
        rows = 900
        frame = pd.DataFrame(
            {
                "count": pd.array(rng.integers(-50, 300, rows), dtype="Int64"),
                "level": rng.integers(0, 7, rows).astype(np.int32),
                "size": rng.standard_normal(rows) * 10 + index,
                "flag": rng.random(rows) < 0.3,
                "city": rng.choice(["a", "b", "c"], rows),
                "y": rng.random(rows),
            }
        )
        frame.loc[rng.choice(rows, 40, replace=False), "count"] = pd.NA
        frame.loc[rng.choice(rows, 25, replace=False), "size"] = np.nan
        frame.to_parquet(path / f"part-{index}.parquet", row_group_size=300)
    return path


def _expected(path: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(path.glob("*.parquet"))])


def _check(statistics: dict, frame: pd.DataFrame) -> None:
    assert set(statistics) == set(frame.columns)
    for name in frame.columns:
        column = frame[name]
        stats = statistics[name]
        assert stats["count"] == column.count(), name
        assert stats["nulls"] == column.isna().sum(), name
        if name == "city":
            assert set(stats) == {"dtype", "count", "nulls"}  # text values are never shown
            continue
        numbers = column.dropna().astype("float64")
        assert stats["min"] == pytest.approx(numbers.min()), name
        assert stats["max"] == pytest.approx(numbers.max()), name
        assert stats["mean"] == pytest.approx(numbers.mean(), rel=1e-12), name
        if name in ("count", "level"):
            assert stats["distinct"] == column.nunique(), name
        else:
            assert "distinct" not in stats, name


def test_statistics_here_equal_pandas(mixed_path: Path) -> None:
    dataset = Dataset(str(mixed_path), target="city", max_block_rows=300)
    assert dataset.n_blocks == 9
    seen: list[tuple[int, int]] = []
    statistics = dataset.statistics(on_block_done=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (9, 9)
    _check({k: v.to_dict() for k, v in statistics.items()}, _expected(mixed_path))


def test_statistics_on_the_cluster_equal_pandas(client: Client, mixed_path: Path) -> None:
    dataset = Dataset(str(mixed_path), target="city", max_block_rows=300)
    statistics = dataset.statistics(client)
    _check({k: v.to_dict() for k, v in statistics.items()}, _expected(mixed_path))


@pytest.mark.slow
def test_the_describe_command_prints_statistics(
    cluster: LocalCluster, mixed_path: Path, tmp_path: Path
) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "SCALEML_SCHEDULER": cluster.scheduler_address,
    }
    command = [str(Path(sys.executable).parent / "scaleml"), "data", "describe", str(mixed_path)]
    done = subprocess.run(
        [*command, "--target", "city", "--stats"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    _check(json.loads(done.stdout)["statistics"], _expected(mixed_path))
