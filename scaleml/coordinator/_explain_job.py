"""The ``explain`` job kind: SHAP explanations of a registered model on the cluster, logged to
the model's MLflow run; the result holds the top features."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def run_explain(spec: Any, context: Any, make_dataset: Callable[[Any], Any]) -> dict[str, Any]:
    """Run an ``ExplainSpec`` with the job's client; progress per block."""
    from scaleml.insight._explain import explain, load_model_and_background
    from scaleml.predict import model_features
    from scaleml.tracking import configure
    from scaleml.tracking._explain import log_explanation, model_run_id
    from scaleml.tracking._runs import RunLogger

    model, background = load_model_and_background(spec.model, context.settings)
    features = spec.dataset.features or model_features(model)
    dataset = make_dataset(spec.dataset.model_copy(update={"features": features}))
    context.check()
    explanation = explain(
        model,
        dataset,
        sample=spec.sample,
        part=spec.part,
        background=background,
        client=context.client,
        on_block_done=lambda done, total: context.progress(done / total, f"{done}/{total} blocks"),
    )
    run_id = None
    if spec.log:
        run_id = model_run_id(spec.model, settings=context.settings)
        log_explanation(RunLogger(configure(context.settings), run_id), explanation)
    table = explanation.importances().head(10)
    return {
        "model_uri": spec.model,
        "run_id": run_id,
        "explainer": explanation.explainer,
        "output": explanation.output,
        "rows": explanation.n_rows,
        "top_features": [
            {"feature": str(f), "mean_abs_shap": float(v)}
            for f, v in zip(table["feature"], table["mean_abs_shap"], strict=True)
        ],
        "additivity_max_error": float(explanation.additivity_max_error),
    }
