"""Small evaluation data with a sensitive column, and fitted models, shared by the module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

FEATURES = [f"f{i}" for i in range(5)]


def write_frame_blocks(path: Path, task: str, *, rows: int = 6000, blocks: int = 6) -> Path:
    """Parquet files, one per block, with ``FEATURES``, ``target``, ``group`` (a string) and
    ``region`` (an integer) columns."""
    rng = np.random.default_rng({"binary": 1, "multiclass": 2, "regression": 3}[task])
    path.mkdir(parents=True)
    x = rng.normal(size=(rows, len(FEATURES)))
    group = rng.choice(["a", "b", "c"], size=rows, p=[0.5, 0.3, 0.2])
    score = x @ rng.normal(size=len(FEATURES)) + (group == "b") * 0.7
    if task == "binary":
        target = (score + rng.normal(size=rows) > 0).astype(np.int64)
    elif task == "multiclass":
        target = np.digitize(score + rng.normal(size=rows) * 0.8, [-0.8, 0.8]).astype(np.int64)
    else:
        target = score * 3 + 10 + rng.normal(size=rows)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["target"] = target
    frame["group"] = group
    frame["region"] = rng.integers(0, 2, size=rows)
    for index, rows_of_block in enumerate(np.array_split(np.arange(rows), blocks)):
        part = frame.iloc[rows_of_block]
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), path / f"part-{index}.parquet"
        )
    return path


@pytest.fixture(scope="session")
def insight_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("insight")
    return {
        task: write_frame_blocks(root / task, task)
        for task in ("binary", "multiclass", "regression")
    }


@pytest.fixture(scope="session")
def logged_models(insight_data: dict[str, Path], client: Any, mlflow_uri: str) -> dict[str, Any]:
    """A binary classifier trained and logged by ``train_and_log`` (3 epochs of history) and a
    Ridge regressor logged to a run of its own, in one experiment of the session's store."""
    from sklearn.linear_model import Ridge, SGDClassifier

    from scaleml.config import Settings
    from scaleml.data import Dataset
    from scaleml.tracking import Tracker, train_and_log

    settings = Settings(mlflow_tracking_uri=mlflow_uri, experiment="insight-models")
    tracker = Tracker(settings)
    binary = Dataset(str(insight_data["binary"]), target="target", features=FEATURES)
    tracked = train_and_log(
        SGDClassifier(loss="log_loss", random_state=0),
        binary,
        tracker=tracker,
        epochs=3,
        client=client,
    )
    regression = Dataset(str(insight_data["regression"]), target="target", features=FEATURES)
    rows = regression.read_block(0)
    with tracker.run("ridge") as run:
        ridge = Ridge().fit(rows[FEATURES], rows["target"])
        ridge_uri = run.log_sklearn_model(ridge, rows[FEATURES].head(5))
    return {
        "settings": settings,
        "binary": binary,
        "tracked": tracked,
        "regression": regression,
        "ridge_uri": ridge_uri,
    }
