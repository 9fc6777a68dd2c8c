"""The pages: standalone Bokeh documents whose data sources poll the JSON routes.

Why standalone pages and not Bokeh server documents (the Dask dashboard's own kind): a server
document lives on the scheduler for as long as a browser tab is open (a session, a websocket,
a periodic callback per plot, all on the scheduler's event loop), while a standalone page
costs the scheduler nothing between polls: each poll is one small JSON response built from
cached views (``benchmarks/search.py`` measures a poll; a search with the pages open runs as
fast as without). BokehJS is served by the same scheduler under ``/scaleml/static/`` (no CDN),
and every link is relative, so the pages work behind a proxy or an HTTP prefix.
"""

from __future__ import annotations

import html
from typing import Any

from bokeh.embed import components
from bokeh.layouts import column, row
from bokeh.models import (
    AjaxDataSource,
    ColumnDataSource,
    DataTable,
    HoverTool,
    LabelSet,
    NumberFormatter,
    TableColumn,
)
from bokeh.plotting import figure
from bokeh.resources import Resources

POLL_MS = 1000
PAGES = (
    ("searches", "Searches", "score against partial_fit calls per trial, live; trial tables"),
    ("trainings", "Trainings", "validation metric and rows/s per epoch"),
    ("jobs", "Jobs", "the coordinator's jobs: state, progress, best score, MLflow runs"),
    ("serving", "Serving", "req/s, rows/s, latency percentiles and batch sizes per model"),
)
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 1.5em 2em; color: #222; }
nav { padding: .8em 0; border-bottom: 1px solid #ddd; margin-bottom: 1em; font-size: 15px; }
nav a { margin-right: 1.2em; color: #1f5fa8; text-decoration: none; }
nav a.here { font-weight: 600; color: #222; }
h1 { font-size: 22px; margin: .3em 0; } h2 { font-size: 17px; margin: 1.2em 0 .3em; }
p.hint { color: #555; font-size: 14px; } li { margin: .4em 0; font-size: 15px; }
"""


def page(title: str, here: str, body: str, model: Any = None, script: str = "") -> str:
    """A whole HTML page: navigation, ``body`` (HTML), an optional Bokeh ``model``."""
    nav = ['<a href="../status">Dask dashboard</a>', f'<a href="./" {_here(here, "")}>scaleml</a>']
    nav += [f'<a href="{slug}" {_here(here, slug)}>{name}</a>' for slug, name, _ in PAGES]
    bokeh_js, bokeh_div = "", ""
    if model is not None:
        resources = Resources(mode="server", root_url="./", components=_COMPONENTS)
        bokeh_script, bokeh_div = components(model)
        bokeh_js = resources.render_js() + bokeh_script
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} · scaleml</title><style>{_STYLE}</style>{bokeh_js}"
        f"</head><body><nav>{' '.join(nav)}</nav><h1>{html.escape(title)}</h1>{body}"
        f"{bokeh_div}{script}</body></html>"
    )


_COMPONENTS = ["bokeh", "bokeh-widgets", "bokeh-tables"]


def _here(here: str, slug: str) -> str:
    return 'class="here"' if here == slug else ""


def index(counts: dict[str, str]) -> str:
    """The index at ``/scaleml/``: every page, with what it shows now."""
    items = "".join(
        f'<li><a href="{slug}">{name}</a>: {html.escape(text)} '
        f"<span class='hint'>({html.escape(counts.get(slug, ''))})</span></li>"
        for slug, name, text in PAGES
    )
    body = (
        "<p class='hint'>scaleml's pages in this scheduler's Dask dashboard, fed by the records "
        "scaleml's work publishes on the scheduler (the last records of each kind are kept). "
        "Tasks are labelled with spans <code>scaleml/&lt;kind&gt;/&lt;id&gt;</code>: see "
        "<a href='../individual-fine-performance-metrics'>Fine Performance Metrics</a>.</p>"
        f"<ul>{items}</ul>"
    )
    return page("scaleml", "", body)


def _source(url: str, data: dict[str, Any], name: str) -> AjaxDataSource:
    return AjaxDataSource(
        data_url=url,
        polling_interval=POLL_MS,
        mode="replace",
        method="GET",
        if_modified=False,
        data=data,
        name=name,
    )


_NUMBERS = {"score", "best_score", "rows_per_s", "requests", "rows", "batch_rows"}
_NUMBERS |= {"p50_ms", "p95_ms", "p99_ms"}
_WIDE = {"params": 260, "name": 260, "message": 240, "run": 200, "metric": 240}


def _table(
    source: ColumnDataSource, columns: list[tuple[str, str]], width: int, height: int = 240
) -> DataTable:
    return DataTable(
        source=source,
        columns=[
            TableColumn(field=f, title=t, formatter=NumberFormatter(format="0,0.0[000]"))
            if f in _NUMBERS
            else TableColumn(field=f, title=t, width=_WIDE.get(f, 80))
            for f, t in columns
        ],
        width=width,
        height=height,
        index_position=None,
    )


def searches(listing: dict[str, Any], data: dict[str, dict[str, Any]]) -> str:
    """One plot per recent search (score against partial_fit calls, one line per trial,
    colour by Hyperband bracket, the best point marked) with its trial table."""
    ids = list(data)
    blocks = []
    for search_id in ids:
        at = listing["id"].index(search_id)
        name, status = listing["name"][at], listing["status"][at]
        blocks.append(_search_block(search_id, f"{name} · {status}", data[search_id]))
    if not blocks:
        body = "<p class='hint'>No search yet: this page reloads when one starts.</p>"
        model = None
    else:
        body = "<p class='hint'>Newest first; the plots update every second.</p>"
        model = column(*blocks)
    script = _reload_when_new("api/searches.json", ids)
    return page("Searches", "searches", body, model, script)


def _search_block(search_id: str, title: str, data: dict[str, Any]) -> Any:
    base = f"api/search/{search_id}"
    lines = _source(f"{base}/lines.json", data["lines"], f"lines-{search_id}")
    best = _source(f"{base}/best.json", data["best"], f"best-{search_id}")
    dots = _source(f"{base}/points.json", data["points"], f"points-{search_id}")
    trials = _source(f"{base}/trials.json", data["trials"], f"trials-{search_id}")
    plot = figure(
        title=title,
        width=660,
        height=340,
        x_axis_label=data["x_label"],
        y_axis_label=f"validation score ({data['scoring']})",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    plot.title.text_font_size = "14px"
    plot.xaxis.axis_label_text_font_size = plot.yaxis.axis_label_text_font_size = "13px"
    glyph = plot.multi_line(
        "xs", "ys", source=lines, line_color="color", line_width=2, alpha=0.8, legend_field="label"
    )
    plot.scatter("x", "y", source=dots, size=5, color="color", alpha=0.8)
    plot.scatter("x", "y", source=best, size=14, marker="star", color="black", legend_label="best")
    plot.add_layout(
        LabelSet(
            x="x",
            y="y",
            text="text",
            source=best,
            x_offset=-10,
            y_offset=-6,
            text_align="right",
            text_baseline="top",
            text_font_size="12px",
        )
    )

    plot.add_tools(HoverTool(renderers=[glyph], tooltips=[("model", "@model"), ("", "@label")]))
    plot.legend.label_text_font_size = "12px"
    plot.add_layout(plot.legend[0], "right")
    columns = [("model", "model"), ("bracket", "bracket"), ("params", "params")]
    columns += [("score", "score"), ("calls", "partial_fit calls")]
    columns += [("stopped", "stopped early"), ("run", "MLflow run")]
    return row(plot, _table(trials, columns, 660, height=340))


def trainings(listing: dict[str, Any], lines: dict[str, Any], dots: tuple[Any, Any]) -> str:
    """Validation metric and rows/s per epoch of the recent trainings; a table of all."""
    source = _source("api/trainings/lines.json", lines, "training-lines")
    metric_dots = _source("api/trainings/points.json", dots[0], "training-points")
    rate_dots = _source("api/trainings/rates.json", dots[1], "training-rates")
    table = _source("api/trainings.json", listing, "training-table")
    metric = figure(
        title="Validation metric per epoch",
        width=560,
        height=320,
        x_axis_label="epoch",
        y_axis_label="validation metric",
    )
    metric.multi_line(
        "xs", "ys", source=source, line_color="color", line_width=2, legend_field="name"
    )
    rate = figure(
        title="Training throughput per epoch",
        width=560,
        height=320,
        x_axis_label="epoch",
        y_axis_label="rows per second",
    )
    rate.multi_line("xs", "rates", source=source, line_color="color", line_width=2)
    metric.scatter("x", "y", source=metric_dots, size=7, color="color")
    rate.scatter("x", "y", source=rate_dots, size=7, color="color")
    for plot in (metric, rate):
        plot.title.text_font_size = "14px"
    metric.legend.location = "bottom_right"
    columns = [("name", "training"), ("status", "status"), ("epochs", "epochs")]
    columns += [("metric", "last metrics"), ("rows_per_s", "rows/s"), ("run", "MLflow run")]
    model = column(row(metric, rate), _table(table, columns, 1120))
    body = _hint(listing["id"], "training", "Incremental trainings and boosting, newest first.")
    return page("Trainings", "trainings", body, model)


def _hint(ids: list[Any], noun: str, text: str) -> str:
    if not ids:
        text = f"No {noun} yet: this page fills in when one starts."
    return f"<p class='hint'>{html.escape(text)}</p>"


def jobs(listing: dict[str, Any]) -> str:
    """The coordinator's jobs as a live table."""
    source = _source("api/jobs.json", listing, "job-table")
    columns = [("id", "job"), ("job_kind", "kind"), ("state", "state")]
    columns += [("progress", "progress"), ("message", "message"), ("best_score", "best score")]
    columns += [("run", "MLflow run")]
    body = _hint(listing["id"], "job", "Jobs run by the coordinator on this cluster, newest first.")
    return page("Jobs", "jobs", body, _table(source, columns, 1200))


def serving(lines: dict[str, Any], table: dict[str, Any]) -> str:
    """Req/s, rows/s, p95 latency and batch rows per model and version over the last minutes."""
    source = _source("api/serving/lines.json", lines, "serving-lines")
    rows = _source("api/serving.json", table, "serving-table")
    plots = []
    for field, title, label in (
        ("requests", "Requests per second", "requests/s"),
        ("rows", "Rows per second", "rows/s"),
        ("p95_ms", "Latency, 95th percentile", "milliseconds"),
        ("batch_rows", "Mean rows per batch", "rows"),
    ):
        plot = figure(
            title=title, width=560, height=260, x_axis_label="seconds ago", y_axis_label=label
        )
        plot.multi_line(
            "xs", field, source=source, line_color="color", line_width=2, legend_field="name"
        )
        plot.legend.location = "top_left"
        plot.title.text_font_size = "14px"
        plots.append(plot)
    columns = [("model", "model"), ("version", "version"), ("requests", "req/s")]
    columns += [("rows", "rows/s"), ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms")]
    columns += [("p99_ms", "p99 ms"), ("batch_rows", "mean batch rows")]
    model = column(row(plots[0], plots[1]), row(plots[2], plots[3]), _table(rows, columns, 1120))
    text = "Gateways with the Dask backend publish one record per model and version a second."
    body = _hint(table["model"], "prediction served", text)
    return page("Serving", "serving", body, model)


def _reload_when_new(url: str, shown: list[str]) -> str:
    """Reload the page when the newest searches are not the ones drawn."""
    ids = ",".join(shown)
    return (
        "<script>setInterval(async () => { try {"
        f" const r = await fetch('{url}'); const d = await r.json();"
        f" if (d.id.slice(0, {len(shown) or 6}).join(',') !== '{html.escape(ids)}')"
        " location.reload(); } catch (e) {} }, 3000);</script>"
    )
