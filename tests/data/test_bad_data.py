"""Bad data: typed errors naming the file (column, row), exit code 2 on the CLI, FAILED runs.

Corrupt files and columns missing from one file are found when the dataset is opened (every
Parquet footer is read then); NaN or infinity, and files spoiled after the dataset was opened,
are found where blocks are read, on the workers, and arrive as the same typed errors.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster
from mlflow import MlflowClient
from sklearn.linear_model import SGDClassifier

from scaleml.cli import main
from scaleml.data import (
    CorruptFileError,
    Dataset,
    MissingFilesystemError,
    NonFiniteValueError,
    SchemaMismatchError,
    write_synthetic,
)
from scaleml.errors import DatasetError
from scaleml.search import make_search
from scaleml.tracking import Tracker, search_and_log
from scaleml.train import train_boosting, train_incremental

ROOT = Path(__file__).resolve().parents[2]


def _data(tmp_path: Path, name: str = "d", rows: int = 2_000) -> Path:
    return write_synthetic(tmp_path / name, rows=rows, features=4, block_rows=500, random_state=1)


def _spoil(path: Path, column: str, rows: dict[int, float]) -> None:
    """Set ``column`` of the Parquet file at ``path`` to ``value`` at each of ``rows``."""
    table = pq.read_table(path)
    row_group_size = pq.ParquetFile(path).metadata.row_group(0).num_rows
    values = table.column(column).to_numpy().astype(np.float64)
    for row, value in rows.items():
        values[row] = value
    index = table.schema.get_field_index(column)
    spoiled = table.set_column(index, column, pa.array(values))
    pq.write_table(spoiled, path, row_group_size=row_group_size)


def _fails_with_one_line(argv: list[str], capsys: pytest.CaptureFixture, *expected: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for text in expected:
        assert text in err, err
    return err


def test_a_corrupt_parquet_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _data(tmp_path)
    bad = path / "part-00002.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file " * 8)
    with pytest.raises(CorruptFileError, match=r"part-00002\.parquet") as raised:
        Dataset(str(path), target="target")
    assert raised.value.path == str(bad)
    assert "this is not" not in str(raised.value)  # the file's contents are never echoed
    _fails_with_one_line(
        ["data", "describe", str(path), "--target", "target"], capsys, "part-00002.parquet"
    )
    train = ["train", "--data", str(path), "--target", "target", "--estimator", "SGDClassifier"]
    _fails_with_one_line(train, capsys, "part-00002.parquet", "not a readable Parquet file")


def test_a_column_missing_from_one_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = _data(tmp_path)
    table = pq.read_table(path / "part-00003.parquet")
    pq.write_table(table.drop_columns(["f001"]), path / "part-00003.parquet")
    with pytest.raises(SchemaMismatchError, match=r"no column\(s\) \['f001'\]"):
        Dataset(str(path), target="target")
    # Leaving the column out of the features makes the dataset usable again.
    assert Dataset(str(path), target="target", features=["f000", "f002", "f003"]).n_rows == 2_000
    _fails_with_one_line(
        ["data", "describe", str(path), "--target", "target"], capsys, "part-00003.parquet", "f001"
    )


@pytest.mark.parametrize(
    ("url", "package", "extra"),
    [
        ("s3://bucket/data/*.parquet", "s3fs", "s3"),
        ("gs://bucket/data", "gcsfs", "gcs"),
        ("abfs://container/data", "adlfs", "azure"),
    ],
)
def test_a_cloud_url_without_its_filesystem_says_which_extra_to_install(
    url: str, package: str, extra: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # not installed, whatever this venv holds
    with pytest.raises(MissingFilesystemError, match=rf"pip install 'scaleml\[{extra}\]'"):
        Dataset(url, target="target")
    _fails_with_one_line(["data", "describe", url], capsys, package, f"scaleml[{extra}]")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(requirement.startswith(package) for requirement in extras[extra])


def test_nan_and_infinity_are_located_when_a_block_is_read(tmp_path: Path) -> None:
    path = _data(tmp_path)
    _spoil(path / "part-00003.parquet", "f002", {17: np.nan, 40: np.inf})
    _spoil(path / "part-00001.parquet", "target", {5: np.nan})
    dataset = Dataset(str(path), target="target")
    with pytest.raises(NonFiniteValueError) as raised:
        dataset.read_xy(3)
    error = raised.value
    assert (error.path, error.column, error.row) == (str(path / "part-00003.parquet"), "f002", 17)
    assert "2 missing or infinite value(s)" in str(error) and "row 17" in str(error)
    with pytest.raises(NonFiniteValueError, match=r"target column 'target'.*row 5"):
        dataset.read_xy(1)
    # Blocks cut inside a file count rows from the file's start.
    single = tmp_path / "one.parquet"
    table = pq.read_table(path / "part-00000.parquet")
    pq.write_table(pa.concat_tables([table, table]), single, row_group_size=500)
    _spoil(single, "f000", {700: np.inf})
    cut = Dataset(str(single), target="target", max_block_rows=500)
    with pytest.raises(NonFiniteValueError, match=r"\(infinity\) at row 700") as raised:
        cut.read_xy(1)
    assert raised.value.row == 700


def test_nan_in_a_csv_file_is_located(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("a,b,y\n1,2,0\n3,,1\n5,6,0\n")
    dataset = Dataset(str(path), target="y")
    with pytest.raises(NonFiniteValueError, match=r"file .*rows.csv: feature column 'b'.* row 1"):
        dataset.read_xy(0)


@pytest.mark.slow
def test_the_train_command_fails_with_one_line_and_a_failed_run(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """NaN found on a worker mid-training: exit 2, one line naming file/column/row, run FAILED."""
    path = _data(tmp_path, rows=4_000)
    _spoil(path / "part-00005.parquet", "f003", {123: np.nan})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = f"bad-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "SCALEML_SCHEDULER": cluster.scheduler_address,
        "SCALEML_MLFLOW_TRACKING_URI": uri,
        "SCALEML_EXPERIMENT": experiment,
        "SCALEML_MLFLOW_ARTIFACT_LOCATION": str(tmp_path / "artifacts"),
    }
    command = [
        str(Path(sys.executable).parent / "scaleml"),
        *("train", "--data", str(path), "--target", "target", "--estimator", "SGDClassifier"),
        *("--validation-fraction", "0.25"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    assert "part-00005.parquet" in last and "'f003'" in last and "row 123" in last, last
    store = MlflowClient(uri)
    (run,) = store.search_runs([store.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FAILED"
    assert "NonFiniteValueError" in run.data.tags["scaleml.error"]
    assert "part-00005.parquet" in run.data.tags["scaleml.error"]


@pytest.mark.slow
def test_a_file_spoiled_after_opening_fails_the_training_on_the_worker(
    client: Client, tmp_path: Path
) -> None:
    path = _data(tmp_path)
    dataset = Dataset(str(path), target="target", validation_fraction=0.25)
    bad = path / "part-00000.parquet"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(CorruptFileError, match=r"part-00000\.parquet") as raised:
        train_incremental(SGDClassifier(), dataset, client=client, classes=[0, 1])
    assert raised.value.path == str(bad)


@pytest.mark.slow
def test_a_search_fails_with_the_typed_error_and_failed_runs(
    client: Client, tmp_path: Path, settings
) -> None:
    path = _data(tmp_path)
    dataset = Dataset(str(path), target="target", validation_fraction=0.25)
    spoiled = next(dataset.blocks[i] for i in dataset.train_blocks)
    _spoil(Path(spoiled.path), "target", {9: np.inf})
    search = make_search(
        "hyperband", SGDClassifier(tol=None), {"alpha": [1e-4, 1e-3]}, max_iter=3, random_state=0
    )
    tracker = Tracker(settings)
    with pytest.raises(NonFiniteValueError, match=r"target column 'target'.*row 9"):
        search_and_log(search, dataset, tracker=tracker, client=client)
    runs = tracker.client.search_runs([tracker.experiment_id])
    assert runs and {run.info.status for run in runs} <= {"FAILED", "KILLED"}
    assert any(run.info.status == "FAILED" for run in runs)


@pytest.mark.slow
def test_boosting_rejects_infinity_but_keeps_nan_as_missing(client: Client, tmp_path: Path) -> None:
    path = _data(tmp_path)
    _spoil(path / "part-00002.parquet", "f001", {3: np.nan, 4: np.nan})
    dataset = Dataset(str(path), target="target", validation_fraction=0.25)
    spec = {"estimator": "XGBClassifier", "params": {"n_estimators": 3, "max_depth": 2}}
    result = train_boosting(spec, dataset, client=client)  # NaN: XGBoost's missing value
    assert result.n_rounds == 3
    _spoil(path / "part-00002.parquet", "f001", {8: -np.inf})
    with pytest.raises(NonFiniteValueError, match=r"'f001'.*\(infinity\) at row 8"):
        train_boosting(spec, dataset, client=client)
    assert issubclass(NonFiniteValueError, DatasetError)
