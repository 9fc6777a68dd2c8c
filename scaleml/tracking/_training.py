"""Tracked incremental training: :func:`scaleml.train.train_incremental` inside an MLflow run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scaleml.data import Dataset
from scaleml.tracking._explain import explain_final_model
from scaleml.tracking._monitoring import log_contract
from scaleml.tracking._promotion import Promotion, check_policy, register_and_promote
from scaleml.tracking._runs import Tracker, class_path
from scaleml.train import EpochReport, TrainingResult, train_incremental


@dataclass(frozen=True)
class TrackedTraining:
    """A training logged to MLflow: the result, its run and its model."""

    result: TrainingResult
    run_id: str
    model_uri: str
    registered_version: str | None = None
    promotion: Promotion | None = None


def train_and_log(
    estimator: Any,
    dataset: Dataset,
    *,
    tracker: Tracker | None = None,
    run_name: str | None = None,
    register_as: str | None = None,
    alias: str = "champion",
    promote: str = "if-better",
    **train_options: Any,
) -> TrackedTraining:
    """Run :func:`scaleml.train.train_incremental` inside an MLflow run and log everything.

    The run holds the estimator's parameters, the training options, the dataset (description,
    fingerprint, schema), validation metrics per epoch as step metrics, the training time, and
    the fitted model with signature and input example. With ``register_as`` the model is
    registered under that name, and ``alias`` moved to the new version as ``promote`` says:
    ``"if-better"`` (when it scores at least as well as the alias's holder on the dataset's
    validation blocks), ``"always"`` or ``"never"`` (see :class:`Promotion`).
    """
    check_policy(promote)
    tracker = tracker or Tracker()
    user_callback = train_options.pop("on_epoch_end", None)
    with tracker.run(run_name or f"train-{type(estimator).__name__}") as run:
        run.log_params({"estimator": class_path(estimator), **estimator.get_params(deep=False)})
        skipped = ("client", "profile_data")
        options = {k: v for k, v in train_options.items() if k not in skipped and not callable(v)}
        run.log_params({f"train.{k}": v for k, v in options.items()})
        run.log_dataset(dataset)

        def log_epoch(report: EpochReport) -> None:
            metrics = {f"val_{name}": value for name, value in report.scores.items()}
            metrics["epoch_seconds"] = report.seconds
            metrics["epoch_rows"] = report.rows
            run.log_metrics(metrics, step=report.epoch)
            if user_callback is not None:
                user_callback(report)

        # The contract's statistics in the pass that trains (see SCALEML_CONTRACT_PASS).
        train_options["profile_data"] = tracker.settings.contract_pass == "training"
        result = train_incremental(estimator, dataset, on_epoch_end=log_epoch, **train_options)
        summary = {
            "training_seconds": result.seconds,
            "rows_per_second": result.rows_per_second,
            "rows_trained": result.rows_trained,
            "partial_fit_calls": result.partial_fit_calls,
            "epochs_run": len(result.history),
        }
        if result.best_score is not None:
            summary[f"best_val_{result.scoring}"] = result.best_score
            summary["best_epoch"] = result.best_epoch or 0
        run.log_metrics(summary)
        run.set_tags({"scaleml.stopped_early": result.stopped_early})
        model_uri = run.log_sklearn_model(result.estimator, dataset.input_example())
        log_contract(run, dataset, result.estimator, train_options.get("client"), result.profiles)
        explain_final_model(
            run, result.estimator, dataset, tracker.settings, train_options.get("client")
        )
    promotion = None
    if register_as:
        promotion = register_and_promote(
            model_uri,
            register_as,
            model=result.estimator,
            data=dataset,
            alias=alias,
            promote=promote,
            scoring=result.scoring,
            tracker=tracker,
            client=train_options.get("client"),
        )
    version = promotion.version if promotion else None
    return TrackedTraining(result, run.run_id, model_uri, version, promotion)
