"""Job specs of the kinds that use a registered model: batch scoring (``predict``),
contract checks (``validate``), explanations (``explain``), evaluations (``evaluate``) and
comparisons (``compare``)."""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scaleml.coordinator._spec_parts import MAX_TEXT, DatasetSpec, check_limits


class _ModelJobSpec(BaseModel):
    """What every job on a registered model takes besides its own fields."""

    model_config = ConfigDict(extra="forbid")

    experiment: str | None = Field(default=None, min_length=1, max_length=250)
    max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Attempts when the coordinator running the job dies (the job's own errors "
        "are never retried); default SCALEML_COORDINATOR_MAX_ATTEMPTS.",
    )

    @model_validator(mode="before")
    @classmethod
    def _within_limits(cls, data: Any) -> Any:
        return check_limits(data)


class PredictSpec(_ModelJobSpec):
    """Batch scoring: a registered model's predictions for every row of a dataset, written as
    Parquet (see :func:`scaleml.predict.predict_dataset`)."""

    kind: Literal["predict"]
    model: str = Field(
        min_length=1,
        max_length=MAX_TEXT,
        description="MLflow model URI, e.g. models:/churn@champion.",
    )
    dataset: DatasetSpec
    output: str = Field(min_length=1, description="Directory to write (shared by the workers).")
    keep: list[str] = Field(default_factory=list, description="Input columns to copy (keys).")
    probabilities: bool | None = Field(default=None, description="Default: for classifiers.")
    overwrite: bool = False


class ValidateSpec(_ModelJobSpec):
    """Check a dataset against a registered model's contract and report drift (see
    :func:`scaleml.monitor.validate`)."""

    kind: Literal["validate"]
    model: str = Field(
        min_length=1,
        max_length=MAX_TEXT,
        description="MLflow model URI, e.g. models:/churn@champion.",
    )
    dataset: DatasetSpec
    report: str | None = Field(
        default=None, min_length=1, description="Where to write the Bokeh drift report."
    )


class ExplainSpec(_ModelJobSpec):
    """SHAP explanations of a registered model on a dataset, computed on the workers and
    logged to the model's MLflow run (see :func:`scaleml.insight.explain`)."""

    kind: Literal["explain"]
    model: str = Field(
        min_length=1,
        max_length=MAX_TEXT,
        description="MLflow model URI, e.g. models:/churn@champion.",
    )
    dataset: DatasetSpec
    sample: int = Field(default=1000, ge=0, le=100_000, description="Rows kept for the plots.")
    part: Literal["all", "train", "validation"] = "all"
    log: bool = Field(default=True, description="Log the explanation to the model's run.")


class EvaluateSpec(_ModelJobSpec):
    """An evaluation of a model on a dataset, logged to the model's MLflow run (see
    :func:`scaleml.insight.evaluate`)."""

    kind: Literal["evaluate"]
    model: str = Field(min_length=1, max_length=MAX_TEXT, description="MLflow model URI.")
    dataset: DatasetSpec
    split: Literal["validation", "all", "train"] = "validation"
    metrics: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=200, description="Keep only these metrics (default: all)."
    )
    sensitive_features: list[Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=list, max_length=10, description="Columns for fairness by group."
    )
    output: str | None = Field(
        default=None, min_length=1, description="Also write the HTML report here."
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        from scaleml.insight._evaluate import all_metric_names

        known = all_metric_names()
        for name in value or []:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown metric {name!r}{hint}")
        return value


class CompareSpec(_ModelJobSpec):
    """Several models compared on the same rows in one pass, logged as a comparison run
    (see :func:`scaleml.insight.compare_logged`)."""

    kind: Literal["compare"]
    models: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] = Field(
        default_factory=list, max_length=100, description="MLflow model URIs."
    )
    registered: str | None = Field(default=None, min_length=1, max_length=250)
    experiment_runs: str | None = Field(
        default=None, min_length=1, max_length=250, description="Compare this experiment's runs."
    )
    search_run: str | None = Field(default=None, min_length=1, max_length=64)
    train: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=20,
        description="Estimator specs to train first, all at once on the cluster, and compare "
        'too: [{"estimator": {"estimator": "SGDClassifier", "params": {}}, "epochs": 2}, '
        '{"estimator": {"estimator": "DaskXGBClassifier", "params": {"n_estimators": 50}}}].',
    )
    dataset: DatasetSpec
    sort_by: str | None = Field(default=None, max_length=100)
    split: Literal["validation", "all", "train"] = "validation"
    output: str | None = Field(
        default=None, min_length=1, description="Also write the HTML report here."
    )

    @field_validator("train")
    @classmethod
    def _trainable(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from scaleml.insight._candidates import check_candidates

        checked = check_candidates(value)  # a CandidateSpecError is a ValueError: a 422
        return [spec.model_dump() for spec in checked.values()]

    @model_validator(mode="after")
    def _some_models(self) -> CompareSpec:
        if not (
            self.models or self.registered or self.experiment_runs or self.search_run or self.train
        ):
            raise ValueError(
                "give models to compare: models, registered, experiment_runs, search_run or train"
            )
        return self
