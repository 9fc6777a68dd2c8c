"""Job specs: JSON descriptions of a training, a boosting or a search. No pickles, ever.

A spec is validated with pydantic before anything runs; every error names its field. The
estimator is resolved against the allow-list of :mod:`scaleml.estimators` and its parameters
are checked by building it; a search's space and options are checked by building the search.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from scaleml.coordinator._model_specs import (
    CompareSpec,
    EvaluateSpec,
    ExplainSpec,
    PredictSpec,
    ValidateSpec,
)
from scaleml.coordinator._spec_parts import (
    DatasetSpec,
    check_limits,
)
from scaleml.errors import ScalemlError
from scaleml.estimators import EstimatorSpec, canonical_name, from_spec, is_incremental

SearchMethod = Literal["incremental", "hyperband", "halving", "grid", "random"]
_BOOSTING_PREFIXES = ("xgboost.", "lightgbm.")
_ADAPTIVE_METHODS = ("incremental", "hyperband", "halving")
Promote = Literal["always", "if-better", "never"]


class _JobSpecBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    estimator: EstimatorSpec = Field(
        description='Allow-listed estimator: {"estimator": "SGDClassifier", "params": {...}}.'
    )
    dataset: DatasetSpec
    experiment: str | None = Field(
        default=None,
        min_length=1,
        max_length=250,
        description="MLflow experiment; default SCALEML_EXPERIMENT.",
    )
    run_name: str | None = Field(default=None, min_length=1, max_length=250)
    scoring: str | None = Field(
        default=None, min_length=1, max_length=100, description="Validation metric."
    )
    random_state: int | None = Field(default=0, ge=0, le=2**32 - 1)
    register_as: str | None = Field(
        default=None, min_length=1, max_length=250, description="Register the model as NAME."
    )
    alias: str = Field(default="champion", min_length=1, max_length=250)
    promote: Promote = Field(
        default="if-better",
        description="Whether the registered version takes the alias: 'if-better' (it scores at "
        "least as well as the alias holder), 'never', or 'always' (a token listed in "
        "SCALEML_COORDINATOR_FORCE_TOKENS only).",
    )
    max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Attempts when the coordinator running the job dies (the job's own errors "
        "are never retried); default SCALEML_COORDINATOR_MAX_ATTEMPTS.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        return check_limits(data)

    @field_validator("estimator")
    @classmethod
    def _allowed_estimator(cls, value: EstimatorSpec) -> EstimatorSpec:
        try:
            path = canonical_name(value.estimator)
            from_spec(EstimatorSpec(estimator=path, params=value.params))
        except ScalemlError as exc:
            raise ValueError(str(exc)) from None
        return EstimatorSpec(estimator=path, params=value.params)


class TrainSpec(_JobSpecBase):
    """Incremental training (``partial_fit`` over blocks, epochs, early stopping)."""

    kind: Literal["train"]
    epochs: int = Field(default=1, ge=1, le=100_000)
    patience: int | None = Field(default=None, ge=1)

    @field_validator("estimator")
    @classmethod
    def _incremental(cls, value: EstimatorSpec) -> EstimatorSpec:
        if not is_incremental(from_spec(value)):
            raise ValueError(
                f"{value.estimator} has no partial_fit; a train job needs an incremental "
                "estimator (scaleml.estimators.INCREMENTAL_ESTIMATORS); use kind 'boost' for "
                "XGBoost/LightGBM"
            )
        return value


class BoostSpec(_JobSpecBase):
    """Distributed boosting with XGBoost or LightGBM on the cluster."""

    kind: Literal["boost"]
    early_stopping_rounds: int | None = Field(default=None, ge=1)
    eval_metric: str | list[str] | None = Field(default=None, max_length=100)

    @field_validator("estimator")
    @classmethod
    def _boosting(cls, value: EstimatorSpec) -> EstimatorSpec:
        if not value.estimator.startswith(_BOOSTING_PREFIXES):
            raise ValueError(
                f"{value.estimator} is not a boosting estimator; a boost job needs an XGBoost "
                "or LightGBM estimator"
            )
        return value


class SearchSpec(_JobSpecBase):
    """A hyper-parameter search: adaptive (incremental, hyperband, halving) over ``partial_fit``
    estimators, or grid / random (also over XGBoost / LightGBM estimators)."""

    kind: Literal["search"]
    method: SearchMethod = Field(default="hyperband", validate_default=True)
    max_iter: int | None = Field(
        default=None, ge=1, le=100_000, description="Adaptive searches: partial_fit calls cap."
    )
    n_iter: int | None = Field(
        default=None, ge=1, le=100_000, description="Random search: candidates sampled."
    )
    early_stopping_rounds: int | None = Field(default=None, ge=1, description="Boosting only.")
    space: dict[str, Any] = Field(
        min_length=1,
        max_length=100,
        description="Parameter -> list of values, or a distribution in JSON form "
        '(e.g. {"distribution": "loguniform", "low": 1e-5, "high": 1e-1}).',
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        max_length=50,
        validate_default=True,
        description="Further keyword arguments of the search class.",
    )

    @field_validator("scoring")
    @classmethod
    def _scorer_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        estimator = info.data.get("estimator")
        if value is None or estimator is None or is_boosting(estimator):
            return value
        from sklearn.metrics import get_scorer_names

        names = sorted(get_scorer_names())
        if value not in names:
            close = difflib.get_close_matches(value, names, n=3)
            hint = f"did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"scoring must be a scikit-learn scorer name (accuracy, roc_auc, neg_log_loss, "
                f"r2, ...; sklearn.metrics.get_scorer_names()), got {value[:100]!r}; {hint}"
            )
        return value

    @field_validator("method")
    @classmethod
    def _method_fits_estimator(cls, value: str, info: ValidationInfo) -> str:
        estimator = info.data.get("estimator")
        if estimator is None:
            return value
        boosting = is_boosting(estimator)
        if boosting and value not in ("grid", "random"):
            raise ValueError(
                f"method {value!r} needs a partial_fit estimator; searches over "
                f"{estimator.estimator} use 'grid' or 'random'"
            )
        incremental = boosting or is_incremental(from_spec(estimator))
        if value in _ADAPTIVE_METHODS and not incremental:
            raise ValueError(
                f"method {value!r} needs a partial_fit estimator, got {estimator.estimator}"
            )
        return value

    @field_validator("space")
    @classmethod
    def _space_parses(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return cls._check_search(value, info, "space", {"space": value, "options": {}})

    @field_validator("options")
    @classmethod
    def _options_accepted(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "space" not in info.data:
            return value  # the space is already reported
        return cls._check_search(value, info, "options", {"options": value})

    @classmethod
    def _check_search(
        cls, value: dict[str, Any], info: ValidationInfo, name: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        if "estimator" not in info.data or "method" not in info.data:
            return value  # an earlier field is already reported
        from scaleml.search import parse_space

        try:
            if is_boosting(info.data["estimator"]):
                if name == "space":
                    parse_space(value, grid=info.data["method"] == "grid")
                return value
            from scaleml.coordinator.runners import build_search

            values = {"scoring": None, **info.data, **fields}  # a bad scoring is reported
            build_search(SearchSpec.model_construct(**values))
        except (ScalemlError, ValueError, TypeError) as exc:
            raise ValueError(str(exc)) from None
        return value


_AnySpec = (
    TrainSpec
    | BoostSpec
    | SearchSpec
    | PredictSpec
    | ValidateSpec
    | EvaluateSpec
    | CompareSpec
    | ExplainSpec
)
JobSpec = Annotated[_AnySpec, Field(discriminator="kind")]
"""Any job spec; ``kind`` (``train``, ``boost``, ``search``, ``predict``, ``validate``,
``evaluate``, ``compare``, ``explain``) selects which."""

_ADAPTER: TypeAdapter[_AnySpec] = TypeAdapter(JobSpec)


def parse_spec(data: dict[str, Any] | str) -> _AnySpec:
    """Validate a job spec given as a dict or JSON text.

    Raises:
        pydantic.ValidationError: the spec is invalid; each error names its field.
    """
    if isinstance(data, str):
        return _ADAPTER.validate_json(data)
    return _ADAPTER.validate_python(data)


def is_boosting(estimator: EstimatorSpec) -> bool:
    """Whether the (canonical) estimator is an XGBoost or LightGBM one."""
    return estimator.estimator.startswith(_BOOSTING_PREFIXES)
