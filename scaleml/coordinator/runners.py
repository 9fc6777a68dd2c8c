"""Runners: turn a validated job spec into a tracked training, boosting or search on Dask.

A runner reports progress through its :class:`JobContext` and checks for cancellation at
every progress callback. Cancelling raises :class:`JobCancelled`, a ``KeyboardInterrupt``
(like Ctrl-C, it is not caught by ``except Exception``), so the tracking stage ends the
job's MLflow runs KILLED; the coordinator also closes the job's own Dask client, which
cancels every future the job still holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scaleml.config import Settings
from scaleml.dashboard._events import activity, publish
from scaleml.estimators import from_spec
from scaleml.tracking import Tracker

if TYPE_CHECKING:
    from distributed import Client

    from scaleml.coordinator.specs import BoostSpec, DatasetSpec, SearchSpec, TrainSpec
    from scaleml.data import Dataset

_LOWER_IS_BETTER = frozenset({"log_loss", "mse", "rmse", "mae", "inertia"})
_ADAPTIVE = ("incremental", "hyperband", "halving")


class JobCancelled(KeyboardInterrupt):  # named like asyncio.CancelledError
    """Raised inside a job whose cancellation was requested."""


@dataclass
class JobContext:
    """What a runner needs from the coordinator: the job's Dask client and its callbacks.

    Args:
        job_id: the job's id (set as the ``scaleml.job_id`` tag of every MLflow run it opens,
            nested trial runs included).
        attempt: the attempt this run of the job is (the ``scaleml.attempt`` tag), from 1.
        settings: scaleml settings (MLflow store, default experiment, prefetch).
        client: the job's own Dask client.
        cancelled: set when the job is to stop.
        on_progress: called with ``{"progress": 0..1 or None, "message": str,
            "best_score": float or None}`` (at most every ``min_interval_s``, and always
            when the best score changes).
        on_run: called with ``(experiment_id, run_id)`` when the job's MLflow run opens.
    """

    job_id: str
    settings: Settings
    client: Client
    attempt: int = 1
    cancelled: threading.Event = field(default_factory=threading.Event)
    on_progress: Callable[[dict[str, Any]], object] = lambda update: None
    on_run: Callable[[str, str], object] = lambda experiment_id, run_id: None
    min_interval_s: float = 0.5
    _last_report: float = 0.0
    _best: float | None = None

    def check(self) -> None:
        """Raise :class:`JobCancelled` if the job is to stop."""
        if self.cancelled.is_set():
            raise JobCancelled(f"job {self.job_id} cancelled")

    def progress(
        self,
        fraction: float | None,
        message: str,
        *,
        score: float | None = None,
        lower_is_better: bool = False,
    ) -> None:
        """Report progress (and a new score, kept if it is the best so far)."""
        self.check()
        improved = score is not None and (
            self._best is None or (score < self._best if lower_is_better else score > self._best)
        )
        if improved:
            self._best = score
        now = time.monotonic()
        if not improved and now - self._last_report < self.min_interval_s and fraction != 1.0:
            return
        self._last_report = now
        update = {"progress": fraction, "message": message, "best_score": self._best}
        self.on_progress(update)
        publish("job", {"event": "progress", "id": self.job_id, **update}, self.client)


def run_job(spec: TrainSpec | BoostSpec | SearchSpec, context: JobContext) -> dict[str, Any]:
    """Run a job to its end and return its result (run id, model URI, best score/params).

    Raises:
        JobCancelled: the job was cancelled.
        Exception: whatever the training raised (the job is FAILED with its text).
    """
    shown = activity(
        "job", f"{spec.kind} job", id=context.job_id, client=context.client, job_kind=spec.kind
    )
    with shown, context.client.as_current():
        if spec.kind == "predict":
            from scaleml.coordinator._predict_job import run_predict

            return run_predict(spec, context)
        if spec.kind == "validate":
            from scaleml.coordinator._validate_job import run_validate

            return run_validate(spec, context)
        if spec.kind in ("evaluate", "compare"):
            from scaleml.coordinator import _insight_runners

            return getattr(_insight_runners, f"run_{spec.kind}")(spec, context)
        if spec.kind == "explain":
            from scaleml.coordinator._explain_job import run_explain

            return run_explain(spec, context, make_dataset)
        tracker = _JobTracker(context, experiment=spec.experiment)
        context.check()
        if spec.kind == "train":
            result = _train(spec, context, tracker)
        elif spec.kind == "boost":
            result = _boost(spec, context, tracker)
        else:
            result = _search(spec, context, tracker)
        from scaleml.coordinator._insight_runners import auto_evaluate

        auto_evaluate(spec, result, context)
        return result


def build_search(spec: SearchSpec) -> Any:
    """The configured (unfitted) search a search spec describes.

    Raises:
        scaleml.errors.ScalemlError: the space or an option is invalid.
    """
    from scaleml.search import make_search

    options = dict(spec.options)
    if spec.method in _ADAPTIVE and spec.max_iter is not None:
        options.setdefault("max_iter", spec.max_iter)
    if spec.method == "random" and spec.n_iter is not None:
        options.setdefault("n_iter", spec.n_iter)
    if spec.method != "grid" and spec.random_state is not None:
        options.setdefault("random_state", spec.random_state)
    if spec.scoring is not None:
        options.setdefault("scoring", spec.scoring)
    return make_search(spec.method, from_spec(spec.estimator), spec.space, **options)


def make_dataset(spec: DatasetSpec) -> Dataset:
    """The :class:`scaleml.data.Dataset` a dataset spec describes."""
    from scaleml.data import Dataset

    return Dataset(
        spec.path,
        target=spec.target,
        features=spec.features,
        format=spec.format,
        validation_fraction=spec.validation_fraction,
        split_seed=spec.split_seed,
        max_block_rows=spec.max_block_rows,
        storage_options=spec.storage_options or None,
    )


class _JobTracker(Tracker):
    """A tracker that tags every run of the job (its id and attempt), reports its top-level
    run, and ends runs KILLED when they stop because the job was cancelled."""

    def __init__(self, context: JobContext, *, experiment: str | None) -> None:
        tags = {"scaleml.job_id": context.job_id, "scaleml.attempt": str(context.attempt)}
        super().__init__(context.settings, experiment=experiment, tags=tags)
        self._context = context

    @contextmanager
    def run(
        self,
        name: str | None = None,
        *,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Iterator[Any]:
        with super().run(name, tags=tags, parent_run_id=parent_run_id) as logger:
            if parent_run_id is None:
                self._context.on_run(self.experiment_id, logger.run_id)
                link = {"run_id": logger.run_id, "experiment_id": self.experiment_id}
                if str(self.tracking_uri).startswith(("http://", "https://")):
                    link["tracking_uri"] = self.tracking_uri
                publish("job", {"event": "note", "id": self._context.job_id, **link})
            try:
                yield logger
            except BaseException as exc:
                if self._context.cancelled.is_set() and not isinstance(exc, KeyboardInterrupt):
                    raise JobCancelled(f"job {self._context.job_id} cancelled") from exc
                raise


def _train(spec: TrainSpec, context: JobContext, tracker: Tracker) -> dict[str, Any]:
    from scaleml.tracking import train_and_log

    dataset = make_dataset(spec.dataset)
    context.check()
    lower = (spec.scoring or "") in _LOWER_IS_BETTER

    def on_block(done: int, total: int) -> None:
        context.progress(done / total if total else None, f"{done}/{total} blocks")

    def on_epoch(report: Any) -> None:
        score = report.scores.get(spec.scoring) if spec.scoring else None
        if score is None and report.scores:
            score = next(iter(report.scores.values()))
        context.progress(None, f"epoch {report.epoch} done", score=score, lower_is_better=lower)

    tracked = train_and_log(
        from_spec(spec.estimator),
        dataset,
        tracker=tracker,
        client=context.client,
        run_name=spec.run_name,
        register_as=spec.register_as,
        alias=spec.alias,
        promote=spec.promote,
        epochs=spec.epochs,
        patience=spec.patience,
        scoring=spec.scoring,
        random_state=spec.random_state,
        prefetch=context.settings.prefetch_blocks,
        on_block_done=on_block,
        on_epoch_end=on_epoch,
    )
    result = tracked.result
    return {
        "run_id": tracked.run_id,
        "model_uri": tracked.model_uri,
        "registered_version": tracked.registered_version,
        "best_score": result.best_score,
        "best_params": spec.estimator.params,
        "scoring": result.scoring,
        "epochs_run": len(result.history),
        "final_scores": result.final_scores,
        "rows_trained": result.rows_trained,
    }


def _boost(spec: BoostSpec, context: JobContext, tracker: Tracker) -> dict[str, Any]:
    from scaleml.tracking import train_boosting_and_log

    dataset = make_dataset(spec.dataset)
    context.progress(None, "boosting")
    tracked = train_boosting_and_log(
        from_spec(spec.estimator),
        dataset,
        tracker=tracker,
        client=context.client,
        run_name=spec.run_name,
        register_as=spec.register_as,
        alias=spec.alias,
        promote=spec.promote,
        early_stopping_rounds=spec.early_stopping_rounds,
        eval_metric=spec.eval_metric,
    )
    result = tracked.result
    scores = dict(result.scores)
    best = scores.get(spec.scoring) if spec.scoring else next(iter(scores.values()), None)
    return {
        "run_id": tracked.run_id,
        "model_uri": tracked.model_uri,
        "registered_version": tracked.registered_version,
        "best_score": best,
        "best_params": spec.estimator.params,
        "scores": scores,
        "best_iteration": result.best_iteration,
        "n_rounds": result.n_rounds,
    }


def _search(spec: SearchSpec, context: JobContext, tracker: Tracker) -> dict[str, Any]:
    from scaleml.coordinator.specs import is_boosting

    if is_boosting(spec.estimator):
        return _boosting_search(spec, context, tracker)
    from scaleml.tracking import search_and_log

    dataset = make_dataset(spec.dataset)
    search = build_search(spec)
    total = _planned_calls(search)
    calls: dict[Any, int] = {}

    def on_record(record: dict[str, Any]) -> None:
        calls[record.get("model_id")] = int(record.get("partial_fit_calls") or 0)
        done = sum(calls.values())
        fraction = min(done / total, 1.0) if total else None
        score = record.get("score", record.get("mean_test_score"))
        context.progress(
            fraction,
            f"{len(calls)} models, {done} partial_fit calls",
            score=None if score is None else float(score),
        )

    context.progress(None, f"{spec.method} search starting")
    tracked = search_and_log(
        search,
        dataset,
        tracker=tracker,
        client=context.client,
        register_as=spec.register_as,
        alias=spec.alias,
        promote=spec.promote,
        run_name=spec.run_name,
        on_record=on_record,
        dataset=dataset,
    )
    return {
        "run_id": tracked.run_id,
        "model_uri": tracked.model_uri,
        "registered_version": tracked.registered_version,
        "best_score": _plain(tracked.best_score),
        "best_params": _plain(tracked.best_params),
        "trial_run_ids": {str(k): v for k, v in (tracked.trial_run_ids or {}).items()},
    }


def _boosting_search(spec: SearchSpec, context: JobContext, tracker: Tracker) -> dict[str, Any]:
    from scaleml.search import parse_space
    from scaleml.tracking import search_boosting_and_log

    dataset = make_dataset(spec.dataset)
    space = parse_space(spec.space, grid=spec.method == "grid")
    context.progress(None, f"{spec.method} boosting search")
    tracked = search_boosting_and_log(
        from_spec(spec.estimator),
        space,
        dataset,
        tracker=tracker,
        client=context.client,
        run_name=spec.run_name,
        register_as=spec.register_as,
        alias=spec.alias,
        promote=spec.promote,
        method=spec.method,
        n_iter=spec.n_iter or 10,
        random_state=spec.random_state,
        scoring=spec.scoring,
        early_stopping_rounds=spec.early_stopping_rounds,
    )
    best = tracked.search.best_candidate
    return {
        "run_id": tracked.run_id,
        "model_uri": tracked.model_uri,
        "registered_version": tracked.registered_version,
        "best_score": _plain(tracked.search.best_score),
        "best_params": _plain(best.params),
        "trial_run_ids": list(tracked.candidate_run_ids),
    }


def _planned_calls(search: Any) -> int | None:
    metadata = getattr(search, "metadata", None)
    if isinstance(metadata, dict) and metadata.get("partial_fit_calls"):
        return int(metadata["partial_fit_calls"])
    return None


def _plain(value: Any) -> Any:
    """JSON-friendly values (NumPy scalars and arrays become Python ones)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return value
