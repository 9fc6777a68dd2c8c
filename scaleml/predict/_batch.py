"""Batch scoring: a model's predictions for every row of a dataset, written as Parquet.

Each block is read, predicted and written by one task on a worker (one output file per
block, written to a temporary name and renamed), so a dataset of any size is scored with a
few blocks in memory at a time. The model is sent to each worker once. The output directory
is built under a temporary name and renamed when every block is done: it is complete or
absent. Output files hold the ``keep`` columns, ``prediction`` and, for classifiers,
``probability_<class>`` columns, in the order of the dataset's blocks.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import Client, as_completed, get_client

from scaleml.data import Dataset
from scaleml.errors import DatasetError, ScalemlError
from scaleml.predict._tasks import PREDICTION, PROBABILITY_PREFIX, predict_block

__all__ = [
    "PREDICTION",
    "PROBABILITY_PREFIX",
    "PredictError",
    "PredictionResult",
    "check_request",
    "model_features",
    "predict_dataset",
]


class PredictError(ScalemlError, ValueError):
    """Batch scoring was asked for with arguments that cannot work."""


@dataclass(frozen=True)
class PredictionResult:
    """Where the predictions went and how long scoring took."""

    output: Path
    files: list[Path]
    rows: int
    columns: list[str]
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Rows scored per second of wall time."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def predict_dataset(
    model: Any,
    dataset: Dataset,
    output: str | Path,
    *,
    keep: list[str] | tuple[str, ...] = (),
    probabilities: bool | None = None,
    client: Client | None = None,
    overwrite: bool = False,
    on_block_done: Callable[[int, int], object] | None = None,
) -> PredictionResult:
    """Score every row of ``dataset`` with ``model`` on the cluster; write Parquet to ``output``.

    Args:
        model: a fitted model with ``predict`` (scikit-learn API: scikit-learn, XGBoost,
            LightGBM), e.g. ``scaleml.tracking.load_model(uri).get_raw_model()``.
        dataset: the rows to score; its features are the model's inputs (its target, if it
            has one, is not needed and only written when listed in ``keep``).
        output: a directory (local or on a filesystem every worker shares) to create.
        keep: columns of the dataset copied to the output next to the predictions (keys).
        probabilities: add ``probability_<class>`` columns; default: when the model has
            ``predict_proba``.
        client: the Dask client; the current one when omitted.
        overwrite: replace ``output`` if it exists.
        on_block_done: called with ``(blocks_done, blocks_total)`` as blocks finish.

    Raises:
        PredictError: ``output`` exists, or ``keep`` names an unknown column.
        DatasetError: bad data (its subclasses name the file, column and row).
    """
    target = Path(output)
    keep = check_request(model, dataset, target, keep, overwrite=overwrite)
    if probabilities is None:
        probabilities = hasattr(model, "predict_proba")
    missing_features = type(model).__module__.split(".")[0] in ("xgboost", "lightgbm")
    client = client or _current_client()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    started = time.perf_counter()
    try:
        scattered = client.scatter(model, broadcast=True, hash=False)
        names = [staging / f"part-{index:05d}.parquet" for index in range(dataset.n_blocks)]
        futures = [
            client.submit(
                predict_block,
                scattered,
                block,
                list(dataset.features),
                keep,
                str(name),
                probabilities=probabilities,
                missing_features=missing_features,
                pure=False,
            )
            for block, name in zip(dataset.blocks, names, strict=True)
        ]
        rows = 0
        for done, future in enumerate(as_completed(futures), 1):
            rows += future.result()
            if on_block_done is not None:
                on_block_done(done, len(futures))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = [target / name.name for name in names]
    columns = _columns(files[0]) if files else []
    return PredictionResult(target, files, rows, columns, time.perf_counter() - started)


def _columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def _current_client() -> Client:
    try:
        return get_client()
    except ValueError:
        raise PredictError(
            "no Dask client: pass client=, or open one with scaleml.cluster.connect()"
        ) from None


def check_request(
    model: Any, dataset: Dataset, output: Path, keep: Any, *, overwrite: bool
) -> list[str]:
    """Check a scoring request before any work; return ``keep`` without repeats.

    Raises:
        PredictError: ``output`` exists (without ``overwrite``), the model cannot predict,
            or a kept column would clash with the prediction columns.
        DatasetError: a kept column is not in the dataset.
    """
    if output.exists() and not overwrite:
        raise PredictError(f"{output} already exists; pass --overwrite to replace it")
    if not hasattr(model, "predict"):
        raise PredictError(f"the model ({type(model).__name__}) has no predict method")
    keep = list(dict.fromkeys(keep))
    unknown = [name for name in keep if name not in set(dataset.source_columns)]
    if unknown:
        raise DatasetError(
            f"kept column(s) {unknown} are not in the dataset ({len(dataset.source_columns)} "
            "columns)"
        )
    clashing = [n for n in keep if n == PREDICTION or n.startswith(PROBABILITY_PREFIX)]
    if clashing:
        raise PredictError(f"kept column(s) {clashing} would clash with the prediction columns")
    return keep


def model_features(model: Any) -> list[str] | None:
    """The feature names a fitted model was trained with, when it knows them."""
    for attribute in ("feature_names_in_", "feature_name_"):
        names = getattr(model, attribute, None)
        if names is not None:
            return [str(name) for name in names]
    return None
