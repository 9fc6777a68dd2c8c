"""Tracking stage, the only door to MLflow: runs, step metrics, models, registry and aliases."""

from scaleml.tracking._boosting import (
    TrackedBoosting,
    TrackedBoostingSearch,
    search_boosting_and_log,
    train_boosting_and_log,
)
from scaleml.tracking._registry import RegisteredVersion, alias_version, load_model, register
from scaleml.tracking._runs import RunLogger, Tracker, configure
from scaleml.tracking._training import TrackedTraining, train_and_log

__all__ = [
    "RegisteredVersion",
    "RunLogger",
    "TrackedBoosting",
    "TrackedBoostingSearch",
    "TrackedTraining",
    "Tracker",
    "alias_version",
    "configure",
    "load_model",
    "register",
    "search_boosting_and_log",
    "train_and_log",
    "train_boosting_and_log",
]
