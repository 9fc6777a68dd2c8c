"""The report of a comparison: the leaderboard, a bar chart of the ranking metric, the models'
ROC curves on one plot (classifiers), then the best model's full evaluation."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bokeh.layouts import row
from bokeh.models import ColumnDataSource, Div, HoverTool
from bokeh.palettes import Category10_10

from scaleml.insight import _plots as plots
from scaleml.insight._report import evaluation_layout, write_layout

if TYPE_CHECKING:
    from scaleml.insight._compare import Comparison


def write_comparison_report(
    comparison: Comparison, path: str | Path, *, sections: list[Any] | None = None
) -> Path:
    """Write ``comparison``'s self-contained HTML report to ``path``."""
    board = comparison.leaderboard
    columns = [k for k in board[0] if k not in ("model_uri",)]
    header = Div(
        text=(
            "<div style='font-family: system-ui, sans-serif; border-bottom: 2px solid #2563eb;"
            " padding-bottom: 8px; width: 1040px'><h1 style='margin:4px 0 8px 0; "
            f"font-size:24px'>Comparison of {len(board)} models</h1><div style='font-size:13px'>"
            f"{html.escape(str(comparison.dataset.get('source', '')))} · "
            f"{comparison.rows:,} rows · ranked by {html.escape(comparison.sort_by)} · one pass "
            f"in {comparison.seconds:.2f} s</div></div>"
        ),
        width=1060,
    )
    parts: list[Any] = [
        header,
        plots.heading("Leaderboard"),
        plots.table([[r[c] for c in columns] for r in board], columns, width=1000),
        row(
            plots.bars(
                f"{comparison.sort_by} by model",
                [r["name"] for r in board],
                [r[comparison.sort_by] or 0.0 for r in board],
                comparison.sort_by,
            ),
            *([_roc_overlay(comparison)] if comparison.kind == "classifier" else []),
        ),
        plots.heading(f"Best model: {comparison.best.name}", level=2),
    ]
    parts.extend(evaluation_layout(comparison.best)[1:])
    return write_layout(
        parts, path, sections=sections, title=f"scaleml · comparison by {comparison.sort_by}"
    )


def _roc_overlay(comparison: Comparison) -> Any:
    plot = plots._figure("ROC curves of the models", "false positive rate", "true positive rate")
    plot.line([0, 1], [0, 1], color="#9ca3af", line_dash="dashed")
    for index, result in enumerate(comparison.results[:10]):
        curves = result.curves.get("roc") or {}
        if not curves:
            continue
        curve = next(iter(curves.values()))  # multiclass: the first class's one-vs-rest curve
        auc = result.metrics.get("roc_auc")
        source = ColumnDataSource(curve)
        plot.line(
            "fpr",
            "tpr",
            source=source,
            line_width=2,
            color=Category10_10[index % 10],
            legend_label=f"{result.name[:40]} (AUC {auc:.3f})" if auc else result.name[:40],
        )
    plot.add_tools(HoverTool(tooltips=[("FPR", "@fpr{0.000}"), ("TPR", "@tpr{0.000}")]))
    plots._legend(plot)
    return plot
