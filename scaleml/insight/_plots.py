"""Bokeh figures of an evaluation (interactive: hover values, pan, zoom); one function each."""

from __future__ import annotations

import html
from typing import Any

from bokeh.models import ColumnDataSource, Div, HoverTool, LinearColorMapper
from bokeh.palettes import Blues256, Category10_10
from bokeh.plotting import figure

WIDTH, HEIGHT = 520, 400
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
_FONT = "font-family: system-ui, -apple-system, 'Segoe UI', sans-serif;"


def _figure(title: str, x_label: str, y_label: str, **options: Any) -> Any:
    plot = figure(
        title=title,
        width=options.pop("width", WIDTH),
        height=options.pop("height", HEIGHT),
        tools=TOOLS,
        x_axis_label=x_label,
        y_axis_label=y_label,
        **options,
    )
    plot.title.text_font_size = "14px"
    plot.toolbar.logo = None
    return plot


def _legend(plot: Any) -> None:
    if plot.legend:
        plot.legend.location = "bottom_right"
        plot.legend.click_policy = "hide"
        plot.legend.label_text_font_size = "11px"


def heading(text: str, level: int = 2) -> Div:
    """A section heading."""
    return Div(
        text=f"<h{level} style='{_FONT} margin:18px 0 4px 0; color:#1f2937'>"
        f"{html.escape(text)}</h{level}>",
        width=1060,
    )


def table(rows: list[list[Any]], header: list[str], *, width: int = 520) -> Div:
    """An HTML table in a Div (numbers with 4 significant digits)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='{'n' if isinstance(v, int | float) else 't'}'>"
            f"{html.escape(_number(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    style = (
        f"<style>.sm-t{{border-collapse:collapse;{_FONT}font-size:13px}}"
        ".sm-t th{background:#f3f4f6;text-align:left;padding:4px 10px;"
        "border-bottom:1px solid #d1d5db}"
        ".sm-t td{padding:3px 10px;border-bottom:1px solid #eef0f3}"
        ".sm-t td.n{text-align:right;font-variant-numeric:tabular-nums}</style>"
    )
    return Div(text=f"{style}<table class='sm-t'><tr>{head}</tr>{body}</table>", width=width)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def confusion(curves: dict[str, Any]) -> Any:
    """Confusion-matrix heatmap: counts and the share of each true label's rows."""
    labels = curves["labels"]
    counts, normalized = curves["confusion_matrix"], curves["confusion_matrix_normalized"]
    data: dict[str, list[Any]] = {k: [] for k in ("true", "pred", "count", "share", "text")}
    for i, true in enumerate(labels):
        for j, pred in enumerate(labels):
            data["true"].append(true)
            data["pred"].append(pred)
            data["count"].append(counts[i][j])
            data["share"].append(normalized[i][j])
            data["text"].append(f"{counts[i][j]:,}\n{normalized[i][j]:.1%}")
    plot = _figure(
        "Confusion matrix",
        "predicted",
        "true",
        x_range=labels,
        y_range=list(reversed(labels)),
        width=440,
    )
    mapper = LinearColorMapper(palette=Blues256[::-1][40:], low=0.0, high=1.0)
    source = ColumnDataSource(data)
    plot.rect(
        "pred", "true", 1, 1, source=source, fill_color={"field": "share", "transform": mapper}
    )
    plot.text(
        "pred",
        "true",
        text="text",
        source=source,
        text_align="center",
        text_baseline="middle",
        text_font_size="12px",
        text_color="#111827",
    )
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("true", "@true"),
                ("predicted", "@pred"),
                ("rows", "@count"),
                ("share of true", "@share{0.0%}"),
            ]
        )
    )
    plot.grid.visible = False
    return plot


def _lines(
    plot: Any, series: dict[str, dict[str, list[float]]], x: str, y: str, tips: list
) -> None:
    for index, (label, curve) in enumerate(series.items()):
        source = ColumnDataSource({key: value for key, value in curve.items()})
        color = Category10_10[index % 10]
        plot.line(x, y, source=source, line_width=2, color=color, legend_label=f"class {label}")
    plot.add_tools(HoverTool(tooltips=tips, mode="mouse"))
    _legend(plot)


def roc(curves: dict[str, Any], metrics: dict[str, float]) -> Any:
    """ROC curves (one per class, one-vs-rest) and the chance diagonal."""
    auc = metrics.get("roc_auc")
    title = "ROC curve" + (f" (AUC {auc:.4f})" if auc is not None else "")
    plot = _figure(title, "false positive rate", "true positive rate")
    plot.line([0, 1], [0, 1], color="#9ca3af", line_dash="dashed")
    _lines(
        plot,
        curves["roc"],
        "fpr",
        "tpr",
        [("FPR", "@fpr{0.000}"), ("TPR", "@tpr{0.000}"), ("threshold", "@threshold{0.000}")],
    )
    return plot


def precision_recall(curves: dict[str, Any], metrics: dict[str, float]) -> Any:
    """Precision-recall curves."""
    ap = metrics.get("average_precision")
    title = "Precision-recall" + (f" (AP {ap:.4f})" if ap is not None else "")
    plot = _figure(title, "recall", "precision", y_range=(0, 1.02))
    _lines(
        plot,
        curves["precision_recall"],
        "recall",
        "precision",
        [
            ("recall", "@recall{0.000}"),
            ("precision", "@precision{0.000}"),
            ("threshold", "@threshold{0.000}"),
        ],
    )
    return plot


def calibration(curves: dict[str, Any]) -> Any:
    """Reliability curve: observed frequency against mean predicted probability per bin."""
    plot = _figure(
        "Calibration (reliability)",
        "mean predicted probability",
        "observed frequency",
        x_range=(0, 1),
        y_range=(0, 1),
    )
    plot.line([0, 1], [0, 1], color="#9ca3af", line_dash="dashed", legend_label="perfect")
    for index, (label, curve) in enumerate(curves["calibration"].items()):
        source = ColumnDataSource(curve)
        color = Category10_10[index % 10]
        plot.line(
            "prob_pred",
            "prob_true",
            source=source,
            color=color,
            line_width=2,
            legend_label=f"class {label}",
        )
        plot.scatter("prob_pred", "prob_true", source=source, color=color, size=7)
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("predicted", "@prob_pred{0.000}"),
                ("observed", "@prob_true{0.000}"),
                ("rows", "@count"),
            ]
        )
    )
    _legend(plot)
    plot.legend.location = "top_left"
    return plot


def gain(curves: dict[str, Any]) -> Any:
    """Cumulative gain: share of a class's rows found in the top-scored share of rows."""
    plot = _figure(
        "Cumulative gain", "share of rows (highest scores first)", "share of class found"
    )
    plot.line([0, 1], [0, 1], color="#9ca3af", line_dash="dashed")
    _lines(
        plot,
        curves["lift_gain"],
        "population",
        "gain",
        [("rows", "@population{0.0%}"), ("gain", "@gain{0.0%}"), ("lift", "@lift{0.00}")],
    )
    return plot


def lift(curves: dict[str, Any]) -> Any:
    """Lift: the class's rate in the top-scored rows over its overall rate."""
    plot = _figure("Lift", "share of rows (highest scores first)", "lift")
    plot.line([0, 1], [1, 1], color="#9ca3af", line_dash="dashed")
    _lines(
        plot,
        curves["lift_gain"],
        "population",
        "lift",
        [("rows", "@population{0.0%}"), ("lift", "@lift{0.00}")],
    )
    return plot


def thresholds(curves: dict[str, Any], ks: float | None) -> Any:
    """Precision, recall, F1, accuracy and the share called positive, by decision threshold."""
    title = "Metrics by decision threshold" + (f" (KS {ks:.3f})" if ks is not None else "")
    plot = _figure(
        title,
        "threshold on the positive class's probability",
        "value",
        x_range=(0, 1),
        y_range=(0, 1.02),
    )
    source = ColumnDataSource(curves["thresholds"])
    names = ["precision", "recall", "f1", "accuracy", "predicted_positive_rate"]
    for index, name in enumerate(names):
        plot.line(
            "threshold",
            name,
            source=source,
            line_width=2,
            color=Category10_10[index],
            legend_label=name.replace("_", " "),
        )
    plot.add_tools(
        HoverTool(
            tooltips=[("threshold", "@threshold{0.00}")]
            + [(n.replace("_", " "), f"@{n}{{0.000}}") for n in names],
            mode="vline",
        )
    )
    _legend(plot)
    plot.legend.location = "bottom_left"
    return plot


def predicted_vs_actual(curves: dict[str, Any]) -> Any:
    """Predicted against actual values (a sample of rows) and the identity line."""
    points = curves["predicted_vs_actual"]
    plot = _figure(
        f"Predicted vs actual ({len(points['actual']):,} sampled rows)", "actual", "predicted"
    )
    low = min(min(points["actual"]), min(points["predicted"]))
    high = max(max(points["actual"]), max(points["predicted"]))
    plot.line([low, high], [low, high], color="#9ca3af", line_dash="dashed")
    plot.scatter(
        "actual",
        "predicted",
        source=ColumnDataSource(points),
        size=4,
        alpha=0.5,
        color=Category10_10[0],
    )
    plot.add_tools(
        HoverTool(tooltips=[("actual", "@actual{0.000}"), ("predicted", "@predicted{0.000}")])
    )
    return plot


def residuals(curves: dict[str, Any]) -> Any:
    """Histogram of residuals (actual - predicted) of the sampled rows."""
    hist = curves["residuals"]
    edges = hist["edges"]
    source = ColumnDataSource({"left": edges[:-1], "right": edges[1:], "count": hist["counts"]})
    plot = _figure("Residual distribution (actual - predicted)", "residual", "rows")
    plot.quad(
        left="left",
        right="right",
        top="count",
        bottom=0,
        source=source,
        fill_color=Category10_10[0],
        line_color="white",
        fill_alpha=0.8,
    )
    plot.add_tools(
        HoverTool(tooltips=[("from", "@left{0.000}"), ("to", "@right{0.000}"), ("rows", "@count")])
    )
    return plot


def learning_epochs(epochs: dict[str, list[list[float]]]) -> Any:
    """A training's validation metrics per epoch."""
    plot = _figure("Learning curve (validation metric by epoch)", "epoch", "value")
    for index, (name, points) in enumerate(sorted(epochs.items())):
        source = ColumnDataSource({"step": [p[0] for p in points], "value": [p[1] for p in points]})
        color = Category10_10[index % 10]
        plot.line("step", "value", source=source, color=color, line_width=2, legend_label=name)
        plot.scatter("step", "value", source=source, color=color, size=5)
    plot.add_tools(HoverTool(tooltips=[("epoch", "@step"), ("value", "@value{0.0000}")]))
    _legend(plot)
    return plot


def learning_trials(trials: dict[str, list[list[float]]]) -> Any:
    """A search's score of every trial against its partial_fit calls (dask-ml's picture)."""
    plot = _figure("Search: score by partial_fit calls, per trial", "partial_fit calls", "score")
    for index, (trial, points) in enumerate(sorted(trials.items())):
        source = ColumnDataSource(
            {
                "calls": [p[0] for p in points],
                "score": [p[1] for p in points],
                "trial": [trial] * len(points),
            }
        )
        plot.line(
            "calls",
            "score",
            source=source,
            color=Category10_10[index % 10],
            line_width=1.5,
            alpha=0.8,
        )
    plot.add_tools(
        HoverTool(tooltips=[("trial", "@trial"), ("calls", "@calls"), ("score", "@score{0.0000}")])
    )
    return plot


def bars(title: str, labels: list[str], values: list[float], y_label: str) -> Any:
    """A bar chart of one value per label (groups, models)."""
    plot = _figure(title, "", y_label, x_range=labels)
    source = ColumnDataSource({"label": labels, "value": values})
    plot.vbar(x="label", top="value", width=0.7, source=source, color=Category10_10[0], alpha=0.85)
    plot.add_tools(HoverTool(tooltips=[("", "@label"), (y_label, "@value{0.0000}")]))
    plot.xaxis.major_label_orientation = 0.6 if max(len(x) for x in labels) > 8 else 0
    plot.y_range.start = 0
    return plot
