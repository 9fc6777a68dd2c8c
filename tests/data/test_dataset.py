from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scaleml.data import DaskPartitionBlock, Dataset, ParquetBlock, read_xy
from scaleml.errors import DatasetError


def test_parquet_directory_is_read_lazily_in_blocks(classification_path: Path) -> None:
    dataset = Dataset(str(classification_path), target="target")
    assert dataset.format == "parquet"
    assert dataset.n_blocks == 10
    assert all(isinstance(block, ParquetBlock) for block in dataset.blocks)
    assert dataset.features == [f"f{i:03d}" for i in range(8)]
    assert dataset.schema["target"] == "int64"
    assert dataset.schema["f000"] == "float64"
    assert dataset.n_rows == 60_000
    frame = dataset.to_dask()
    assert list(frame.columns) == [*dataset.features, "target"]
    assert frame.npartitions == 10


def test_glob_and_list_select_files(classification_path: Path) -> None:
    files = sorted(str(p) for p in classification_path.glob("*.parquet"))
    by_glob = Dataset(str(classification_path / "part-0000[0-3].parquet"), target="target")
    by_list = Dataset(files[:4], target="target")
    assert by_glob.paths == by_list.paths == files[:4]
    assert by_glob.n_rows == 24_000


def test_blocks_are_read_one_at_a_time_as_arrays(classification: Dataset) -> None:
    x, y = classification.read_xy(3)
    assert x.shape == (6_000, 8) and x.dtype == np.float64
    assert set(np.unique(y)) == {0, 1}
    frames = list(classification.iter_blocks([0, 1]))
    assert [len(f) for f in frames] == [6_000, 6_000]
    together = pd.concat(list(classification.iter_blocks()))
    assert len(together) == classification.n_rows


def test_split_by_block_is_deterministic_disjoint_and_complete(classification_path: Path) -> None:
    first = Dataset(str(classification_path), target="target", split_seed=3)
    again = Dataset(str(classification_path), target="target", split_seed=3)
    other = Dataset(str(classification_path), target="target", split_seed=4)
    assert first.validation_blocks == again.validation_blocks
    assert len(first.validation_blocks) == 2  # 20% of 10 blocks
    assert sorted(first.train_blocks + first.validation_blocks) == list(range(10))
    assert not set(first.train_blocks) & set(first.validation_blocks)
    assert first.validation_blocks != other.validation_blocks
    assert (
        Dataset(str(classification_path), target="target", validation_fraction=0).validation_blocks
        == []
    )


def test_large_parquet_files_are_cut_at_row_groups(tmp_path: Path) -> None:
    table = pa.table({"a": np.arange(1000.0), "target": np.arange(1000) % 2})
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=100)
    dataset = Dataset(str(tmp_path / "one.parquet"), target="target", max_block_rows=250)
    assert [block.n_rows for block in dataset.blocks] == [200, 200, 200, 200, 200]
    x, _ = dataset.read_xy(1)
    np.testing.assert_array_equal(x[:, 0], np.arange(200.0, 400.0))


def test_csv_files_are_read_through_dask_partitions(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": np.arange(5000.0), "b": np.ones(5000), "label": np.arange(5000) % 3})
    frame.to_csv(tmp_path / "data.csv", index=False)
    dataset = Dataset(str(tmp_path / "data.csv"), target="label", csv_blocksize=20_000)
    assert dataset.format == "csv"
    assert dataset.n_blocks > 1
    assert all(isinstance(block, DaskPartitionBlock) for block in dataset.blocks)
    assert dataset.n_rows == 5000
    rows = np.concatenate([dataset.read_xy(i)[0][:, 0] for i in range(dataset.n_blocks)])
    np.testing.assert_array_equal(rows, frame["a"].to_numpy())
    np.testing.assert_array_equal(dataset.classes(), [0, 1, 2])


def test_missing_path_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no such file or directory: .*nowhere"):
        Dataset(str(tmp_path / "nowhere"), target="target")
    with pytest.raises(DatasetError, match="no such file or directory"):
        Dataset(str(tmp_path / "*.parquet"), target="target")


def test_missing_target_names_the_column_and_the_columns(classification_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"target column 'label' is not in the dataset"):
        Dataset(str(classification_path), target="label")


def test_missing_feature_column_is_named(classification_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"\['nope'\] not in the dataset"):
        Dataset(str(classification_path), target="target", features=["f000", "nope"])


def test_non_numeric_feature_is_rejected_with_its_name(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1.0, 2.0], "city": ["a", "b"], "y": [0, 1]}).to_parquet(
        tmp_path / "t.parquet"
    )
    with pytest.raises(DatasetError, match=r"feature column 'city' is not numeric"):
        Dataset(str(tmp_path / "t.parquet"), target="y")
    # Leaving the column out with an explicit feature list works.
    assert Dataset(str(tmp_path / "t.parquet"), target="y", features=["x"]).features == ["x"]


def test_unknown_file_type_asks_for_a_format(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"\x00")
    with pytest.raises(DatasetError, match="format="):
        Dataset(str(tmp_path / "data.bin"), target="y")


def test_fingerprint_follows_the_files(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}).to_parquet(path)
    before = Dataset(str(path), target="y").fingerprint
    assert Dataset(str(path), target="y").fingerprint == before
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 1]}).to_parquet(path)
    assert Dataset(str(path), target="y").fingerprint != before


def test_description_holds_schema_rows_and_fingerprint(classification: Dataset) -> None:
    description = classification.describe()
    assert description["n_rows"] == 60_000
    assert description["n_blocks"] == 10
    assert description["schema"]["f007"] == "float64"
    assert len(description["fingerprint"]) == 64
    example = classification.input_example(3)
    assert list(example.columns) == classification.features and len(example) == 3


def test_local_files_are_read_natively_and_urls_through_fsspec(
    classification_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fsspec

    local = Dataset(str(classification_path), target="target")
    expected = local.read_xy(2)
    # A URL is read through fsspec (here its in-memory filesystem) and gives the same arrays.
    memory = fsspec.filesystem("memory")
    for path in sorted(classification_path.glob("*.parquet")):
        memory.pipe(f"/scaleml-test/{path.name}", path.read_bytes())
    try:
        remote = Dataset("memory://scaleml-test", target="target")
        assert remote.blocks[2].path.startswith("memory://")
        remote_xy = remote.read_xy(2)
    finally:
        memory.rm("/scaleml-test", recursive=True)

    # Local paths, plain or file://, never go through fsspec's Python file objects.
    def no_fsspec(*args, **kwargs):
        raise AssertionError(f"fsspec.open called for a local file: {args}")

    monkeypatch.setattr(fsspec, "open", no_fsspec)
    block = local.blocks[2]
    as_url = ParquetBlock(f"file://{block.path}", block.row_groups, block.n_rows)
    from_url = read_xy(as_url, local.features, local.target, local.feature_dtype)
    for xy in (remote_xy, local.read_xy(2), from_url):
        np.testing.assert_array_equal(xy[0], expected[0])
        np.testing.assert_array_equal(xy[1], expected[1])
