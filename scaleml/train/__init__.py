"""Training stage: incremental ``partial_fit`` training over out-of-core data on the cluster."""

from scaleml.train._incremental import EpochReport, TrainingResult, train_incremental
from scaleml.train._scoring import available_metrics, estimator_kind

__all__ = [
    "EpochReport",
    "TrainingResult",
    "available_metrics",
    "estimator_kind",
    "train_incremental",
]
