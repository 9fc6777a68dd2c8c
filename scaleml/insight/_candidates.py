"""Models a comparison trains before it compares them (``compare(..., train=[spec, ...])``),
the way PyCaret's ``compare_models`` does: JSON specs in the style of the coordinator's train
and boost jobs, all checked before anything trains, then trained at once on the cluster
(incremental estimators out of core with :func:`scaleml.train.train_incremental`, XGBoost and
LightGBM with scaleml's Dask boosting), each in an MLflow run nested under the comparison's.

A spec: ``{"estimator": {"estimator": "SGDClassifier", "params": {"alpha": 1e-4}},
"epochs": 2}`` (or ``{"estimator": "SGDClassifier", "params": {...}}``), with ``name``,
``epochs``, ``patience``, ``scoring`` for incremental estimators and ``early_stopping_rounds``,
``eval_metric`` for boosting ones.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scaleml.errors import ScalemlError
from scaleml.estimators import EstimatorSpec, canonical_name, from_spec, is_incremental
from scaleml.insight._errors import InsightError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from distributed import Client

    from scaleml.data import Dataset

MAX_CANDIDATES = 20
_BOOSTING_PREFIXES = ("xgboost.", "lightgbm.")
_INCREMENTAL_ONLY = ("epochs", "patience", "scoring")
_BOOSTING_ONLY = ("early_stopping_rounds", "eval_metric")


class CandidateSpecError(InsightError):
    """A spec of a model to train for a comparison is invalid (the message names which)."""


class CandidateSpec(BaseModel):
    """One model to train for a comparison (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid")

    estimator: EstimatorSpec = Field(
        description='Allow-listed estimator: {"estimator": "SGDClassifier", "params": {...}}.'
    )
    name: str | None = Field(default=None, min_length=1, max_length=250)
    epochs: int | None = Field(default=None, ge=1, le=10_000, description="Incremental only.")
    patience: int | None = Field(default=None, ge=1, description="Incremental only.")
    scoring: str | None = Field(default=None, min_length=1, max_length=100)
    early_stopping_rounds: int | None = Field(default=None, ge=1, description="Boosting only.")
    eval_metric: str | list[str] | None = Field(default=None, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("estimator"), str):
            data = dict(data)
            data["estimator"] = {"estimator": data["estimator"], "params": data.pop("params", {})}
        return data

    @model_validator(mode="after")
    def _buildable(self) -> CandidateSpec:
        try:
            path = canonical_name(self.estimator.estimator)
            spec = EstimatorSpec(estimator=path, params=self.estimator.params)
            estimator = from_spec(spec)
            if path.startswith(_BOOSTING_PREFIXES):
                from scaleml.train._boosting_params import check_metric_names, resolve_estimator

                resolve_estimator(spec)
                check_metric_names(self.eval_metric)
                wrong = [k for k in _INCREMENTAL_ONLY if getattr(self, k) is not None]
            elif is_incremental(estimator):
                wrong = [k for k in _BOOSTING_ONLY if getattr(self, k) is not None]
            else:
                raise ValueError(
                    f"{path} is neither incremental (partial_fit) nor XGBoost/LightGBM: a "
                    "comparison trains only those on the cluster"
                )
        except (ScalemlError, TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None
        if wrong:
            verb = "does" if len(wrong) == 1 else "do"
            raise ValueError(f"{', '.join(wrong)} {verb} not apply to {path}")
        self.estimator = spec
        return self

    @property
    def boosting(self) -> bool:
        """Whether it trains with the Dask boosting (else incrementally)."""
        return self.estimator.estimator.startswith(_BOOSTING_PREFIXES)


@dataclass(frozen=True)
class Trained:
    """A model a comparison trained: its name, its MLflow run and model URI."""

    name: str
    run_id: str
    model_uri: str


def check_candidates(specs: list[Any], taken: set[str] | None = None) -> dict[str, CandidateSpec]:
    """Check every spec before anything trains; return them by unique name (the class's short
    name unless ``name`` is given; ``#2``, ``#3`` ... for repeats and names in ``taken``).

    Raises:
        CandidateSpecError: not a list, too many, or a spec is invalid (``train[i].field: ...``).
    """
    if not isinstance(specs, list | tuple):
        raise CandidateSpecError("train must be a list of estimator specs")
    if len(specs) > MAX_CANDIDATES:
        raise CandidateSpecError(f"train has {len(specs)} specs; at most {MAX_CANDIDATES}")
    checked: dict[str, CandidateSpec] = {}
    used = set(taken or ())
    for index, raw in enumerate(specs):
        try:
            spec = raw if isinstance(raw, CandidateSpec) else CandidateSpec.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            where = f"train[{index}]{'.' + where if where else ''}"
            raise CandidateSpecError(
                f"{where}: {error['msg'].removeprefix('Value error, ')}"
            ) from None
        base = spec.name or spec.estimator.estimator.rsplit(".", 1)[1]
        name, number = base, 2
        while name in used:
            name, number = f"{base} #{number}", number + 1
        used.add(name)
        checked[name] = spec
    return checked


def train_candidates(
    candidates: dict[str, CandidateSpec],
    dataset: Dataset,
    *,
    settings: Any = None,
    parent_run_id: str | None = None,
    client: Client | None = None,
    tags: dict[str, str] | None = None,
) -> list[Trained]:
    """Train every candidate at once on the cluster (one thread each submits its work with the
    same client), each logged to an MLflow run nested under ``parent_run_id`` (with ``tags``).
    Waits for all; raises the first failure (its run ends FAILED)."""
    from distributed import get_client

    client = client or get_client()
    tracker = _nested_tracker(settings, parent_run_id, tags)
    with ThreadPoolExecutor(len(candidates), thread_name_prefix="compare-train") as pool:
        futures = {
            name: pool.submit(_train_one, name, spec, dataset, tracker, client)
            for name, spec in candidates.items()
        }
        errors = [f.exception() for f in futures.values() if f.exception() is not None]
    if errors:
        raise errors[0]
    return [future.result() for future in futures.values()]


def _train_one(
    name: str, spec: CandidateSpec, dataset: Dataset, tracker: Any, client: Client
) -> Trained:
    from scaleml.tracking import train_and_log, train_boosting_and_log

    estimator = from_spec(spec.estimator)
    if spec.boosting:
        tracked = train_boosting_and_log(
            estimator,
            dataset,
            tracker=tracker,
            run_name=name,
            client=client,
            early_stopping_rounds=spec.early_stopping_rounds,
            eval_metric=spec.eval_metric,
        )
    else:
        options = {"epochs": spec.epochs or 1, "patience": spec.patience, "scoring": spec.scoring}
        tracked = train_and_log(
            estimator,
            dataset,
            tracker=tracker,
            run_name=name,
            client=client,
            **{k: v for k, v in options.items() if v is not None},
        )
    return Trained(name, tracked.run_id, tracked.model_uri)


def _nested_tracker(settings: Any, parent_run_id: str | None, tags: dict[str, str] | None) -> Any:
    from scaleml.tracking import Tracker

    class NestedTracker(Tracker):
        """Opens every run under the comparison's run."""

        @contextmanager
        def run(
            self,
            name: str | None = None,
            *,
            tags: dict[str, str] | None = None,
            parent_run_id: str | None = parent_run_id,
        ) -> Iterator[Any]:
            tags = {"scaleml.kind": "comparison-training", **(tags or {})}
            with super().run(name, tags=tags, parent_run_id=parent_run_id) as run:
                yield run

    return NestedTracker(settings, tags=tags)
