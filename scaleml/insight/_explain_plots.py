"""Interactive Bokeh figures of an explanation: importances (per output), a beeswarm of the
sample's SHAP values coloured by feature value, and dependence plots of the top features
coloured by their strongest interaction, with hover values everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from scaleml.insight._shap_plots import misclassified, strongest_interaction

if TYPE_CHECKING:
    from scaleml.insight import Explanation

_PALETTE = ("#1e88e5", "#ff0d57", "#13b755", "#7c52ff", "#ffc000", "#00aeef")


def importance_figure(explanation: Explanation) -> Any:
    """Horizontal bars of mean |SHAP value| per feature (stacked by output when several)."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    order = list(np.argsort(explanation.global_importance))
    features = [explanation.features[i] for i in order]
    names = explanation.output_names
    data: dict[str, Any] = {"feature": features}
    labels = names if len(names) > 1 else ["all rows"]
    for position, label in enumerate(labels):
        data[label] = [float(explanation.mean_abs[position, i]) / len(names) for i in order]
    plot = figure(
        y_range=features,
        height=max(220, 28 * len(features) + 80),
        width=620,
        title=f"Mean |SHAP value| over {explanation.n_rows:,} rows ({explanation.output})",
        toolbar_location="right",
        tools="save,reset",
    )
    colours = [_PALETTE[i % len(_PALETTE)] for i in range(len(names))]
    renderers = plot.hbar_stack(
        labels,
        y="feature",
        height=0.7,
        color=colours,
        source=ColumnDataSource(data),
        legend_label=labels,
    )
    for renderer, label in zip(renderers, labels, strict=True):
        renderer.name = label
    tips = [("feature", "@feature"), ("output", "$name"), ("mean |SHAP|", "@$name")]
    plot.add_tools(HoverTool(renderers=renderers, tooltips=tips))
    plot.legend.location = "bottom_right"
    plot.xaxis.axis_label = "mean |SHAP value|" + (" (stacked by output)" if len(names) > 1 else "")
    return plot


def beeswarm_figure(explanation: Explanation, output: str | int | None = None) -> Any:
    """Each sampled row's SHAP value per feature (jittered), coloured by the feature's value
    (blue low, red high); misclassified rows drawn with a black outline."""
    from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper
    from bokeh.plotting import figure

    index = explanation.output_index(output)
    order = list(np.argsort(explanation.global_importance))
    features = [explanation.features[i] for i in order]
    rng = np.random.default_rng(0)
    wrong = misclassified(explanation)
    xs, ys, colours, raw, rows, outline = [], [], [], [], [], []
    for column in order:
        values = explanation.sample_values[:, index, column]
        feature_values = explanation.sample_data[explanation.features[column]].to_numpy(float)
        low, high = np.nanpercentile(feature_values, [5, 95]) if len(values) else (0.0, 1.0)
        scaled = np.clip((feature_values - low) / ((high - low) or 1.0), 0, 1)
        jitter = rng.uniform(-0.3, 0.3, size=len(values))
        xs += values.tolist()
        ys += [(explanation.features[column], float(j)) for j in jitter]
        colours += scaled.tolist()
        raw += feature_values.tolist()
        rows += list(range(len(values)))
        outline += ["black" if w else None for w in wrong]
    source = ColumnDataSource(
        {"shap": xs, "y": ys, "scaled": colours, "value": raw, "row": rows, "line": outline}
    )
    plot = figure(
        y_range=features,
        height=max(260, 34 * len(features) + 80),
        width=720,
        title=f"SHAP values of {len(explanation.sample_values):,} sampled rows "
        f"({explanation.output} of {explanation.output_names[index]})",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    mapper = LinearColorMapper(palette=_blue_red(), low=0, high=1)
    renderer = plot.scatter(
        "shap",
        "y",
        source=source,
        size=5,
        alpha=0.7,
        fill_color={"field": "scaled", "transform": mapper},
        line_color="line",
    )
    plot.add_tools(
        HoverTool(
            renderers=[renderer],
            tooltips=[("row", "@row"), ("feature value", "@value{0.000}"), ("SHAP", "@shap")],
        )
    )
    plot.xaxis.axis_label = "SHAP value (impact on the model output)"
    plot.ygrid.grid_line_color = None
    return plot


def dependence_figures(
    explanation: Explanation, output: str | int | None = None, n: int = 3
) -> list[Any]:
    """SHAP value against feature value for the ``n`` top features, coloured by each one's
    strongest interaction."""
    from bokeh.models import ColorBar, ColumnDataSource, HoverTool, LinearColorMapper
    from bokeh.plotting import figure

    index = explanation.output_index(output)
    figures = []
    for feature in explanation.top_features(n):
        column = explanation.features.index(feature)
        partner = strongest_interaction(explanation, column, index)
        x = explanation.sample_data[feature].to_numpy(float)
        colour_name = explanation.features[partner] if partner is not None else feature
        colour = explanation.sample_data[colour_name].to_numpy(float)
        source = ColumnDataSource(
            {"x": x, "shap": explanation.sample_values[:, index, column], "c": colour}
        )
        mapper = LinearColorMapper(
            palette=_blue_red(),
            low=float(np.nanpercentile(colour, 5)) if len(colour) else 0.0,
            high=float(np.nanpercentile(colour, 95)) if len(colour) else 1.0,
        )
        plot = figure(
            width=420,
            height=330,
            title=f"{feature} (coloured by {colour_name})",
            tools="pan,wheel_zoom,box_zoom,reset,save",
        )
        renderer = plot.scatter(
            "x",
            "shap",
            source=source,
            size=5,
            alpha=0.7,
            color={"field": "c", "transform": mapper},
        )
        plot.add_tools(
            HoverTool(
                renderers=[renderer],
                tooltips=[(feature, "@x{0.000}"), ("SHAP", "@shap"), (colour_name, "@c{0.000}")],
            )
        )
        plot.add_layout(ColorBar(color_mapper=mapper, width=8, title=colour_name), "right")
        plot.xaxis.axis_label = feature
        plot.yaxis.axis_label = f"SHAP value of {feature}"
        figures.append(plot)
    return figures


def _blue_red() -> list[str]:
    """shap's colours: blue (low feature value) to red (high)."""
    start, end = np.array([0, 138, 255]), np.array([255, 0, 82])
    steps = np.linspace(0, 1, 64)[:, None]
    colours = (start + (end - start) * steps).astype(int)
    return ["#" + "".join(f"{int(v):02x}" for v in colour) for colour in colours]
