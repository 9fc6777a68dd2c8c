"""The drift report as a self-contained Bokeh page (resources inline: no CDN): a table of each
feature's scores and status, and the training and new shares on the contract's bins."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from scaleml.monitor._contract import Contract
from scaleml.monitor._validate import Validation

_COLOURS = {"no change": "#2b8a3e", "moderate": "#e67700", "significant": "#c92a2a"}


def write_report(contract: Contract, validation: Validation, path: str | Path, title: str) -> Path:
    """Write the page to ``path`` (through a temporary file renamed at the end)."""
    from bokeh.embed import file_html
    from bokeh.layouts import column, gridplot
    from bokeh.models import ColumnDataSource, DataTable, Div, TableColumn
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    names = list(validation.features)
    rows = {
        "feature": names,
        "status": [validation.features[n]["status"] for n in names],
        "scores": [
            ", ".join(f"{k} {v:.3f}" for k, v in validation.features[n]["scores"].items())
            for n in names
        ],
        "outside": [validation.violations.get(n, {}).get("rows", 0) for n in names],
    }
    table = DataTable(
        source=ColumnDataSource(rows),
        columns=[
            TableColumn(field="feature", title="feature"),
            TableColumn(field="status", title="status"),
            TableColumn(field="scores", title="scores"),
            TableColumn(field="outside", title="rows outside the contract"),
        ],
        width=900,
        height=min(40 + 26 * len(names), 420),
        index_position=None,
    )
    plots = [_feature_plot(figure, contract, validation, name) for name in names]
    drifted = validation.drifted
    header = Div(
        text=f"<h1>{title}</h1><p>{validation.rows:,} rows checked. "
        + (f"<b>Drifted: {', '.join(drifted)}</b>" if drifted else "No drift.")
        + "</p>",
        width=900,
    )
    layout = column(header, table, gridplot(plots, ncols=3, width=300, height=220))
    html = file_html(layout, INLINE, title)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(html)
    os.replace(temporary, target)
    return target


def _feature_plot(figure: Any, contract: Contract, validation: Validation, name: str) -> Any:
    from bokeh.models import Range1d

    reference = contract.features[name]
    observed = validation.observed.get(name)
    status = validation.features[name]["status"]
    plot = figure(title=f"{name}: {status}", toolbar_location=None)
    plot.title.text_color = _COLOURS.get(status, "black")
    if reference.kind == "numeric":
        labels = [str(i) for i in range(len(reference.proportions))]
        new = np.zeros(len(labels))
        if observed is not None and observed.kind == "numeric":
            new = _shares_on(reference, observed)
    else:
        labels = [str(c) for c in reference.categories]
        new = np.zeros(len(labels))
        if observed is not None and observed.kind == "categorical":
            shares = dict(zip(map(str, observed.categories), observed.proportions, strict=True))
            new = np.asarray([shares.get(label, 0.0) for label in labels])
    plot.x_range.range_padding = 0.05
    x = np.arange(len(labels))
    plot.vbar(x=x - 0.2, top=reference.proportions, width=0.4, color="#868e96",
              legend_label="training")  # fmt: skip
    plot.vbar(x=x + 0.2, top=new, width=0.4, color="#1c7ed6", legend_label="new data")
    plot.legend.location = "top_left"
    plot.legend.background_fill_alpha = 0.5
    plot.legend.label_text_font_size = "8pt"
    plot.legend.glyph_height = 10
    plot.legend.padding = 2
    top = max([*reference.proportions, *np.asarray(new).tolist(), 0.01])
    plot.y_range = Range1d(0, top * 1.5)  # room for the legend above the bars
    if reference.kind != "numeric":
        plot.xaxis.ticker = list(range(len(labels)))
        plot.xaxis.major_label_overrides = dict(enumerate(labels))
    plot.yaxis.axis_label = "share of rows"
    plot.xaxis.axis_label = "contract bin" if reference.kind == "numeric" else "category"
    return plot


def _shares_on(reference: Any, observed: Any) -> np.ndarray:
    """The observed column's shares on the reference's bins, from its quantiles."""
    probabilities = np.linspace(0.0, 1.0, len(observed.quantiles))
    cdf = np.interp(reference.interior_edges, observed.quantiles, probabilities, 0.0, 1.0)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))
