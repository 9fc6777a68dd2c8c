"""Views of the stored records: what each page's JSON routes return (pure functions).

Records may arrive slightly out of order (each is its own message); every view builds its
entries from whichever record of an activity comes first and sorts points by their x value.
Column views (``{"column": [values]}``) feed Bokeh ``ColumnDataSource`` objects directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
RECENT = 6
"""Searches (and trainings) drawn on their page: the most recent ones."""


def activities(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{id: state}`` of every activity in ``records``, in order of first appearance: the
    ``start`` fields, ``status`` (``running`` until an ``end``), notes, and the other records
    under ``events``."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        key = record.get("id")
        if not isinstance(key, str):
            continue
        state = out.setdefault(key, {"id": key, "status": "running", "events": []})
        event = record.get("event")
        if event == "start":
            state.update({k: v for k, v in record.items() if k not in ("event", "events")})
            state.setdefault("started", record.get("time"))
            state["started"] = record.get("time")
        elif event == "end":
            state["status"] = record.get("status", "finished")
            state["ended"] = record.get("time")
        elif event == "note":
            state.update({k: v for k, v in record.items() if k not in ("event", "id", "time")})
        else:
            state["events"].append(record)
    return out


def recent(states: dict[str, dict[str, Any]], n: int = RECENT) -> list[dict[str, Any]]:
    """The ``n`` most recently started activities, newest first."""
    ordered = sorted(states.values(), key=lambda s: s.get("started") or 0, reverse=True)
    return ordered[:n]


def run_link(state: dict[str, Any], run_id: Any = None) -> str:
    """The MLflow UI address of a run when the tracking store is a server, else its id."""
    run_id = run_id or state.get("run_id")
    if not run_id:
        return ""
    uri = str(state.get("tracking_uri") or "")
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{state.get('experiment_id', '')}/runs/{run_id}"
    return str(run_id)


# -- searches ------------------------------------------------------------------------------


def search_list(states: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The searches (``activities`` of their records), newest first: id, name, status,
    models, best score, MLflow run."""
    rows = [_search_summary(s) for s in recent(states, n=10_000)]
    return _columns(rows, ("id", "name", "status", "n_models", "best_score", "calls", "run"))


def search_lines(state: dict[str, Any] | None) -> dict[str, Any]:
    """One line per trial of a search (its ``activities`` state): ``xs`` (partial_fit
    calls), ``ys`` (scores), ``model``, ``label`` (its Hyperband bracket, else ``trials``) and
    ``color``."""
    rows = [] if state is None else _trial_rows(state)
    return {
        "xs": [r["xs"] for r in rows],
        "ys": [r["ys"] for r in rows],
        "model": [r["model"] for r in rows],
        "label": [r["label"] for r in rows],
        "color": [r["color"] for r in rows],
    }


def search_best(state: dict[str, Any] | None) -> dict[str, Any]:
    """The current best point of a search (``x``, ``y``, ``text``), or no row."""
    best = (
        None
        if state is None
        else _best(_trial_rows(state), state.get("best_model"), bool(state.get("lower_is_better")))
    )
    if best is None:
        return {"x": [], "y": [], "text": []}
    return {
        "x": [best["xs"][-1]],
        "y": [best["ys"][-1]],
        "text": [f"best {best['ys'][-1]:.4g} (model {best['model']})"],
    }


def search_trials(state: dict[str, Any] | None) -> dict[str, Any]:
    """The trial table of a search: model, bracket, params, score, calls, stopped early,
    MLflow run."""
    if state is None:
        return _columns([], ("model", "bracket", "params", "score", "calls", "stopped", "run"))
    stopped = {str(m) for m in state.get("stopped_early") or []}
    models = state.get("models") or {}
    trial_runs = state.get("trial_runs") or {}
    rows = []
    for row in sorted(_trial_rows(state), key=lambda r: -_number(r["ys"][-1])):
        model = row["model"]
        rows.append(
            {
                "model": model,
                "bracket": row["bracket"],
                "params": _text(models.get(model, "")),
                "score": row["ys"][-1],
                "calls": row["xs"][-1],
                "stopped": ("yes" if model in stopped else "no")
                if state["status"] != "running"
                else "",
                "run": run_link(state, trial_runs.get(model)),
            }
        )
    return _columns(rows, ("model", "bracket", "params", "score", "calls", "stopped", "run"))


def _trial_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    trials: dict[str, dict[str, Any]] = {}
    for record in state["events"]:
        if record.get("event") != "trial" or not isinstance(record.get("score"), int | float):
            continue
        model = str(record.get("model"))
        row = trials.setdefault(
            model, {"model": model, "bracket": record.get("bracket"), "points": {}}
        )
        row["points"][record.get("calls") or 0] = float(record["score"])
    rows = []
    for row in trials.values():
        calls = sorted(row.pop("points").items())
        bracket = row["bracket"]
        row["xs"] = [c for c, _ in calls]
        row["ys"] = [s for _, s in calls]
        row["label"] = f"bracket {bracket}" if bracket is not None else "trials"
        index = bracket if isinstance(bracket, int) else 0
        row["color"] = _PALETTE[index % len(_PALETTE)]
        rows.append(row)
    return rows


def _best(
    rows: list[dict[str, Any]], chosen: Any = None, lower_is_better: bool = False
) -> dict[str, Any] | None:
    """The model the search chose once it has ended, else the best last score so far."""
    for row in rows:
        if chosen is not None and row["model"] == str(chosen) and row["ys"]:
            return row
    scored = [r for r in rows if r["ys"] and not math.isnan(r["ys"][-1])]
    sign = -1 if lower_is_better else 1
    return max(scored, key=lambda r: sign * r["ys"][-1]) if scored else None


def _search_summary(state: dict[str, Any]) -> dict[str, Any]:
    rows = _trial_rows(state)
    best = _best(rows, state.get("best_model"), bool(state.get("lower_is_better")))
    return {
        "id": state["id"],
        "name": state.get("name", state["id"]),
        "status": state["status"],
        "n_models": state.get("n_models", len(rows)),
        "best_score": best["ys"][-1] if best else None,
        "calls": sum(r["xs"][-1] for r in rows if r["xs"]),
        "run": run_link(state),
        "scoring": state.get("scoring") or "score",
        "x_label": state.get("x_label") or "partial_fit calls",
    }


# -- trainings, jobs, serving --------------------------------------------------------------


def training_list(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The trainings (incremental and boosting), newest first."""
    rows = []
    for state in recent(activities(records), n=10_000):
        epochs = [e for e in state["events"] if e.get("event") == "epoch"]
        last = epochs[-1] if epochs else {}
        rows.append(
            {
                "id": state["id"],
                "name": state.get("name", state["id"]),
                "status": state["status"],
                "epochs": len(epochs),
                "metric": _text(last.get("scores") or state.get("scores") or ""),
                "rows_per_s": last.get("rows_per_s"),
                "run": run_link(state),
            }
        )
    return _columns(rows, ("id", "name", "status", "epochs", "metric", "rows_per_s", "run"))


def training_lines(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per recent training, its validation metric and rows/s against the epoch."""
    xs, ys, rates, names, colors = [], [], [], [], []
    for index, state in enumerate(recent(activities(records))):
        epochs = sorted(
            (e for e in state["events"] if e.get("event") == "epoch"),
            key=lambda e: e.get("epoch") or 0,
        )
        if not epochs:
            continue
        metric = state.get("scoring")
        xs.append([e.get("epoch") for e in epochs])
        ys.append([_number((e.get("scores") or {}).get(metric)) for e in epochs])
        rates.append([_number(e.get("rows_per_s")) for e in epochs])
        names.append(f"{state.get('name', state['id'])} ({metric})")
        colors.append(_PALETTE[index % len(_PALETTE)])
    return {"xs": xs, "ys": ys, "rates": rates, "name": names, "color": colors}


def job_list(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The coordinator's jobs, newest first: state, progress, best score, MLflow run."""
    rows = []
    for state in recent(activities(records), n=10_000):
        progress = [e for e in state["events"] if e.get("event") == "progress"]
        last = progress[-1] if progress else {}
        fraction = last.get("progress")
        rows.append(
            {
                "id": state["id"],
                "job_kind": state.get("job_kind", ""),
                "state": state["status"],
                "progress": f"{100 * fraction:.0f}%"
                if isinstance(fraction, int | float)
                else ("done" if state["status"] == "finished" else ""),
                "message": _text(last.get("message", "")),
                "best_score": last.get("best_score"),
                "run": run_link(state),
            }
        )
    columns = ("id", "job_kind", "state", "progress", "message", "best_score", "run")
    return _columns(rows, columns)


SERVING_WINDOW_S = 300
"""Seconds of serving history the serving page draws."""


def serving_lines(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per model and version, req/s, rows/s, p95 latency and mean batch rows against time
    (seconds before the newest record, at most :data:`SERVING_WINDOW_S`)."""
    series: dict[str, list[dict[str, Any]]] = {}
    seconds = [r for r in records if r.get("event") == "second"]
    newest = max((r.get("time") or 0 for r in seconds), default=0)
    for record in seconds:
        if newest - (record.get("time") or 0) <= SERVING_WINDOW_S:
            version = record.get("version")
            key = f"{record.get('model')} v{version}" if version else str(record.get("model"))
            series.setdefault(key, []).append(record)
    out: dict[str, list[Any]] = {
        k: [] for k in ("xs", "requests", "rows", "p95_ms", "batch_rows", "name", "color")
    }
    for index, (key, points) in enumerate(sorted(series.items())):
        points.sort(key=lambda r: r.get("time") or 0)
        out["xs"].append([(r.get("time") or 0) - newest for r in points])
        out["requests"].append([_number(r.get("requests")) for r in points])
        out["rows"].append([_number(r.get("rows")) for r in points])
        out["p95_ms"].append([_number(r.get("p95_ms")) for r in points])
        out["batch_rows"].append([_number(r.get("mean_batch_rows")) for r in points])
        out["name"].append(key)
        out["color"].append(_PALETTE[index % len(_PALETTE)])
    return out


def serving_table(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per model and version, its last second: req/s, rows/s, latency percentiles (ms),
    mean batch rows."""
    last: dict[tuple[Any, Any], dict[str, Any]] = {}
    for record in records:
        if record.get("event") == "second":
            last[(record.get("model"), record.get("version"))] = record
    rows = [
        {
            "model": model,
            "version": version,
            "requests": r.get("requests"),
            "rows": r.get("rows"),
            "p50_ms": r.get("p50_ms"),
            "p95_ms": r.get("p95_ms"),
            "p99_ms": r.get("p99_ms"),
            "batch_rows": r.get("mean_batch_rows"),
        }
        for (model, version), r in sorted(last.items(), key=lambda kv: str(kv[0]))
    ]
    columns = ("model", "version", "requests", "rows", "p50_ms", "p95_ms", "p99_ms", "batch_rows")
    return _columns(rows, columns)


# -- helpers -------------------------------------------------------------------------------


def points(lines: dict[str, Any], y: str = "ys") -> dict[str, list[Any]]:
    """The points of a lines view, flat (``x``, ``y``, ``color``), so that a line of a single
    point (a trial stopped after one call, a first epoch) is drawn as a dot."""
    out: dict[str, list[Any]] = {"x": [], "y": [], "color": []}
    for xs, ys, color in zip(lines["xs"], lines[y], lines["color"], strict=True):
        out["x"] += xs
        out["y"] += ys
        out["color"] += [color] * len(xs)
    return out


def _columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [row.get(name) for row in rows] for name in names}


def _number(value: Any) -> float:
    """A float for a plot (NaN, which Bokeh leaves out, for a missing value)."""
    return float(value) if isinstance(value, int | float) else math.nan


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    return str(value)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
