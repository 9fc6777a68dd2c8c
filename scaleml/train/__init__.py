"""Training stage: incremental ``partial_fit`` training over out-of-core data on the cluster,
and distributed boosting with XGBoost's and LightGBM's Dask APIs.

The public names are imported on first use: worker processes unpickle the task functions of
``scaleml.train._tasks`` and must not pay for importing the boosting libraries and
``dask.dataframe`` they never use (about 150 MB per worker).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scaleml.train._incremental import EpochReport, TrainingResult, train_incremental
    from scaleml.train._scoring import available_metrics, estimator_kind
    from scaleml.train.boosting import (
        DASK_BOOSTING_ESTIMATORS,
        BoostingResult,
        train_boosting,
    )

_HOMES = {
    "EpochReport": "scaleml.train._incremental",
    "TrainingResult": "scaleml.train._incremental",
    "train_incremental": "scaleml.train._incremental",
    "available_metrics": "scaleml.train._scoring",
    "estimator_kind": "scaleml.train._scoring",
    "DASK_BOOSTING_ESTIMATORS": "scaleml.train.boosting",
    "BoostingResult": "scaleml.train.boosting",
    "train_boosting": "scaleml.train.boosting",
}

__all__ = [
    "DASK_BOOSTING_ESTIMATORS",
    "BoostingResult",
    "EpochReport",
    "TrainingResult",
    "available_metrics",
    "estimator_kind",
    "train_boosting",
    "train_incremental",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'scaleml.train' has no attribute {name!r}")
