"""The history of a search: flat, append-only records, and the views built from them.

One record per score, i.e. per step of one model (dask-ml's ``history_`` entries):
``model_id``, ``params``, ``partial_fit_calls`` (the model's total so far),
``partial_fit_time`` (of its last call), ``score``, ``score_time``, ``elapsed_wall_time``
(seconds since the search started), plus ``bracket`` in Hyperband: dask-ml's key sets, exactly.
Whether a model's state was lost with a worker and recomputed before a step is kept beside
them (``History.restarts``, the search's ``restarts_``) and added as ``restarted`` to the
copies the ``on_record`` callbacks get. ``model_history_``, ``cv_results_``, ``metadata_``
and tracking are views of these records.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.stats

Record = dict[str, Any]


def step_record(
    model_id: Hashable,
    params: dict[str, Any],
    step: Mapping[str, Any],
    when: float,
    previous: Sequence[Record] = (),
    extra: Mapping[str, Any] | None = None,
) -> Record:
    """The record of one scored round of a model from its worker's report (``step``),
    ``when`` seconds into the search but never before the model's ``previous`` record
    (reports arrive with different delays)."""
    if previous:
        when = max(when, previous[-1]["elapsed_wall_time"])
    return {
        "model_id": model_id,
        "params": params,
        "partial_fit_calls": step["partial_fit_calls"],
        "partial_fit_time": step["partial_fit_time"],
        "score": step["score"],
        "score_time": step["score_time"],
        "elapsed_wall_time": when,
        **(extra or {}),
    }


class History:
    """Append-only records; every record is passed to ``on_record`` callbacks as it comes."""

    def __init__(self, on_record: Iterable[Callable[[Record], object]] = ()) -> None:
        self.records: list[Record] = []
        self.restarts: list[Record] = []
        """``{"model_id", "partial_fit_calls"}`` of the records that followed a restart."""
        self._on_record = list(on_record)

    def append(self, record: Record, *, restarted: bool = False) -> None:
        """Append one record and tell the callbacks (each gets its own copy, with
        ``restarted``: whether the model was recomputed after a worker died before it)."""
        self.records.append(record)
        if restarted:
            self.restarts.append(
                {"model_id": record["model_id"], "partial_fit_calls": record["partial_fit_calls"]}
            )
        for callback in self._on_record:
            callback({**record, "restarted": restarted})

    def by_model(self) -> dict[Hashable, list[Record]]:
        """``{model_id: [record, ...]}`` in order of first appearance (``model_history_``)."""
        return model_history(self.records)


def model_history(records: Iterable[Record]) -> dict[Hashable, list[Record]]:
    """Group records by model, keeping their order."""
    out: dict[Hashable, list[Record]] = {}
    for record in records:
        out.setdefault(record["model_id"], []).append(record)
    return out


def cv_results(
    per_model: Mapping[Hashable, Sequence[Record]],
    order: Sequence[Hashable],
    extra: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """dask-ml's ``cv_results_``: one entry per model in ``order``, with its last score.

    Keys: ``mean_partial_fit_time``, ``mean_score_time``, ``std_partial_fit_time``,
    ``std_score_time``, ``test_score``, ``model_id``, ``params``, ``partial_fit_calls``,
    ``param_{name}`` per parameter, ``rank_test_score``, and the ``extra`` record fields
    (``bracket`` in Hyperband).
    """
    rows = []
    for model_id in order:
        records = per_model[model_id]
        fit_times = [r["partial_fit_time"] for r in records]
        score_times = [r["score_time"] for r in records]
        row = {
            "mean_partial_fit_time": np.mean(fit_times),
            "mean_score_time": np.mean(score_times),
            "std_partial_fit_time": np.std(fit_times),
            "std_score_time": np.std(score_times),
            "test_score": records[-1]["score"],
            "model_id": model_id,
            "params": records[0]["params"],
            "partial_fit_calls": records[-1]["partial_fit_calls"],
        }
        row.update({name: records[-1][name] for name in extra})
        rows.append(row)
    results: dict[str, Any] = {key: [row[key] for row in rows] for key in rows[0]}
    names = list(dict.fromkeys(name for params in results["params"] for name in params))
    for name in names:
        results[f"param_{name}"] = [params.get(name) for params in results["params"]]
    out = {key: _array(values) for key, values in results.items()}
    out["rank_test_score"] = scipy.stats.rankdata(-out["test_score"], method="min").astype(int)
    return out


def final_calls(per_model: Mapping[Hashable, Sequence[Record]]) -> dict[Hashable, int]:
    """Each model's total number of ``partial_fit`` calls."""
    return {k: records[-1]["partial_fit_calls"] for k, records in per_model.items()}


def bracket_metadata(
    records: Sequence[Record], brackets: Sequence[int], sha_params: Mapping[int, dict[str, Any]]
) -> dict[str, Any]:
    """Hyperband's ``metadata_``: what each bracket ran, from the records."""
    meta = []
    for bracket in brackets:
        per_model = model_history(r for r in records if r["bracket"] == bracket)
        decisions = {r["partial_fit_calls"] for rs in per_model.values() for r in rs}
        if bracket != max(brackets):
            decisions.discard(1)
        meta.append(
            {
                "decisions": sorted(decisions),
                "n_models": len(per_model),
                "bracket": bracket,
                "partial_fit_calls": sum(final_calls(per_model).values()),
                "SuccessiveHalvingSearchCV params": dict(sha_params[bracket]),
            }
        )
    meta.sort(key=lambda m: m["bracket"])
    return {
        "n_models": sum(m["n_models"] for m in meta),
        "partial_fit_calls": sum(m["partial_fit_calls"] for m in meta),
        "brackets": meta,
    }


def _array(values: list[Any]) -> np.ndarray:
    if values and isinstance(values[0], dict):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    return np.array(values)
