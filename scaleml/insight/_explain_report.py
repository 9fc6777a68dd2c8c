"""The SHAP section of the insight report, and a self-contained HTML page of it: Bokeh's
JavaScript inlined (no CDN: it opens offline) and shap's PNG plots embedded as data URIs."""

from __future__ import annotations

import base64
import html
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scaleml.insight import Explanation

_PNG_TITLES = {
    "summary": "Summary (beeswarm, shap)",
    "bar": "Mean |SHAP value| (shap style)",
    "force": "Force plot of one row",
    "decision": "Decision plot (misclassified rows dashed)",
}


def explanation_layout(explanation: Explanation, *, pngs: bool = True) -> Any:
    """A Bokeh layout of the explanation: a heading and its facts, the importance table,
    interactive importances, beeswarm and dependence plots, then shap's own plots."""
    from bokeh.layouts import column, row
    from bokeh.models import Div

    from scaleml.insight._explain_plots import (
        beeswarm_figure,
        dependence_figures,
        importance_figure,
    )

    parts: list[Any] = [Div(text=_heading(explanation), width=1200)]
    parts.append(row(importance_figure(explanation), Div(text=_table(explanation), width=520)))
    parts.append(beeswarm_figure(explanation))
    dependence = dependence_figures(explanation)
    if dependence:
        parts.append(Div(text="<h3>Dependence of the top features</h3>", width=1200))
        parts.append(row(*dependence))
    if pngs:
        from scaleml.insight._shap_plots import shap_pngs

        images = shap_pngs(explanation)
        if images:
            parts.append(Div(text=_images(images), width=1300))
    return column(*parts, sizing_mode="fixed")


def _heading(explanation: Explanation) -> str:
    from scaleml.insight._explain_result import OUTPUT_MEANINGS

    outputs = ", ".join(html.escape(o) for o in explanation.output_names)
    bases = ", ".join(f"{v:.4g}" for v in explanation.base_values)
    meaning = html.escape(OUTPUT_MEANINGS.get(explanation.output, explanation.output))
    return (
        "<h2>SHAP explanations</h2>"
        f"<p>Explainer <b>{html.escape(explanation.explainer)}</b>, explaining <b>"
        f"{html.escape(explanation.output)}</b> ({meaning}); outputs: {outputs}.<br>"
        f"Global importances over <b>{explanation.n_rows:,}</b> rows; "
        f"{len(explanation.sample_values):,} sampled rows plotted. Base value(s): {bases}. "
        f"Additivity (base + sum of contributions = output): largest error "
        f"{explanation.additivity_max_error:.2g}.</p>"
    )


def _table(explanation: Explanation) -> str:
    table = explanation.importances()
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(v) if isinstance(v, str) else f'{v:.4g}'}</td>" for v in values
        )
        + "</tr>"
        for values in table.itertuples(index=False)
    )
    style = "border-collapse:collapse;font:13px sans-serif"
    return (
        f"<table style='{style}' border='1' cellpadding='4'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _images(images: dict[str, bytes]) -> str:
    cells = []
    for name, png in images.items():
        title = _PNG_TITLES.get(name) or f"Dependence: {name.removeprefix('dependence_')} (shap)"
        data = base64.b64encode(png).decode()
        cells.append(
            f"<figure style='display:inline-block;margin:8px;vertical-align:top'>"
            f"<figcaption style='font:bold 14px sans-serif'>{html.escape(title)}</figcaption>"
            f"<img alt='{html.escape(name)}' style='max-width:620px' "
            f"src='data:image/png;base64,{data}'></figure>"
        )
    return "<h3>shap's plots</h3>" + "".join(cells)


def report_html(explanation: Explanation, title: str = "scaleml explanation") -> str:
    """A whole page of :func:`explanation_layout`, Bokeh's JavaScript inlined."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    return file_html(explanation_layout(explanation), INLINE, title)


def write_report(explanation: Explanation, path: str | Path, title: str | None = None) -> Path:
    """Write :func:`report_html` to ``path`` through a temporary name; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        temporary.write_text(report_html(explanation, title or "scaleml explanation"))
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target
