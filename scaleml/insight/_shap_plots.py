"""shap's own plots of an explanation's sample, as PNG files (matplotlib, no display): the
summary beeswarm, the bar of mean |SHAP| over every row, dependence plots of the top features
coloured by their strongest interaction, a force plot of one row, and a decision plot of a set
of rows with the misclassified ones highlighted (dashed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scaleml.insight import Explanation

DEPENDENCE_FEATURES = 3
DECISION_ROWS = 40


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(figure)
    return buffer.getvalue()


def misclassified(explanation: Explanation) -> np.ndarray:
    """Which sampled rows the model got wrong (all False without a target or predictions)."""
    target, predicted = explanation.sample_target, explanation.sample_prediction
    if target is None or predicted is None or explanation.output == "prediction":
        return np.zeros(len(explanation.sample_values), dtype=bool)
    return np.asarray(target).astype(str) != np.asarray(predicted).astype(str)


def shap_pngs(explanation: Explanation, output: str | int | None = None) -> dict[str, bytes]:
    """``{name: PNG bytes}``: ``summary``, ``bar``, ``dependence_<feature>``..., ``force``,
    ``decision``; for one output (default: the positive class, or the only output)."""
    import shap

    plt = _pyplot()
    index = explanation.output_index(output)
    values = explanation.sample_values[:, index, :]
    data = explanation.sample_data[explanation.features]
    title = f"{explanation.output} of {explanation.output_names[index]}"
    pngs: dict[str, bytes] = {}
    if len(values) == 0:
        return pngs

    shap.summary_plot(values, data, show=False, plot_size=(8, 5))
    plt.title(f"SHAP values ({title})")
    pngs["summary"] = _png(plt.gcf())

    figure, axes = plt.subplots(figsize=(8, 0.4 * len(explanation.features) + 1.5))
    order = np.argsort(explanation.global_importance)
    axes.barh(
        [explanation.features[i] for i in order],
        explanation.global_importance[order],
        color="#1e88e5",
    )
    axes.set_xlabel(f"mean |SHAP value| over {explanation.n_rows:,} rows")
    pngs["bar"] = _png(figure)

    for feature in explanation.top_features(DEPENDENCE_FEATURES):
        column = explanation.features.index(feature)
        interaction = strongest_interaction(explanation, column, index)
        shap.dependence_plot(column, values, data, interaction_index=interaction, show=False)
        pngs[f"dependence_{feature}"] = _png(plt.gcf())

    shap.force_plot(
        float(explanation.base_values[index]),
        values[0],
        data.iloc[0].round(3),
        matplotlib=True,
        show=False,
        figsize=(14, 3),
    )
    pngs["force"] = _png(plt.gcf())

    rows = slice(0, min(DECISION_ROWS, len(values)))
    wrong = misclassified(explanation)[rows]
    shap.decision_plot(
        float(explanation.base_values[index]),
        values[rows],
        data.iloc[rows],
        highlight=wrong if wrong.any() else None,
        show=False,
    )
    plt.title(f"decision plot: {int(wrong.sum())} misclassified row(s) dashed")
    pngs["decision"] = _png(plt.gcf())
    return pngs


def strongest_interaction(explanation: Explanation, column: int, output: int = -1) -> int | None:
    """The feature whose values best explain the spread of ``column``'s SHAP values (shap's
    ``approximate_interactions``), or None with a single feature."""
    import shap

    if len(explanation.features) < 2:
        return None
    values = explanation.sample_values[:, output, :]
    data = explanation.sample_data[explanation.features].to_numpy(dtype=np.float64)
    order = shap.utils.approximate_interactions(column, values, data)
    return int(order[0])


def write_pngs(explanation: Explanation, folder: Path) -> list[Path]:
    """Write :func:`shap_pngs` to ``folder/shap_<name>.png``; return the paths."""
    paths = []
    for name, png in shap_pngs(explanation).items():
        path = folder / f"shap_{name}.png"
        path.write_bytes(png)
        paths.append(path)
    return paths
