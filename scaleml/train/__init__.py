"""Training stage: incremental ``partial_fit`` training over out-of-core data on the cluster,
and distributed boosting with XGBoost's and LightGBM's Dask APIs."""

from scaleml.train._incremental import EpochReport, TrainingResult, train_incremental
from scaleml.train._scoring import available_metrics, estimator_kind
from scaleml.train.boosting import DASK_BOOSTING_ESTIMATORS, BoostingResult, train_boosting

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
