"""The demo's explanation lines: the champion's top features (explained on the workers and
logged with the model), and one prediction explained over HTTP with its ``curl`` line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def explain_champion(
    uri: str, dataset: Any, settings: Any, client: Any, echo: Callable[[str], object]
) -> dict[str, float]:
    """Explain ``uri`` on ``dataset`` (a 200-row sample kept), log it to the model's run, and
    echo the top features; return ``{feature: mean |SHAP|}`` of the top five."""
    from scaleml.tracking._explain import explain_and_log

    explanation, _ = explain_and_log(
        uri, dataset, settings=settings, client=client, sample=200, plots=False, report=False
    )
    top = explanation.importances().head(5)
    echo(
        f"      SHAP ({explanation.explainer} explainer, {explanation.output}) over "
        f"{explanation.n_rows:,} rows, top features by mean |SHAP value|:"
    )
    for feature, value in zip(top["feature"], top["mean_abs_shap"], strict=True):
        echo(f"        {feature:>8}  {value:.4f}")
    return {str(f): float(v) for f, v in zip(top["feature"], top["mean_abs_shap"], strict=True)}


def explain_over_http(http: Any, features: Any, echo: Callable[[str], object]) -> dict[str, Any]:
    """POST one row to ``/explain`` and echo its largest contributions; return the answer."""
    row = features.iloc[[0]].round(4).to_dict("split", index=False)
    reply = http.post("/explain", json={"dataframe_split": row})
    reply.raise_for_status()
    answer = reply.json()
    contributions = answer["contributions"][0]
    ranked = sorted(zip(answer["features"], contributions, strict=True), key=lambda p: -abs(p[1]))[
        :3
    ]
    shown = ", ".join(f"{name} {value:+.3f}" for name, value in ranked)
    echo(
        f"      POST /explain, one row: base {answer['base_values'][0]:+.3f} ({answer['output']})"
        f", largest contributions: {shown}"
    )
    return answer


def explain_curl(features: Any, url: str) -> str:
    """The ``curl`` line explaining one row."""
    body = json.dumps(
        {"dataframe_split": features.iloc[[0]].round(4).to_dict("split", index=False)}
    )
    return f"curl -s {url}/explain -H 'Content-Type: application/json' -d '{body}'"
