"""Tracking stage, the only door to MLflow: runs, step metrics, models, registry and aliases."""

from scaleml.tracking._boosting import (
    TrackedBoosting,
    TrackedBoostingSearch,
    search_boosting_and_log,
    train_boosting_and_log,
)
from scaleml.tracking._insight import (
    EvaluableModel,
    candidate_models,
    learning_history,
    load_evaluable,
    log_evaluation,
)
from scaleml.tracking._promotion import (
    PROMOTE_POLICIES,
    Promotion,
    register_and_promote,
)
from scaleml.tracking._registry import (
    ModelVersionInfo,
    RegisteredVersion,
    alias_version,
    load_model,
    model_version_info,
    register,
    registered_model_exists,
    version_exists,
)
from scaleml.tracking._runs import RunLogger, Tracker, configure
from scaleml.tracking._search import TrackedSearch, search_and_log
from scaleml.tracking._training import TrackedTraining, train_and_log

__all__ = [
    "PROMOTE_POLICIES",
    "EvaluableModel",
    "ModelVersionInfo",
    "Promotion",
    "RegisteredVersion",
    "RunLogger",
    "TrackedBoosting",
    "TrackedBoostingSearch",
    "TrackedSearch",
    "TrackedTraining",
    "Tracker",
    "alias_version",
    "candidate_models",
    "configure",
    "learning_history",
    "load_evaluable",
    "load_model",
    "log_evaluation",
    "model_version_info",
    "register",
    "register_and_promote",
    "registered_model_exists",
    "search_and_log",
    "search_boosting_and_log",
    "train_and_log",
    "train_boosting_and_log",
    "version_exists",
]
