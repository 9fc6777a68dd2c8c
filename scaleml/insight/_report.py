"""Self-contained HTML reports drawn with Bokeh (its JavaScript inlined: opens offline).

Extra sections (e.g. SHAP plots) are added by passing ``sections``: a list of Bokeh layouts
or figures, or ``(title, layout)`` pairs; each is placed after the built-in sections under
its own heading.
"""

from __future__ import annotations

import html
import os
import uuid
from pathlib import Path
from typing import Any

from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import Div
from bokeh.resources import INLINE

from scaleml.insight import _plots as plots
from scaleml.insight._result import EvaluationResult

Section = Any  # a Bokeh LayoutDOM, or a (title, LayoutDOM) pair

_SUMMARY_METRICS = {
    "classifier": (
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "f1_macro",
        "f1_weighted",
        "precision_macro",
        "recall_macro",
        "mcc",
        "cohen_kappa",
        "jaccard",
        "jaccard_macro",
        "log_loss",
        "brier_score",
        "roc_auc",
        "average_precision",
        "ks_statistic",
        "hamming_loss",
        "zero_one_loss",
    ),
    "regressor": (
        "r2",
        "explained_variance",
        "mae",
        "mse",
        "rmse",
        "median_absolute_error",
        "max_error",
        "mape",
        "residual_mean",
        "residual_std",
    ),
}


def evaluation_layout(result: EvaluationResult) -> list[Any]:
    """The built-in sections of one evaluation's report, as Bokeh layouts."""
    parts: list[Any] = [_header(result)]
    parts.append(plots.heading("Metrics"))
    metric_rows = [
        [name.replace("_", " "), result.metrics[name]]
        for name in _SUMMARY_METRICS[result.kind]
        if name in result.metrics
    ]
    side: list[Any] = [plots.table(metric_rows, ["metric", "value"], width=360)]
    if result.per_class:
        per_class = [
            [label, v["precision"], v["recall"], v["f1"], v["support"]]
            for label, v in list(result.per_class.items())[:30]
        ]
        side.append(
            plots.table(per_class, ["class", "precision", "recall", "F1", "support"], width=360)
        )
    curves, metrics = result.curves, result.metrics
    if result.kind == "classifier":
        parts.append(row(column(*side), plots.confusion(curves)))
        if curves.get("roc"):
            parts.append(plots.heading("Curves"))
            parts.append(row(plots.roc(curves, metrics), plots.precision_recall(curves, metrics)))
            parts.append(row(plots.calibration(curves), plots.gain(curves)))
            second = [plots.lift(curves)]
            if "thresholds" in curves:
                second.append(plots.thresholds(curves, metrics.get("ks_statistic")))
            parts.append(row(*second))
    else:
        parts.append(row(column(*side)))
        if curves:
            parts.append(plots.heading("Residuals"))
            parts.append(row(plots.predicted_vs_actual(curves), plots.residuals(curves)))
    parts.extend(_learning(result.history))
    if result.fairness:
        parts.extend(_fairness(result))
    return parts


def write_report(
    result: EvaluationResult,
    path: str | Path,
    *,
    sections: list[Section] | None = None,
    title: str | None = None,
) -> Path:
    """Write ``result``'s report to ``path`` (through a temporary name); return the path."""
    parts = evaluation_layout(result)
    return write_layout(parts, path, sections=sections, title=title or f"scaleml · {result.name}")


def write_layout(
    parts: list[Any],
    path: str | Path,
    *,
    sections: list[Section] | None = None,
    title: str = "scaleml report",
) -> Path:
    """Write Bokeh layouts (and extra ``sections``) as one self-contained HTML page."""
    parts = [*parts, *_extra(sections or [])]
    page = file_html(column(*parts, spacing=6), resources=INLINE, title=title)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def _extra(sections: list[Section]) -> list[Any]:
    parts: list[Any] = []
    for section in sections:
        if isinstance(section, tuple):
            heading_text, layout = section
            parts.append(plots.heading(str(heading_text)))
            parts.append(layout)
        else:
            parts.append(section)
    return parts


def _header(result: EvaluationResult) -> Div:
    data = result.dataset
    facts = [
        ("model", result.model_uri or result.name),
        ("kind", result.kind),
        ("data", f"{data.get('source', '')} (target {data.get('target')})"),
        ("rows", f"{result.rows:,} in {data.get('blocks')} of {data.get('n_blocks')} blocks"),
        ("fingerprint", str(data.get("fingerprint", ""))[:16]),
        ("time", f"{result.seconds:.2f} s ({result.rows_per_second:,.0f} rows/s)"),
    ]
    items = "".join(
        f"<div><span style='color:#6b7280'>{k}</span> {html.escape(str(v))}</div>" for k, v in facts
    )
    return Div(
        text=(
            '<div style="font-family: system-ui, sans-serif; border-bottom: 2px solid #2563eb; '
            'padding-bottom: 8px; width: 1040px">'
            f"<h1 style='margin:4px 0 8px 0; font-size:24px; color:#111827'>"
            f"Evaluation of {html.escape(result.name)}</h1>"
            "<div style='display:grid; grid-template-columns: repeat(3, 1fr); gap: 4px 24px; "
            f"font-size:13px'>{items}</div></div>"
        ),
        width=1060,
    )


def _learning(history: dict[str, Any]) -> list[Any]:
    figures = []
    if history.get("epochs"):
        figures.append(plots.learning_epochs(history["epochs"]))
    if history.get("trials"):
        figures.append(plots.learning_trials(history["trials"]))
    if not figures:
        return []
    return [plots.heading("Learning curves"), row(*figures)]


def _fairness(result: EvaluationResult) -> list[Any]:
    fair = result.fairness or {}
    by_group = fair["by_group"]
    labels = list(by_group)
    main = "accuracy" if result.kind == "classifier" else "mae"
    second = "selection_rate" if result.kind == "classifier" else "r2"
    names = [main, second] if result.kind == "classifier" else [main, second, "rmse"]
    if result.kind == "classifier":
        names += [n for n in ("recall", "f1", "roc_auc", "f1_macro") if n in fair["difference"]]
    rows = [
        [label, by_group[label]["count"], *(by_group[label].get(n) for n in names)]
        for label in labels
    ]
    rows = [[r[0], int(r[1]), *(v if v is not None else "-" for v in r[2:])] for r in rows]
    summary = [[f"difference of {n}", fair["difference"].get(n)] for n in names]
    summary += [[f"ratio of {n}", fair["ratio"].get(n)] for n in names]
    for key in ("demographic_parity_difference", "equalized_odds_difference"):
        if key in fair:
            summary.append([key.replace("_", " "), fair[key]])
    title = " × ".join(fair["sensitive_features"])
    return [
        plots.heading(f"Fairness by {title}"),
        row(
            plots.bars(f"{main} by group", labels, [by_group[g][main] for g in labels], main),
            plots.bars(f"{second} by group", labels, [by_group[g][second] for g in labels], second),
        ),
        row(
            plots.table(rows, ["group", "rows", *names], width=640),
            plots.table([[k, v] for k, v in summary], ["between groups", "value"], width=400),
        ),
    ]
